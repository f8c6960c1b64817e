// Runs the PyTorch reference script and reads its results.
#include "support/torch_reference.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <unistd.h>

#include "kernels/cpu/dispatch.h"

namespace zt::testing {

std::unique_ptr<models::SafetensorsFile> RunTorchReference(const std::string& args, const std::string& tag) {
  std::string out = ::testing::TempDir() + "zt_torch_ref_" + tag + "." + std::to_string(getpid()) + ".safetensors";
  std::string cmd = std::string(ZT_PYTHON) + " " + ZT_SOURCE_DIR + "/tests/models/torch_reference.py " + args +
                    " --out " + out;
  int rc = std::system(cmd.c_str());
  if (rc != 0) {
    ADD_FAILURE() << "the PyTorch reference failed (" << cmd << ", status " << rc
                  << "); run scripts/install-deps.sh to install python3-torch";
    return nullptr;
  }
  auto f = models::SafetensorsFile::Open(out);
  if (!f.ok()) {
    ADD_FAILURE() << f.status().ToString();
    return nullptr;
  }
  return std::move(*f);
}

std::vector<float> ToF32Vector(const models::SafetensorsFile& f, const std::string& name) {
  const auto* e = f.Find(name);
  ZT_CHECK(e != nullptr) << "reference has no tensor " << name;
  Tensor t = f.View(*e);
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = GetF32(t, static_cast<int64_t>(i));
  return v;
}

std::vector<int64_t> ToIntVector(const models::SafetensorsFile& f, const std::string& name) {
  const auto* e = f.Find(name);
  ZT_CHECK(e != nullptr) << "reference has no tensor " << name;
  Tensor t = f.View(*e);
  std::vector<int64_t> v(static_cast<size_t>(t.numel()));
  for (size_t i = 0; i < v.size(); ++i) v[i] = GetIndex(t, static_cast<int64_t>(i));
  return v;
}

double ScaledMaxError(const std::vector<float>& a, const std::vector<float>& b) {
  ZT_CHECK_EQ(a.size(), b.size());
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  if (scale == 0) return diff;
  return diff / scale;
}

}  // namespace zt::testing
