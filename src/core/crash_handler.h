// A last word on fatal signals: InstallCrashHandler makes SIGSEGV, SIGBUS, SIGILL, SIGFPE and
// SIGABRT print "ztrain: fatal signal N (name)" and the native stack (raw frames: resolve them
// with `addr2line -e ztrain -f -C <offset>` on the unstripped binary) to stderr, then die of the
// same signal, so launchers still see how the process ended.
// Invariant: the handler uses only async-signal-safe calls after the first frame is taken
// (backtrace() is primed at install time so that it never allocates inside the handler).
#pragma once

namespace zt {

void InstallCrashHandler();

}  // namespace zt
