// IR printer: one line per value declaration and per node, in schedule order.
#include <sstream>

#include "ir/op_registry.h"
#include "ir/text.h"

namespace zt::ir {

bool IsBareName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

static std::string Ref(const Value* v) {
  return IsBareName(v->name) ? "%" + v->name : "%" + QuoteString(v->name);
}

static std::string Decl(const Value* v) {
  std::string s = Ref(v) + " : " + DTypeName(v->dtype) + v->shape.ToString();
  if (v->category != DefaultCategory(v->kind)) s += std::string(" !") + MemCategoryName(v->category);
  if (v->offset) s += " @" + std::to_string(*v->offset);
  return s;
}

std::string PrintNode(const Graph& g, const Node& n) {
  std::ostringstream os;
  for (size_t i = 0; i < n.outputs.size(); ++i) os << (i ? ", " : "") << Decl(n.outputs[i]);
  if (!n.outputs.empty()) os << " = ";
  os << (n.op ? n.op->name : "<null>") << "(";
  for (size_t i = 0; i < n.inputs.size(); ++i) os << (i ? ", " : "") << Ref(n.inputs[i]);
  os << ")";
  if (!n.attrs.items().empty()) {
    os << " {";
    bool first = true;
    for (const auto& [k, v] : n.attrs.items()) {
      os << (first ? "" : ", ") << k << "=" << AttrValueToString(v);
      first = false;
    }
    os << "}";
  }
  if (n.phase != Phase::kForward) os << " phase=" << PhaseName(n.phase);
  if (n.stream != 0) os << " stream=" << n.stream;
  if (!n.deps.empty()) {
    os << " deps=[";
    for (size_t i = 0; i < n.deps.size(); ++i) os << (i ? ", " : "") << "#" << g.NodeIndex(n.deps[i]);
    os << "]";
  }
  return os.str();
}

std::string PrintGraph(const Graph& g) {
  std::ostringstream os;
  os << "graph " << QuoteString(g.name()) << " {\n";
  for (ValueKind kind : {ValueKind::kInput, ValueKind::kParam, ValueKind::kState}) {
    for (const auto& v : g.values()) {
      if (v->kind == kind) os << "  " << ValueKindName(kind) << " " << Decl(v.get()) << "\n";
    }
  }
  for (const auto& n : g.nodes()) os << "  " << PrintNode(g, *n) << "\n";
  for (const Value* v : g.outputs()) os << "  output " << Ref(v) << "\n";
  if (g.loss()) os << "  loss " << Ref(g.loss()) << "\n";
  for (const auto& [p, gr] : g.grads()) os << "  grad " << Ref(p) << " = " << Ref(gr) << "\n";
  os << "}\n";
  return os.str();
}

}  // namespace zt::ir
