// CHECK: always-on assertions for programming errors (never compiled out, never `assert`).
// A failed CHECK prints "file:line: CHECK failed: <expr> <message>" to stderr and aborts.
// Use Status (status.h) for anything that comes from outside the program.
#pragma once

#include <sstream>
#include <string>

namespace zt::internal {

class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* expr);
  [[noreturn]] ~CheckFailure();
  template <typename T>
  CheckFailure& operator<<(const T& v) {
    stream_ << v;
    return *this;
  }

 private:
  std::ostringstream stream_;
};

// Lets `ZT_CHECK(x) << "msg";` parse as a void expression in both branches of ?:.
struct Voidify {
  void operator&(const CheckFailure&) {}
};

}  // namespace zt::internal

#define ZT_CHECK(cond)                       \
  (cond) ? (void)0                           \
         : ::zt::internal::Voidify() &       \
               ::zt::internal::CheckFailure(__FILE__, __LINE__, #cond)

#define ZT_CHECK_OP(a, op, b)                                                        \
  ((a)op(b)) ? (void)0                                                               \
             : ::zt::internal::Voidify() &                                           \
                   ::zt::internal::CheckFailure(__FILE__, __LINE__, #a " " #op " " #b) \
                       << "(" << (a) << " vs " << (b) << ") "

#define ZT_CHECK_EQ(a, b) ZT_CHECK_OP(a, ==, b)
#define ZT_CHECK_NE(a, b) ZT_CHECK_OP(a, !=, b)
#define ZT_CHECK_LT(a, b) ZT_CHECK_OP(a, <, b)
#define ZT_CHECK_LE(a, b) ZT_CHECK_OP(a, <=, b)
#define ZT_CHECK_GT(a, b) ZT_CHECK_OP(a, >, b)
#define ZT_CHECK_GE(a, b) ZT_CHECK_OP(a, >=, b)

// Checks that a Status-returning expression succeeded; for places where failure is a bug.
#define ZT_CHECK_OK(expr)                                                        \
  do {                                                                           \
    auto zt_check_ok_status_ = (expr);                                           \
    ZT_CHECK(zt_check_ok_status_.ok()) << zt_check_ok_status_.ToString();        \
  } while (0)
