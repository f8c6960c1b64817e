// Log line formatting and the ZT_LOG_LEVEL threshold.
#include "core/logging.h"

#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <mutex>

#include "core/settings.h"

namespace zt {
namespace {

std::string& Prefix() {
  static std::string p;
  return p;
}

LogSeverity Threshold() {
  static const LogSeverity t = [] {
    std::string v = settings::LogLevel();
    if (v == "debug") return LogSeverity::kDebug;
    if (v == "warning") return LogSeverity::kWarning;
    if (v == "error") return LogSeverity::kError;
    if (v != "info") std::fprintf(stderr, "ztrain: ZT_LOG_LEVEL='%s' unknown; using info\n", v.c_str());
    return LogSeverity::kInfo;
  }();
  return t;
}

}  // namespace

void SetLogPrefix(const std::string& prefix) { Prefix() = prefix; }
bool LogEnabled(LogSeverity s) { return s >= Threshold(); }

namespace internal {

LogLine::LogLine(LogSeverity s, const char* file, int line) : severity_(s) {
  static const char kLetters[] = {'D', 'I', 'W', 'E'};
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
  const char* base = std::strrchr(file, '/');
  stream_ << "[" << kLetters[static_cast<int>(s)] << " " << buf << " " << (base ? base + 1 : file)
          << ":" << line << "] ";
  if (!Prefix().empty()) stream_ << Prefix() << ": ";
}

LogLine::~LogLine() {
  stream_ << "\n";
  std::string s = stream_.str();
  std::fwrite(s.data(), 1, s.size(), stderr);
  std::fflush(stderr);
}

}  // namespace internal
}  // namespace zt
