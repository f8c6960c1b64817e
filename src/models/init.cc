// Deterministic parameter initialization.
#include "models/init.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "core/check.h"

namespace zt::models {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

constexpr int64_t kChunk = 1 << 16;  // even: Box-Muller pairs never straddle chunks

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
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
  // Independent streams per chunk of kChunk elements, so chunks fill in parallel and the values
  // do not depend on the thread count.
  const uint64_t base = o.seed ^ Fnv1a(name);
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) {
    std::mt19937_64 rng(SplitMix64(base + static_cast<uint64_t>(c) * 0x9E3779B97F4A7C15ull));
    auto uniform = [&] { return (static_cast<double>(rng() >> 11) + 0.5) * (1.0 / 9007199254740992.0); };
    const int64_t end = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < end; i += 2) {  // Box-Muller: two normals per draw
      double r = std::sqrt(-2.0 * std::log(uniform()));
      double a = 2.0 * M_PI * uniform();
      Store(t, i, static_cast<float>(std * r * std::cos(a)));
      if (i + 1 < end) Store(t, i + 1, static_cast<float>(std * r * std::sin(a)));
    }
  }
}

}  // namespace zt::models
