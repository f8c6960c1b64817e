// Host-side conversions between f32 values and a parameter's storage dtype (f32, bf16, f16),
// rounding to nearest even. Used where the runtime moves whole parameters in and out.
#pragma once

#include <cstdint>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace zt {

// out = src (n f32 values) in dtype `dt`, resized to n elements.
Status FromF32Buffer(const float* src, int64_t n, DType dt, std::vector<char>* out);
// out[0, n) = the f32 values of n elements of dtype `dt` at src.
void ToF32Buffer(const char* src, DType dt, int64_t n, float* out);

}  // namespace zt
