// Typed node attributes. An op declares each attribute's name and type (op_registry.h); a node's
// AttrMap always holds every declared attribute (defaults are filled in when the node is built),
// so kernels and passes read them without checking presence. Map order is sorted by name, which
// keeps the printed IR stable.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "core/dtype.h"

namespace zt::ir {

enum class AttrType { kInt, kFloat, kBool, kString, kInts, kDType };
const char* AttrTypeName(AttrType t);

using AttrValue = std::variant<int64_t, double, bool, std::string, std::vector<int64_t>, DType>;
AttrType TypeOf(const AttrValue& v);
// The text form used by the IR printer: 3, 1e-05, true, "s", [1,2], bf16.
std::string AttrValueToString(const AttrValue& v);
// "s" with '"' and '\\' escaped by a backslash and newlines written as \n (the parser's form).
std::string QuoteString(const std::string& s);

class AttrMap {
 public:
  AttrMap() = default;
  AttrMap(std::initializer_list<std::pair<const std::string, AttrValue>> init) : values_(init) {}

  bool Has(const std::string& name) const { return values_.count(name) != 0; }
  void Set(const std::string& name, AttrValue v) { values_[name] = std::move(v); }
  const AttrValue* Find(const std::string& name) const;

  // Typed getters CHECK that the attribute exists with that type (a bug otherwise: nodes are
  // verified against their op's schema).
  int64_t GetInt(const std::string& name) const;
  double GetFloat(const std::string& name) const;
  bool GetBool(const std::string& name) const;
  const std::string& GetString(const std::string& name) const;
  const std::vector<int64_t>& GetInts(const std::string& name) const;
  DType GetDType(const std::string& name) const;

  const std::map<std::string, AttrValue>& items() const { return values_; }
  bool operator==(const AttrMap& o) const { return values_ == o.values_; }

 private:
  std::map<std::string, AttrValue> values_;
};

}  // namespace zt::ir
