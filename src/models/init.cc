// Deterministic parameter initialization.
#include "models/init.h"

#include <cmath>
#include <random>

#include "core/check.h"

namespace zt::models {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

void Store(const Tensor& t, int64_t i, float v) {
  switch (t.dtype) {
    case DType::kF32: t.as<float>()[i] = v; break;
    case DType::kBF16: t.as<BFloat16>()[i] = FloatToBF16(v); break;
    case DType::kF16: t.as<Half>()[i] = FloatToHalf(v); break;
    default: ZT_CHECK(false) << "parameters must be floating";
  }
}

}  // namespace

void InitParam(const std::string& name, const Tensor& t, const InitOptions& o) {
  int64_t n = t.numel();
  bool is_norm = name.find("norm") != std::string::npos || name.find(".ln_") != std::string::npos;
  if (EndsWith(name, ".bias")) {
    for (int64_t i = 0; i < n; ++i) Store(t, i, 0.0f);
    return;
  }
  if (is_norm) {
    for (int64_t i = 0; i < n; ++i) Store(t, i, 1.0f);
    return;
  }
  double std = o.std;
  if (EndsWith(name, "attn.c_proj.weight") || EndsWith(name, "mlp.c_proj.weight") ||
      EndsWith(name, "o_proj.weight") || EndsWith(name, "down_proj.weight")) {
    std /= std::sqrt(2.0 * static_cast<double>(o.n_layer));
  }
  std::mt19937_64 rng(o.seed ^ Fnv1a(name));
  auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * (1.0 / 9007199254740992.0); };
  for (int64_t i = 0; i < n; i += 2) {  // Box-Muller: two normals per draw
    double r = std::sqrt(-2.0 * std::log(uniform()));
    double a = 2.0 * M_PI * uniform();
    Store(t, i, static_cast<float>(std * r * std::cos(a)));
    if (i + 1 < n) Store(t, i + 1, static_cast<float>(std * r * std::sin(a)));
  }
}

}  // namespace zt::models
