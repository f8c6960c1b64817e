// ObjectReader: typed, range-checked reads from one JSON object of a run config (internal to
// src/config). Invariant: every error it returns names the key by its full dotted path
// ("fp16.loss_scale"), the source label, what was expected and what was found; an absent key
// leaves the output untouched (the field keeps its default).
#pragma once

#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/status.h"

namespace zt::config::internal {

// A DeepSpeed key that ztrain recognises but does not implement; `hint` (may be empty) says what
// to do instead.
struct UnsupportedKey {
  std::string_view key;
  std::string_view hint;
};

// Every section that holds keys, for "did you mean" suggestions across sections (run_config.cc).
struct KnownSection {
  std::string_view path;  // "" for the top level
  std::span<const std::string_view> keys;
};

// Levenshtein distance of the lower-cased strings.
int EditDistance(std::string_view a, std::string_view b);
// `"yes" (a string)`, `1.5 (a number)`, `true`, `an object`... for "got ..." in messages.
std::string DescribeJson(const nlohmann::json& v);
// "a" or "a.b" (empty prefix: the key alone).
std::string JoinPath(std::string_view prefix, std::string_view key);

constexpr int64_t kMaxI64 = std::numeric_limits<int64_t>::max();

class ObjectReader {
 public:
  // `obj` must be a JSON object and outlive the reader. `known` lists every section of the
  // schema (for suggestions); it must outlive the reader too.
  ObjectReader(const nlohmann::json& obj, std::string path, const std::string& label,
               std::span<const KnownSection> known);

  const std::string& path() const { return path_; }
  const std::string& label() const { return label_; }
  const nlohmann::json& value() const { return obj_; }
  bool Has(std::string_view key) const;
  std::string PathOf(std::string_view key) const { return JoinPath(path_, key); }

  // Fails on the first key (in sorted order) that is not in `allowed`: a recognised-but-unsupported
  // DeepSpeed key says so; otherwise the closest allowed key (or a same-named key of another
  // section) is suggested, else the allowed keys are listed.
  Status CheckKeys(std::span<const std::string_view> allowed,
                   std::span<const UnsupportedKey> unsupported = {}) const;

  // "<path.key> is missing in <label>: <what>" when absent.
  Status Require(std::string_view key, std::string_view what) const;

  // Typed reads; absent keys leave *out unchanged. Integers accept JSON integers and floats with
  // an integral value (5e8), as DeepSpeed does.
  Status Bool(std::string_view key, bool* out) const;
  Status Int(std::string_view key, int64_t* out, int64_t min, int64_t max = kMaxI64) const;
  Status Int(std::string_view key, int* out, int min, int max) const;
  Status Uint64(std::string_view key, uint64_t* out) const;
  // Finite number in [min, max]; `min_exclusive` makes the lower bound strict.
  Status Number(std::string_view key, double* out, double min, double max,
                bool min_exclusive = false) const;
  Status String(std::string_view key, std::string* out, bool allow_empty = false) const;
  // Child object (absent: an empty object). Non-objects are errors.
  StatusOr<ObjectReader> Object(std::string_view key) const;

  // "<path.key> in <label> <msg>" as an InvalidArgument.
  Status Error(std::string_view key, std::string_view msg) const;

 private:
  Status TypeError(std::string_view key, std::string_view expected, const nlohmann::json& got) const;
  std::string Suggest(std::string_view key, std::span<const std::string_view> allowed) const;

  const nlohmann::json& obj_;
  std::string path_;
  std::string label_;
  std::span<const KnownSection> known_;
};

}  // namespace zt::config::internal
