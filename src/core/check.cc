// CHECK failure reporting: print with file:line, flush, abort.
#include "core/check.h"

#include <cstdio>
#include <cstdlib>

namespace zt::internal {

CheckFailure::CheckFailure(const char* file, int line, const char* expr) {
  stream_ << file << ":" << line << ": CHECK failed: " << expr << " ";
}

CheckFailure::~CheckFailure() {
  std::string s = stream_.str();
  std::fprintf(stderr, "%s\n", s.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace zt::internal
