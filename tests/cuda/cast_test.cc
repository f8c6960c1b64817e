// CUDA cast against the CPU reference, bit for bit, for every dtype pair the op allows: every one
// of the 65,536 bf16 and f16 bit patterns; f32 specials (ties of both 16-bit formats, overflow,
// subnormals, infinities, NaN payloads) and a million random f32 bit patterns; integers around
// 2^24 and at the i32/i64 limits, where integer -> bf16/f16 must round once (no double rounding);
// every u8; same-dtype copies of every dtype. Misaligned tensors (scalar path) run directly, and
// GPT-2-sized activations through graphs, with the backward cast.
#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <random>

#include "direct_kernel.h"
#include "ir/ops/cast.h"
#include "support/device_compare.h"
#include "support/graph_runner.h"

namespace zt {
namespace {

using testing::DirectTensor;

const DType kAll[] = {DType::kF32, DType::kBF16, DType::kF16, DType::kI32, DType::kI64, DType::kU8};
const DType kFloats[] = {DType::kF32, DType::kBF16, DType::kF16};

std::unique_ptr<Backend>& Cuda() {
  static std::unique_ptr<Backend> b = testing::MakeCudaBackend();
  return b;
}

template <typename T>
DirectTensor Raw(DType dt, const std::vector<T>& v, size_t offset = 0) {
  DirectTensor t;
  t.dtype = dt;
  t.shape = Shape{static_cast<int64_t>(v.size())};
  t.bytes.resize(v.size() * sizeof(T));
  std::memcpy(t.bytes.data(), v.data(), t.bytes.size());
  t.offset = offset;
  return t;
}

// cast(in) -> `to` on both backends; the results must be identical bytes.
void CheckCast(const DirectTensor& in, DType to, size_t out_offset = 0) {
  SCOPED_TRACE(std::string(DTypeName(in.dtype)) + " -> " + DTypeName(to) + " n " + std::to_string(in.shape.numel()) +
               " offsets " + std::to_string(in.offset) + "/" + std::to_string(out_offset));
  DirectTensor out;
  out.dtype = to;
  out.shape = in.shape;
  out.offset = out_offset;
  ir::AttrMap attrs{{"dtype", to}};
  CpuBackend cpu;
  auto ref = testing::RunKernelDirect(cpu, "cast", attrs, {in}, {out});
  auto got = testing::RunKernelDirect(*Cuda(), "cast", attrs, {in}, {out});
  testing::ExpectBitwiseEqual("cast", to, ref[0], got[0]);
}

std::vector<uint16_t> All16() {
  std::vector<uint16_t> v(65536);
  for (uint32_t i = 0; i < 65536; ++i) v[i] = static_cast<uint16_t>(i);
  return v;
}

std::vector<uint32_t> F32Bits() {
  std::vector<uint32_t> v = {0x00000000u, 0x80000000u, 0x3f800000u, 0xbf800000u, 0x7f800000u, 0xff800000u,
                             0x7fc00000u, 0xffc12345u, 0x7f800001u, 0x7fbfffffu,  // NaNs, signaling too
                             0x3f808000u, 0x3f818000u, 0x3f801000u, 0x3f803000u, 0x3f808001u, 0x3f807fffu,
                             0x7f7fffffu, 0x477fe000u, 0x477fefffu, 0x477ff000u, 0x47800000u,  // f16 max region
                             0x00000001u, 0x007fffffu, 0x00800000u, 0x33800000u, 0x33000000u, 0x33000001u,
                             0x387fc000u, 0x38800000u, 0x387ff000u, 0x7f7f8000u, 0x7f7f7fffu};
  std::mt19937 rng(1234);
  for (int i = 0; i < 1000000; ++i) v.push_back(static_cast<uint32_t>(rng()));
  // Dense around f16's normal/subnormal boundary and bf16/f16 ties.
  for (uint32_t b = 0x38000000u; b < 0x38000000u + 40000u; b += 7) v.push_back(b);
  return v;
}

TEST(CudaCast, Every16BitPatternBitExact) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType from : {DType::kBF16, DType::kF16})
    for (DType to : kFloats) CheckCast(Raw(from, All16()), to);
}

TEST(CudaCast, F32SpecialsAndRandomBitsBitExact) {
  ZT_SKIP_WITHOUT_CUDA();
  auto bits = F32Bits();
  for (DType to : kFloats) CheckCast(Raw(DType::kF32, bits), to);
}

