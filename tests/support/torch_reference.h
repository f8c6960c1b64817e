// Test support: runs tests/models/torch_reference.py (Debian's python3-torch) and opens the
// safetensors file it writes; helpers to read its tensors as f32 vectors.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "models/safetensors.h"

namespace zt::testing {

// Runs the reference with the given arguments (e.g. "gpt2 --layers 2"); the output path is added.
// Fails the test (ADD_FAILURE) and returns nullptr when python or torch is missing.
std::unique_ptr<models::SafetensorsFile> RunTorchReference(const std::string& args, const std::string& tag);

std::vector<float> ToF32Vector(const models::SafetensorsFile& f, const std::string& name);
std::vector<int64_t> ToIntVector(const models::SafetensorsFile& f, const std::string& name);

// max_i |a_i - b_i| / max_i |b_i| (0 when both are all zero): the error relative to the
// tensor's scale, so tiny elements do not dominate.
double ScaledMaxError(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace zt::testing
