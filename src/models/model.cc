// Shared model-builder helpers.
#include "models/model.h"

#include <string>

namespace zt::models {

Status RequirePositive(int64_t v, const char* family, const char* key) {
  if (v > 0) return OkStatus();
  return InvalidArgument(std::string(family) + " config: " + key + " must be > 0, is " + std::to_string(v));
}

}  // namespace zt::models
