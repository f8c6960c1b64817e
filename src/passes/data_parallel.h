// Data parallelism without sharding (ZeRO stage 0) as a graph rewrite: every gradient the
// optimizer reads is all-reduced (avg) over world_size ranks on the comm stream before the norm
// and the update, and the loss is averaged over ranks for reporting. With world_size 1 the graph
// is left unchanged.
#pragma once

#include "passes/pass.h"

namespace zt::passes {

class DataParallelPass final : public Pass {
 public:
  explicit DataParallelPass(int64_t world_size) : world_size_(world_size) {}
  std::string name() const override { return "data_parallel"; }
  StatusOr<bool> Run(ir::Graph& g) override;

 private:
  int64_t world_size_;
};

}  // namespace zt::passes
