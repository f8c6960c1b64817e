// store_util: the pieces of Store semantics every implementation shares, so that MemoryStore, the
// TCP server and FileStore agree exactly: how Add reads and writes its integer, and how a timed-out
// wait is reported.
// Invariant: Add parses the stored value as std::stoll does (as MemoryStore does), and never
// overflows silently.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"

namespace zt::comm {

// The value Add stores when `current` (nullptr: the key is absent, counting as 0) gets `delta`.
// A value that is not an integer is InvalidArgument naming the key; an int64 overflow is OutOfRange.
StatusOr<int64_t> AddToStoredInt(const std::string& key, const std::string* current, int64_t delta);

// DeadlineExceeded("timed out after N ms waiting for store keys a, b" + suffix).
Status WaitTimedOut(std::chrono::milliseconds timeout, const std::vector<std::string>& missing,
                    const std::string& suffix = "");

}  // namespace zt::comm
