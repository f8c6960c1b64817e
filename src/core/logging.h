// Logging: `ZT_LOG(INFO) << "message";` writes one line to stderr with severity, time and
// file:line. The threshold comes from ZT_LOG_LEVEL. An optional process-wide prefix (e.g. the
// rank) is set once with SetLogPrefix. Lines are written whole, so ranks do not interleave mid-line.
#pragma once

#include <sstream>
#include <string>

namespace zt {

enum class LogSeverity : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

void SetLogPrefix(const std::string& prefix);
bool LogEnabled(LogSeverity s);

namespace internal {
class LogLine {
 public:
  LogLine(LogSeverity s, const char* file, int line);
  ~LogLine();
  template <typename T>
  LogLine& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  LogSeverity severity_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace zt

#define ZT_LOG_SEVERITY_DEBUG ::zt::LogSeverity::kDebug
#define ZT_LOG_SEVERITY_INFO ::zt::LogSeverity::kInfo
#define ZT_LOG_SEVERITY_WARNING ::zt::LogSeverity::kWarning
#define ZT_LOG_SEVERITY_ERROR ::zt::LogSeverity::kError

#define ZT_LOG(level)                                     \
  if (!::zt::LogEnabled(ZT_LOG_SEVERITY_##level)) {       \
  } else                                                  \
    ::zt::internal::LogLine(ZT_LOG_SEVERITY_##level, __FILE__, __LINE__)
