// Fatal-signal reporter (crash_handler.h).
#include "core/crash_handler.h"

#include <execinfo.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <initializer_list>

namespace zt {
namespace {

void WriteStr(const char* s) {
  ssize_t ignored = write(STDERR_FILENO, s, strlen(s));
  (void)ignored;
}

void WriteInt(int v) {
  char buf[16];
  int n = 0;
  if (v == 0) buf[n++] = '0';
  while (v > 0 && n < 15) {
    buf[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  char out[16];
  for (int i = 0; i < n; ++i) out[i] = buf[n - 1 - i];
  out[n] = '\0';
  WriteStr(out);
}

void OnFatalSignal(int sig) {
  WriteStr("ztrain: fatal signal ");
  WriteInt(sig);
  WriteStr(" (");
  WriteStr(sigabbrev_np(sig) ? sigabbrev_np(sig) : "?");
  WriteStr("); stack:\n");
  void* frames[64];
  int n = backtrace(frames, 64);
  backtrace_symbols_fd(frames, n, STDERR_FILENO);
  signal(sig, SIG_DFL);
  raise(sig);
}

}  // namespace

void InstallCrashHandler() {
  void* prime[1];
  backtrace(prime, 1);  // loads libgcc now, not inside the handler
  struct sigaction sa;
  memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnFatalSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESETHAND | SA_NODEFER;
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) sigaction(sig, &sa, nullptr);
}

}  // namespace zt
