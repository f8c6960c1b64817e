// Training metrics: every steps_per_print steps a progress line on stdout (step, loss, lr, grad
// norm, loss scale, tokens/s, step ms, TFLOP/s from the op costs, MFU where the device peak is
// known, peak memory measured and predicted); every step and every evaluation a JSON record in
// <output_dir>/metrics.jsonl; on a terminal, a live progress bar with ETA on stderr.
// Invariant: the JSONL file holds one complete JSON object per line, flushed after each record, so
// a crash loses at most the record being written.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "core/status.h"
#include "runtime/engine.h"

namespace zt {

struct MetricsOptions {
  std::string jsonl_path;          // empty: no JSONL
  bool append = false;             // resume: keep earlier records
  int64_t steps_per_print = 10;
  int64_t total_steps = 0;
  double flops_per_step = 0;       // from the program's op costs
  double peak_flops = 0;           // device peak for the compute dtype; 0: unknown (no MFU)
  int64_t tokens_per_step = 0;
  int64_t predicted_peak_bytes = 0;
  bool progress_bar = false;       // usually isatty(stderr)
};

class MetricsLogger {
 public:
  static StatusOr<std::unique_ptr<MetricsLogger>> Open(const MetricsOptions& o);
  ~MetricsLogger();

  // measured_peak_bytes: the allocator's peak so far.
  void OnStep(const StepStats& s, int64_t measured_peak_bytes);
  void OnEval(int64_t step, double loss);
  void Finish();

  // The progress line for a step (what OnStep prints); exposed for tests.
  std::string FormatLine(const StepStats& s, double tokens_per_s, int64_t measured_peak_bytes) const;

 private:
  explicit MetricsLogger(const MetricsOptions& o) : o_(o) {}
  void WriteRecord(const std::string& json);
  void DrawBar(const StepStats& s);
  void ClearBar();

  MetricsOptions o_;
  std::FILE* jsonl_ = nullptr;
  double window_seconds_ = 0;
  int64_t window_steps_ = 0;
  double total_seconds_ = 0;
  bool bar_drawn_ = false;
};

}  // namespace zt
