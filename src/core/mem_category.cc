// Names of memory categories.
#include "core/mem_category.h"

namespace zt {

const char* MemCategoryName(MemCategory c) {
  switch (c) {
    case MemCategory::kParameters: return "parameters";
    case MemCategory::kGradients: return "gradients";
    case MemCategory::kOptimizerState: return "optimizer_state";
    case MemCategory::kActivations: return "activations";
    case MemCategory::kCommBuffers: return "comm_buffers";
    case MemCategory::kWorkspace: return "workspace";
  }
  return "unknown";
}

std::optional<MemCategory> ParseMemCategory(std::string_view name) {
  for (int i = 0; i < kNumMemCategories; ++i) {
    auto c = static_cast<MemCategory>(i);
    if (name == MemCategoryName(c)) return c;
  }
  return std::nullopt;
}

}  // namespace zt
