// ObjectReader: typed reads with messages that name the dotted key, and "did you mean" suggestions
// for unknown keys. Invariant: nothing here throws; every failure is an InvalidArgument Status.
#include "config/json_reader.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

namespace zt::config::internal {

using nlohmann::json;

namespace {

const json& EmptyObject() {
  static const json* const kEmpty = new json(json::object());
  return *kEmpty;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string FormatNumber(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

std::string Quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

// The integral value of `v` when it is a JSON integer, or a float holding an exact integer that
// fits int64; false otherwise.
bool AsInt64(const json& v, int64_t* out, bool* out_of_range) {
  *out_of_range = false;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    if (u > static_cast<uint64_t>(kMaxI64)) {
      *out_of_range = true;
      return false;
    }
    *out = static_cast<int64_t>(u);
    return true;
  }
  if (v.is_number_integer()) {
    *out = v.get<int64_t>();
    return true;
  }
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (!std::isfinite(d) || std::floor(d) != d) return false;
    // 2^63 is the first double that no longer fits.
    if (d >= 9223372036854775808.0 || d < -9223372036854775808.0) {
      *out_of_range = true;
      return false;
    }
    *out = static_cast<int64_t>(d);
    return true;
  }
  return false;
}

std::string RangeText(int64_t min, int64_t max) {
  if (max == kMaxI64) {
    if (min == 1) return "a positive integer";
    if (min == 0) return "a non-negative integer";
    return "an integer >= " + std::to_string(min);
  }
  return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

}  // namespace

int EditDistance(std::string_view a_in, std::string_view b_in) {
  std::string a = Lower(a_in), b = Lower(b_in);
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      int sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string DescribeJson(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case json::value_t::string: {
      std::string s = v.get<std::string>();
      if (s.size() > 60) s = s.substr(0, 57) + "...";
      std::string out = Quoted(s) + " (a string)";
      if (s == "auto") {
        out += "; \"auto\" is a Hugging Face Trainer placeholder, write the value itself";
      }
      return out;
    }
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return v.dump() + " (an integer)";
    case json::value_t::number_float: return v.dump() + " (a number)";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    default: return "a value of an unsupported JSON type";
  }
}

std::string JoinPath(std::string_view prefix, std::string_view key) {
  if (prefix.empty()) return std::string(key);
  return std::string(prefix) + "." + std::string(key);
}

ObjectReader::ObjectReader(const json& obj, std::string path, const std::string& label,
                           std::span<const KnownSection> known)
    : obj_(obj), path_(std::move(path)), label_(label), known_(known) {
  ZT_CHECK(obj_.is_object()) << "ObjectReader over a non-object at " << path_;
}

bool ObjectReader::Has(std::string_view key) const { return obj_.contains(key); }

Status ObjectReader::Error(std::string_view key, std::string_view msg) const {
  return InvalidArgument(Quoted(PathOf(key)) + " in " + label_ + " " + std::string(msg));
}

Status ObjectReader::TypeError(std::string_view key, std::string_view expected, const json& got) const {
  return Error(key, "must be " + std::string(expected) + ", got " + DescribeJson(got));
}

std::string ObjectReader::Suggest(std::string_view key, std::span<const std::string_view> allowed) const {
  // Closest sibling within a small edit distance (scaled with the key's length).
  const int limit = std::max<int>(1, std::min<int>(3, static_cast<int>(key.size()) / 3));
  int best = limit + 1;
  std::string_view best_key;
  for (std::string_view a : allowed) {
    int d = EditDistance(key, a);
    if (d < best) best = d, best_key = a;
  }
  if (!best_key.empty()) return "; did you mean " + Quoted(PathOf(best_key)) + "?";
  // The same key (case-insensitively) in another section: "lr" -> "optimizer.params.lr".
  std::vector<std::string> elsewhere;
  for (const KnownSection& s : known_) {
    if (s.path == path_) continue;
    for (std::string_view k : s.keys) {
      if (EditDistance(key, k) != 0) continue;
      std::string p = JoinPath(s.path, k);
      if (std::find(elsewhere.begin(), elsewhere.end(), p) == elsewhere.end()) elsewhere.push_back(p);
    }
  }
  if (!elsewhere.empty()) {
    std::string out = "; did you mean ";
    for (size_t i = 0; i < elsewhere.size(); ++i) {
      if (i > 0) out += " or ";
      out += Quoted(elsewhere[i]);
    }
    return out + "?";
  }
  std::string out = path_.empty() ? "; the allowed top-level keys are: "
                                  : "; the keys allowed in " + Quoted(path_) + " are: ";
  for (size_t i = 0; i < allowed.size(); ++i) out += (i > 0 ? ", " : "") + std::string(allowed[i]);
  return out + " (docs/config.md)";
}

Status ObjectReader::CheckKeys(std::span<const std::string_view> allowed,
                               std::span<const UnsupportedKey> unsupported) const {
  for (const auto& [key, value] : obj_.items()) {
    if (std::find(allowed.begin(), allowed.end(), key) != allowed.end()) continue;
    for (const UnsupportedKey& u : unsupported) {
      if (u.key != key) continue;
      std::string msg = "is a DeepSpeed setting that ztrain does not support";
      msg += u.hint.empty() ? "; remove it" : "; " + std::string(u.hint);
      return Error(key, msg);
    }
    return InvalidArgument("unknown key " + Quoted(PathOf(key)) + " in " + label_ + Suggest(key, allowed));
  }
  return OkStatus();
}

Status ObjectReader::Require(std::string_view key, std::string_view what) const {
  if (Has(key)) return OkStatus();
  return InvalidArgument(Quoted(PathOf(key)) + " is missing in " + label_ + ": " + std::string(what));
}

Status ObjectReader::Bool(std::string_view key, bool* out) const {
  if (!Has(key)) return OkStatus();
  const json& v = obj_.at(key);
  if (!v.is_boolean()) return TypeError(key, "a boolean (true or false)", v);
  *out = v.get<bool>();
  return OkStatus();
}

Status ObjectReader::Int(std::string_view key, int64_t* out, int64_t min, int64_t max) const {
  if (!Has(key)) return OkStatus();
  const json& v = obj_.at(key);
  int64_t x = 0;
  bool too_big = false;
  if (!AsInt64(v, &x, &too_big) || x < min || x > max) {
    return TypeError(key, RangeText(min, max), v);
  }
  *out = x;
  return OkStatus();
}

Status ObjectReader::Int(std::string_view key, int* out, int min, int max) const {
  int64_t x = *out;
  ZT_RETURN_IF_ERROR(Int(key, &x, min, max));
  *out = static_cast<int>(x);
  return OkStatus();
}

Status ObjectReader::Uint64(std::string_view key, uint64_t* out) const {
  if (!Has(key)) return OkStatus();
  const json& v = obj_.at(key);
  if (v.is_number_unsigned()) {
    *out = v.get<uint64_t>();
    return OkStatus();
  }
  int64_t x = 0;
  bool too_big = false;
  if (AsInt64(v, &x, &too_big) && x >= 0) {
    *out = static_cast<uint64_t>(x);
    return OkStatus();
  }
  return TypeError(key, "an integer from 0 to 18446744073709551615", v);
}

Status ObjectReader::Number(std::string_view key, double* out, double min, double max,
                            bool min_exclusive) const {
  if (!Has(key)) return OkStatus();
  const json& v = obj_.at(key);
  std::string expected = "a number";
  if (max == HUGE_VAL) {
    expected += min_exclusive ? " > " + FormatNumber(min) : " >= " + FormatNumber(min);
  } else {
    expected += (min_exclusive ? " in (" : " in [") + FormatNumber(min) + ", " + FormatNumber(max) + "]";
  }
  if (!v.is_number()) return TypeError(key, expected, v);
  double x = v.get<double>();
  bool ok = std::isfinite(x) && (min_exclusive ? x > min : x >= min) && x <= max;
  if (!ok) return TypeError(key, expected, v);
  *out = x;
  return OkStatus();
}

Status ObjectReader::String(std::string_view key, std::string* out, bool allow_empty) const {
  if (!Has(key)) return OkStatus();
  const json& v = obj_.at(key);
  if (!v.is_string()) return TypeError(key, allow_empty ? "a string" : "a non-empty string", v);
  std::string s = v.get<std::string>();
  if (s.empty() && !allow_empty) return TypeError(key, "a non-empty string", v);
  *out = std::move(s);
  return OkStatus();
}

StatusOr<ObjectReader> ObjectReader::Object(std::string_view key) const {
  if (!Has(key)) return ObjectReader(EmptyObject(), PathOf(key), label_, known_);
  const json& v = obj_.at(key);
  if (!v.is_object()) return TypeError(key, "an object ({...})", v);
  return ObjectReader(v, PathOf(key), label_, known_);
}

}  // namespace zt::config::internal
