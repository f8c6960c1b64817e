// Run-time settings read from ZT_* environment variables. Every setting is declared exactly once,
// in the table in settings.cc, with its default and a help line; reading an undeclared name is a
// bug (CHECK), and `ztrain --help` lists the table. A malformed value is reported with the name,
// the value and what is accepted.
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace zt::settings {

struct Info {
  std::string_view name;
  std::string_view default_value;
  std::string_view help;
};

// All declared settings, in declaration order.
std::span<const Info> All();

// The raw value: the environment's if set, else the declared default. CHECKs the name is declared.
std::string GetString(std::string_view name);
StatusOr<int64_t> GetInt(std::string_view name);
StatusOr<double> GetDouble(std::string_view name);
StatusOr<bool> GetBool(std::string_view name);  // 1/0, true/false, yes/no, on/off

// Whether the environment sets the declared setting (to a non-empty value).
bool IsSet(std::string_view name);

// ZT_* variables present in the environment but not declared (likely typos).
std::vector<std::string> UnknownInEnvironment();

// Typed accessors for the settings the core itself uses. A malformed value prints a clear error
// and exits with status 2 (settings come from the user, so this is not a crash).
int NumThreads();            // ZT_NUM_THREADS; 0 means "all cores"
std::string LogLevel();      // ZT_LOG_LEVEL
std::string DumpIrAfter();   // ZT_DUMP_IR
std::string DumpDir();       // ZT_DUMP_DIR
std::chrono::milliseconds CommTimeout();  // ZT_COMM_TIMEOUT_S

// Help text listing every setting, for `ztrain --help`.
std::string HelpText();

}  // namespace zt::settings
