// Per-op time accounting (op_profiler.h).
#include "runtime/op_profiler.h"

#include <algorithm>
#include <cstdio>
#include <vector>

#include "ir/op_registry.h"

namespace zt {

void OpProfiler::Add(const ir::Node& node, double seconds) {
  OpTotals& t = ops_[node.op->name];
  ir::Cost c = ir::NodeCost(node);
  ++t.nodes;
  t.seconds += seconds;
  t.flops += c.flops;
  t.bytes += static_cast<double>(c.bytes_read + c.bytes_written);
  NodeTotals& n = nodes_[&node];
  if (n.what.empty()) {
    n.what = node.op->name + "(";
    for (size_t i = 0; i < node.inputs.size(); ++i) {
      n.what += (i ? ", " : "") + std::string(DTypeName(node.inputs[i]->dtype)) + node.inputs[i]->shape.ToString();
    }
    n.what += ")";
    for (const auto& [k, v] : node.attrs.items()) {
      if (const bool* b = std::get_if<bool>(&v); b && *b) n.what += " " + k;  // boolean flags that are set
    }
  }
  n.seconds += seconds;
  n.flops += c.flops;
}

std::string OpProfiler::Report() const {
  const int64_t runs = counted_runs();
  if (runs == 0 || ops_.empty()) return "";
  std::vector<std::pair<std::string, OpTotals>> rows(ops_.begin(), ops_.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.seconds > b.second.seconds; });
  double total = 0;
  for (const auto& [name, t] : rows) total += t.seconds;
  std::string out;
  char line[256];
  std::snprintf(line, sizeof(line), "per-op profile (%lld runs; ms per run; node-synchronized):\n",
                static_cast<long long>(runs));
  out += line;
  std::snprintf(line, sizeof(line), "  %-26s %7s %10s %7s %9s %9s\n", "op", "nodes", "ms", "share", "TFLOP/s", "GB/s");
  out += line;
  for (const auto& [name, t] : rows) {
    double s = t.seconds / static_cast<double>(runs);
    double tflops = t.seconds > 0 ? t.flops / t.seconds / 1e12 : 0;
    double gbs = t.seconds > 0 ? t.bytes / t.seconds / 1e9 : 0;
    std::snprintf(line, sizeof(line), "  %-26s %7lld %10.3f %6.1f%% %9.1f %9.1f\n", name.c_str(),
                  static_cast<long long>(t.nodes / runs), s * 1e3, 100.0 * t.seconds / total, tflops, gbs);
    out += line;
  }
  std::snprintf(line, sizeof(line), "  %-26s %7s %10.3f\n", "total", "", total / static_cast<double>(runs) * 1e3);
  out += line;
  std::vector<const NodeTotals*> slow;
  for (const auto& [node, t] : nodes_) slow.push_back(&t);
  std::sort(slow.begin(), slow.end(), [](const NodeTotals* a, const NodeTotals* b) { return a->seconds > b->seconds; });
  out += "slowest nodes (ms per run, TFLOP/s):\n";
  for (size_t i = 0; i < slow.size() && i < 24; ++i) {
    double s = slow[i]->seconds / static_cast<double>(runs);
    std::snprintf(line, sizeof(line), "  %8.3f %7.1f  ", s * 1e3,
                  slow[i]->seconds > 0 ? slow[i]->flops / slow[i]->seconds / 1e12 : 0.0);
    out += line + slow[i]->what.substr(0, 160) + "\n";
  }
  return out;
}

}  // namespace zt
