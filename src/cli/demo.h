// `ztrain demo`: trains a tiny GPT-2 on the synthetic Markov corpus on the CPU and prints the
// loss as it falls toward the corpus's floor.
#pragma once

#include <cstdint>

namespace zt::cli {

struct DemoOptions {
  int64_t steps = 300;
  int64_t print_every = 20;
  uint64_t seed = 1;
  double lr = 3e-3;
};

int RunDemo(const DemoOptions& o);

}  // namespace zt::cli
