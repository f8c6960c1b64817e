// MemCategory: what a byte of device or host memory is for. The static memory plan predicts, and
// the allocator measures, live and peak bytes per category; reports list them side by side.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace zt {

enum class MemCategory : int {
  kParameters = 0,
  kGradients,
  kOptimizerState,
  kActivations,
  kCommBuffers,
  kWorkspace,
};
inline constexpr int kNumMemCategories = 6;

// Every allocation and every planned value is rounded up to this many bytes, by the allocator and
// the memory planner alike, so predicted and measured bytes can be compared exactly.
inline constexpr size_t kMemAlignment = 256;
inline constexpr size_t AlignedBytes(size_t n) {
  return (n + kMemAlignment - 1) / kMemAlignment * kMemAlignment;
}

const char* MemCategoryName(MemCategory c);  // "parameters", "gradients", ...
std::optional<MemCategory> ParseMemCategory(std::string_view name);

}  // namespace zt
