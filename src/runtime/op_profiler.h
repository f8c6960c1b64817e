// OpProfiler: where a step's time goes, per op. With ZT_PROFILE=1 the executor runs every node
// eagerly (no CUDA graph), waits for the device after each node and charges the elapsed wall time
// to it; the first `skip_runs` Runs (warm-up: plans, algorithm searches) are not counted.
// Report() is a table per op name: nodes per step, ms per step, share, and the rates the op's
// cost implies (TFLOP/s, GB/s); then the slowest nodes, with their shapes. Host synchronization per node adds a few microseconds each, so
// the total is a little above an unprofiled step's time; shares are what it is for.
// Invariant: each counted Run adds every node it ran exactly once.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "ir/graph.h"

namespace zt {

class OpProfiler {
 public:
  explicit OpProfiler(int skip_runs = 2) : skip_runs_(skip_runs) {}
  // Called once per Run before its nodes; returns whether this Run is counted.
  bool BeginRun() { return ++runs_ > skip_runs_; }
  void Add(const ir::Node& node, double seconds);
  int64_t counted_runs() const { return runs_ > skip_runs_ ? runs_ - skip_runs_ : 0; }
  // Per-op table over the counted Runs (averaged per Run); empty when none was counted.
  std::string Report() const;

 private:
  struct OpTotals {
    int64_t nodes = 0;
    double seconds = 0, flops = 0, bytes = 0;
  };
  int skip_runs_;
  int64_t runs_ = 0;
  std::map<std::string, OpTotals> ops_;
  struct NodeTotals {
    std::string what;  // op, input shapes and dtypes, attributes
    double seconds = 0, flops = 0;
  };
  std::map<const ir::Node*, NodeTotals> nodes_;
};

}  // namespace zt
