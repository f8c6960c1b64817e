// Attribute types, printing and typed access.
#include "ir/attr.h"

#include <charconv>
#include <cmath>

#include "core/check.h"

namespace zt::ir {

const char* AttrTypeName(AttrType t) {
  switch (t) {
    case AttrType::kInt: return "int";
    case AttrType::kFloat: return "float";
    case AttrType::kBool: return "bool";
    case AttrType::kString: return "string";
    case AttrType::kInts: return "ints";
    case AttrType::kDType: return "dtype";
  }
  return "?";
}

AttrType TypeOf(const AttrValue& v) { return static_cast<AttrType>(v.index()); }

static std::string FloatToString(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof(buf), d);  // shortest form that round-trips
  std::string s(buf, r.ptr);
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s;
}

std::string QuoteString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') { out += "\\n"; continue; }
    out += c;
  }
  return out + "\"";
}

std::string AttrValueToString(const AttrValue& v) {
  switch (TypeOf(v)) {
    case AttrType::kInt: return std::to_string(std::get<int64_t>(v));
    case AttrType::kFloat: return FloatToString(std::get<double>(v));
    case AttrType::kBool: return std::get<bool>(v) ? "true" : "false";
    case AttrType::kString: return QuoteString(std::get<std::string>(v));
    case AttrType::kInts: {
      std::string s = "[";
      const auto& xs = std::get<std::vector<int64_t>>(v);
      for (size_t i = 0; i < xs.size(); ++i) s += (i ? "," : "") + std::to_string(xs[i]);
      return s + "]";
    }
    case AttrType::kDType: return DTypeName(std::get<DType>(v));
  }
  return "?";
}

const AttrValue* AttrMap::Find(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? nullptr : &it->second;
}

template <typename T>
static const T& Get(const AttrMap& m, const std::string& name, AttrType want) {
  const AttrValue* v = m.Find(name);
  ZT_CHECK(v != nullptr) << "missing attribute '" << name << "'";
  ZT_CHECK(TypeOf(*v) == want) << "attribute '" << name << "' is " << AttrTypeName(TypeOf(*v))
                               << ", read as " << AttrTypeName(want);
  return std::get<T>(*v);
}

int64_t AttrMap::GetInt(const std::string& n) const { return Get<int64_t>(*this, n, AttrType::kInt); }
double AttrMap::GetFloat(const std::string& n) const { return Get<double>(*this, n, AttrType::kFloat); }
bool AttrMap::GetBool(const std::string& n) const { return Get<bool>(*this, n, AttrType::kBool); }
const std::string& AttrMap::GetString(const std::string& n) const {
  return Get<std::string>(*this, n, AttrType::kString);
}
const std::vector<int64_t>& AttrMap::GetInts(const std::string& n) const {
  return Get<std::vector<int64_t>>(*this, n, AttrType::kInts);
}
DType AttrMap::GetDType(const std::string& n) const { return Get<DType>(*this, n, AttrType::kDType); }

}  // namespace zt::ir