TEST(CudaCast, IntegersRoundOnce) {
  ZT_SKIP_WITHOUT_CUDA();
  std::vector<int64_t> i64 = {0, 1, -1, 255, 256, 2047, 2048, 2049, 2050, 2051, 4097, 65504, 65519, 65520, 65535,
                              (1 << 24) - 1, 1 << 24, (1 << 24) + 1, (1 << 24) + 3, (1 << 25) + 2,
                              std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min(),
                              std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                              (int64_t{1} << 53) + 1, -(int64_t{1} << 40) - 12345};
  // bf16 ties with sticky bits below the f32 mantissa: 2^30 + 2^22 (tie) and + 1 (just above).
  for (int64_t base : {int64_t{1} << 30, int64_t{3} << 40}) {
    int64_t half_ulp_bf16 = base >> 8;
    for (int64_t d : {int64_t{0}, int64_t{1}, int64_t{-1}}) {
      i64.push_back(base + half_ulp_bf16 + d);
      i64.push_back(-(base + 3 * half_ulp_bf16 + d));
    }
  }
  std::mt19937_64 rng(99);
  for (int i = 0; i < 200000; ++i) {
    uint64_t r = rng();
    int shift = static_cast<int>(rng() % 64);
    i64.push_back(static_cast<int64_t>(r >> shift) * ((r & 1) ? -1 : 1));
  }
  std::vector<int32_t> i32;
  for (int64_t v : i64) i32.push_back(static_cast<int32_t>(v));  // wraps: still every bit pattern class
  for (DType to : kFloats) {
    CheckCast(Raw(DType::kI64, i64), to);
    CheckCast(Raw(DType::kI32, i32), to);
  }
  std::vector<uint8_t> u8(256);
  for (int i = 0; i < 256; ++i) u8[i] = static_cast<uint8_t>(i);
  for (DType to : kFloats) CheckCast(Raw(DType::kU8, u8), to);
}

TEST(CudaCast, SameDtypeCopies) {
  ZT_SKIP_WITHOUT_CUDA();
  std::mt19937 rng(5);
  std::vector<uint8_t> bytes(8 * 1001);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng());
  for (DType dt : kAll) {
    DirectTensor t;
    t.dtype = dt;
    t.shape = Shape{static_cast<int64_t>(bytes.size() / DTypeSize(dt))};
    t.bytes.assign(bytes.begin(), bytes.end());
    CheckCast(t, dt);
  }
}

TEST(CudaCast, MisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  auto bits = F32Bits();
  bits.resize(4099);
  auto b16 = All16();
  b16.resize(4099);
  std::vector<int64_t> i64(4099);
  for (size_t i = 0; i < i64.size(); ++i) i64[i] = (static_cast<int64_t>(i) * 2654435761LL) << (i % 40);
  for (size_t off : {size_t{2}, size_t{4}, size_t{6}, size_t{8}, size_t{12}}) {
    for (DType to : kFloats) {
      if (off % 4 == 0) CheckCast(Raw(DType::kF32, bits, off), to, 0);
      CheckCast(Raw(DType::kBF16, b16, off), to, to == DType::kF32 ? off - off % 4 : off);
      CheckCast(Raw(DType::kF16, b16, 0), to, to == DType::kF32 ? off - off % 4 : off);
      if (off % 8 == 0) CheckCast(Raw(DType::kI64, i64, off), to, off);
    }
  }
}

TEST(CudaCast, Gpt2ActivationsThroughGraphs) {
  ZT_SKIP_WITHOUT_CUDA();
  testing::CompareOptions exact;
  exact.tolerance = testing::Tolerance{0.0, 0.0};
  for (DType from : kFloats)
    for (DType to : kFloats) {
      if (from == to) continue;
      SCOPED_TRACE(std::string(DTypeName(from)) + " -> " + DTypeName(to));
      testing::CompareWithCpu({{"x", Shape{16384, 768}, from, -70.0f, 70.0f}},
                              [to](ir::Builder& b, const std::vector<ir::Value*>& v) {
                                return std::vector<ir::Value*>{ir::ops::Cast(b, v[0], to, "y")};
                              },
                              exact);
    }
  // Token ids to floats, and the backward cast (f32 <- bf16).
  testing::CompareWithCpu({{"ids", Shape{16, 1024}, DType::kI32, 0, 0, 50257}},
                          [](ir::Builder& b, const std::vector<ir::Value*>& v) {
                            return std::vector<ir::Value*>{ir::ops::Cast(b, v[0], DType::kBF16, "y")};
                          },
                          exact);
  testing::CompareOptions grads;
  grads.gradients = true;
  testing::CompareWithCpu({{"x", Shape{33, 1000}, DType::kF32}},
                          [](ir::Builder& b, const std::vector<ir::Value*>& v) {
                            return std::vector<ir::Value*>{ir::ops::Cast(b, v[0], DType::kBF16, "y")};
                          },
                          grads);
}

}  // namespace
}  // namespace zt
