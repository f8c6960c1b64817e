// Progress lines, JSONL records and the terminal progress bar.
#include "runtime/metrics.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>

#include <nlohmann/json.hpp>

namespace zt {
namespace {

std::string HumanBytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", b, units[u]);
  return buf;
}

std::string HumanDuration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof(buf), "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof(buf), "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof(buf), "%dh%02dm", static_cast<int>(s) / 3600, (static_cast<int>(s) % 3600) / 60);
  return buf;
}

double UnixTime() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// JSON has no NaN/Inf: write them as null.
nlohmann::json Num(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

}  // namespace

StatusOr<std::unique_ptr<MetricsLogger>> MetricsLogger::Open(const MetricsOptions& o) {
  auto m = std::unique_ptr<MetricsLogger>(new MetricsLogger(o));
  if (!o.jsonl_path.empty()) {
    m->jsonl_ = std::fopen(o.jsonl_path.c_str(), o.append ? "a" : "w");
    if (m->jsonl_ == nullptr) {
      return Unavailable("cannot open metrics file " + o.jsonl_path + ": " + std::strerror(errno) +
                         "; check that run.output_dir is writable");
    }
  }
  return m;
}

MetricsLogger::~MetricsLogger() {
  if (jsonl_) std::fclose(jsonl_);
}

void MetricsLogger::WriteRecord(const std::string& json) {
  if (!jsonl_) return;
  std::fprintf(jsonl_, "%s\n", json.c_str());
  std::fflush(jsonl_);
}

std::string MetricsLogger::FormatLine(const StepStats& s, double tokens_per_s, int64_t measured_peak_bytes) const {
  char buf[512];
  double tflops = s.seconds > 0 ? o_.flops_per_step / s.seconds / 1e12 : 0;
  std::string mfu = o_.peak_flops > 0 ? std::to_string(static_cast<int>(std::round(100 * tflops * 1e12 / o_.peak_flops))) + "%" : "-";
  std::snprintf(buf, sizeof(buf),
                "step %lld/%lld | loss %.4f | lr %.3e | grad norm %.4f | loss scale %g%s | %.0f tok/s | %.1f ms | "
                "%.3f TFLOP/s | MFU %s | mem %s (plan %s)",
                static_cast<long long>(s.step), static_cast<long long>(o_.total_steps), s.loss, s.lr, s.grad_norm,
                s.loss_scale, s.skipped ? " (overflow: step skipped)" : "", tokens_per_s, s.seconds * 1e3, tflops,
                mfu.c_str(), HumanBytes(static_cast<double>(measured_peak_bytes)).c_str(),
                HumanBytes(static_cast<double>(o_.predicted_peak_bytes)).c_str());
  std::string line = buf;
  if (s.forward_seconds > 0 || s.backward_seconds > 0) {
    std::snprintf(buf, sizeof(buf), " | fwd %.1f ms bwd %.1f ms opt %.1f ms", s.forward_seconds * 1e3,
                  s.backward_seconds * 1e3, s.optimizer_seconds * 1e3);
    line += buf;
  }
  return line;
}

void MetricsLogger::OnStep(const StepStats& s, int64_t measured_peak_bytes) {
  window_seconds_ += s.seconds;
  total_seconds_ += s.seconds;
  ++window_steps_;
  double tokens_per_s = s.seconds > 0 ? static_cast<double>(o_.tokens_per_step) / s.seconds : 0;
  nlohmann::json j = {{"step", s.step},
                      {"loss", Num(s.loss)},
                      {"lr", s.lr},
                      {"grad_norm", Num(s.grad_norm)},
                      {"loss_scale", s.loss_scale},
                      {"skipped", s.skipped},
                      {"tokens_per_s", tokens_per_s},
                      {"step_ms", s.seconds * 1e3},
                      {"tflops", s.seconds > 0 ? o_.flops_per_step / s.seconds / 1e12 : 0.0},
                      {"peak_mem_bytes", measured_peak_bytes},
                      {"predicted_mem_bytes", o_.predicted_peak_bytes},
                      {"time", UnixTime()}};
  j["mfu"] = o_.peak_flops > 0 && s.seconds > 0 ? nlohmann::json(o_.flops_per_step / s.seconds / o_.peak_flops)
                                               : nlohmann::json(nullptr);
  if (s.forward_seconds > 0 || s.backward_seconds > 0) {
    j["forward_ms"] = s.forward_seconds * 1e3;
    j["backward_ms"] = s.backward_seconds * 1e3;
    j["optimizer_ms"] = s.optimizer_seconds * 1e3;
  }
  WriteRecord(j.dump());
  if (s.step % o_.steps_per_print == 0 || s.step == 1 || s.step == o_.total_steps || s.skipped) {
    // Throughput over the window since the last line, the rest for this step.
    StepStats shown = s;
    double window_tps = window_seconds_ > 0 ? static_cast<double>(o_.tokens_per_step * window_steps_) / window_seconds_ : 0;
    shown.seconds = window_steps_ > 0 ? window_seconds_ / static_cast<double>(window_steps_) : s.seconds;
    ClearBar();
    std::printf("%s\n", FormatLine(shown, window_tps, measured_peak_bytes).c_str());
    std::fflush(stdout);
    window_seconds_ = 0;
    window_steps_ = 0;
  }
  DrawBar(s);
}

void MetricsLogger::OnEval(int64_t step, double loss) {
  WriteRecord(nlohmann::json({{"step", step}, {"eval_loss", Num(loss)}, {"time", UnixTime()}}).dump());
  ClearBar();
  std::printf("eval at step %lld | loss %.4f\n", static_cast<long long>(step), loss);
  std::fflush(stdout);
}

void MetricsLogger::DrawBar(const StepStats& s) {
  if (!o_.progress_bar || o_.total_steps <= 0) return;
  const int width = 30;
  double frac = std::min(1.0, static_cast<double>(s.step) / static_cast<double>(o_.total_steps));
  int filled = static_cast<int>(frac * width);
  double eta = s.step > 0 ? total_seconds_ / static_cast<double>(s.step) * static_cast<double>(o_.total_steps - s.step) : 0;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(width - filled), '.');
  std::fprintf(stderr, "\r[%s] %lld/%lld %3.0f%% ETA %s loss %.4f  ", bar.c_str(), static_cast<long long>(s.step),
               static_cast<long long>(o_.total_steps), 100 * frac, HumanDuration(eta).c_str(), s.loss);
  std::fflush(stderr);
  bar_drawn_ = true;
}

void MetricsLogger::ClearBar() {
  if (!bar_drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  bar_drawn_ = false;
}

void MetricsLogger::Finish() { ClearBar(); }

}  // namespace zt
