// The step program of a run: from a RunConfig, the model's HF config is read, its forward graph
// built for one micro-batch at the run's precision, and (for compile-only use) the whole step
// graph appended. Shared by `ztrain train` and `ztrain compile` so both see the same program.
#pragma once

#include <memory>
#include <vector>

#include "config/run_config.h"
#include "ir/graph.h"
#include "models/hf_config.h"
#include "runtime/engine.h"

namespace zt::job {

struct ModelGraph {
  models::ModelConfig model;
  std::unique_ptr<ir::Graph> graph;  // the forward graph
  models::BuiltModel built;
  std::vector<std::string> warnings;  // from the HF config
};

// The dtype parameters and activations use for a precision (bf16, f16 or f32).
DType ComputeDType(config::Precision p);

StatusOr<ModelGraph> BuildModelGraph(const config::RunConfig& c);

}  // namespace zt::job
