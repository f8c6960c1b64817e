// Test support: graphs of AdamW updates over several tensors, as one adamw_multi node or as one
// adamw node per tensor, with the same value names either way (so the two can be run side by side
// and compared value by value): inputs "s" (scalars) and "ss" (grad_sumsq), and per tensor with
// suffix x: param "p<x>", input "g<x>", states "m<x>", "v<x>" and, with master weights, "w<x>".
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "ir/graph.h"

namespace zt::testing {

struct AdamWTensors {
  DType param = DType::kF32, grad = DType::kF32;
  bool master = false;
  std::vector<std::pair<std::string, int64_t>> suffix_and_size;
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

// Suffixes "0", "1", ... for the given sizes.
std::vector<std::pair<std::string, int64_t>> IndexedSizes(const std::vector<int64_t>& sizes);

// multi: one adamw_multi node "upd"; otherwise adamw nodes "upd<x>", in tensor order.
std::unique_ptr<ir::Graph> BuildAdamWGraph(const AdamWTensors& t, bool multi);

}  // namespace zt::testing
