// Backend's default host staging memory: plain 4096-aligned allocations.
#include "backend/backend.h"

#include <cstdlib>

namespace zt {

void* Backend::AllocateHost(size_t bytes) {
  constexpr size_t kAlign = 4096;
  return std::aligned_alloc(kAlign, (bytes + kAlign - 1) / kAlign * kAlign);
}

void Backend::FreeHost(void* p) { std::free(p); }

}  // namespace zt
