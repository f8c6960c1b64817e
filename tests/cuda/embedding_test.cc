// CUDA embedding / embedding_bwd against the CPU reference: gathers and gradients through autodiff
// for f32/bf16/f16 tables, i32 and i64 ids, odd widths (C = 1, 7, 33: the scalar path) and vector
// widths (64, 768), vocabularies of 1, 3 (every id repeated thousands of times), 7, 50257 (GPT-2,
// with its full 16 x 1024 batch) and 128256 (Llama 3). The backward's stable GPU sort is checked
// bit for bit against the CPU's counting sort at sizes around its shared-memory tile (4096) and
// far past it (70000 positions). Out-of-range ids must never be dereferenced: the forward writes
// NaN rows there, the backward leaves them out, and both record the first one in the device flag.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "direct_kernel.h"
#include "ir/ops/embedding.h"
#include "support/device_compare.h"
#include "support/graph_runner.h"
#ifdef ZT_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#include "kernels/cuda/embedding.cuh"
#endif

namespace zt {
namespace {

using testing::CompareOptions;
using testing::CompareWithCpu;
using testing::DirectTensor;

const DType kFloatTypes[] = {DType::kF32, DType::kBF16, DType::kF16};

struct Case {
  Shape ids;
  int64_t vocab, c, index_max;
};

void CompareEmbedding(DType dt, DType id_type, const Case& k, bool gradients) {
  SCOPED_TRACE(std::string(DTypeName(dt)) + " ids " + DTypeName(id_type) + k.ids.ToString() + " V " +
               std::to_string(k.vocab) + " C " + std::to_string(k.c) + " ids < " + std::to_string(k.index_max) +
               (gradients ? " with gradients" : ""));
  CompareOptions o;
  o.gradients = gradients;
  testing::DeviceInput ids{"ids", k.ids, id_type};
  ids.index_max = k.index_max;
  CompareWithCpu({ids, {"table", Shape{k.vocab, k.c}, dt}},
                 [](ir::Builder& b, const std::vector<ir::Value*>& v) {
                   return std::vector<ir::Value*>{ir::ops::Embedding(b, v[0], v[1], "emb")};
                 },
                 o);
}

TEST(CudaEmbedding, ForwardAndGradientsMatchCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const Case cases[] = {{{1}, 1, 1, 1},         {{3, 7}, 7, 7, 7},          {{2, 33}, 50257, 33, 50257},
                        {{8, 1024}, 3, 64, 3},   {{4, 1000}, 1000, 768, 1000}, {{5}, 10, 33, 10},
                        {{2, 9}, 128256, 64, 128256}};
  int i = 0;
  for (DType dt : kFloatTypes) {
    for (const Case& k : cases) {
      DType id_type = (i++ % 2) ? DType::kI64 : DType::kI32;
      CompareEmbedding(dt, id_type, k, false);
      CompareEmbedding(dt, id_type, k, true);
    }
  }
}

TEST(CudaEmbedding, ModelShapes) {
  ZT_SKIP_WITHOUT_CUDA();
  CompareEmbedding(DType::kBF16, DType::kI32, {{16, 1024}, 50257, 768, 50257}, true);   // GPT-2 124M wte
  CompareEmbedding(DType::kBF16, DType::kI64, {{4, 2048}, 128256, 64, 128256}, true);   // Llama-3 vocab
  CompareEmbedding(DType::kF32, DType::kI32, {{16, 1024}, 1024, 768, 1024}, true);      // GPT-2 wpe
}

// ---- Direct runs ----

std::unique_ptr<Backend>& Cuda() {
  static std::unique_ptr<Backend> b = testing::MakeCudaBackend();
  return b;
}

DirectTensor Ids(DType id_type, const std::vector<int64_t>& v, size_t offset = 0) {
  DirectTensor t;
  t.dtype = id_type;
  t.shape = Shape{static_cast<int64_t>(v.size())};
  t.bytes.resize(v.size() * DTypeSize(id_type));
  for (size_t i = 0; i < v.size(); ++i) {
    if (id_type == DType::kI32) {
      int32_t x = static_cast<int32_t>(v[i]);
      std::memcpy(t.bytes.data() + 4 * i, &x, 4);
    } else {
      std::memcpy(t.bytes.data() + 8 * i, &v[i], 8);
    }
  }
  t.offset = offset;
  return t;
}

DirectTensor Floats(DType dt, Shape s, uint64_t seed, size_t offset = 0) {
  DirectTensor t;
  t.dtype = dt;
  t.shape = std::move(s);
  t.bytes = testing::ToBytes(dt, testing::RandomUniform(t.shape.numel(), seed));
  t.offset = offset;
  return t;
}

DirectTensor Out(DType dt, Shape s, size_t offset = 0) {
  DirectTensor t;
  t.dtype = dt;
  t.shape = std::move(s);
  t.offset = offset;
  return t;
}

// The GPU sums each row's positions in position order in f32, exactly as the CPU does.
TEST(CudaEmbedding, BackwardIsBitIdenticalToCpu) {
  ZT_SKIP_WITHOUT_CUDA();
  const int64_t sizes[] = {1, 2, 3, 1000, 4095, 4096, 4097, 5000, 16384, 20000, 70000};
  for (int64_t n : sizes) {
    for (int64_t vocab : {int64_t{3}, int64_t{50257}}) {
      for (int64_t c : {int64_t{7}, int64_t{64}}) {
        for (DType dt : {DType::kF32, DType::kBF16}) {
          SCOPED_TRACE("N " + std::to_string(n) + " V " + std::to_string(vocab) + " C " + std::to_string(c) + " " +
                       DTypeName(dt));
          DirectTensor ids = Ids(n % 2 ? DType::kI64 : DType::kI32, testing::RandomInts(n, n + vocab, 0, vocab));
          DirectTensor dout = Floats(dt, {n, c}, 5);
          ir::AttrMap attrs{{"num_embeddings", vocab}};
          CpuBackend cpu;
          auto ref = testing::RunKernelDirect(cpu, "embedding_bwd", attrs, {ids, dout}, {Out(dt, {vocab, c})});
          auto got = testing::RunKernelDirect(*Cuda(), "embedding_bwd", attrs, {ids, dout}, {Out(dt, {vocab, c})});
          testing::ExpectBitwiseEqual("dtable", dt, ref[0], got[0]);
        }
      }
    }
  }
}

TEST(CudaEmbedding, MisalignedTensors) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : kFloatTypes) {
    const size_t es = DTypeSize(dt);
    SCOPED_TRACE(DTypeName(dt));
    const int64_t vocab = 100, c = 64, n = 300;
    DirectTensor ids = Ids(DType::kI32, testing::RandomInts(n, 3, 0, vocab));
    CpuBackend cpu;
    DirectTensor table = Floats(dt, {vocab, c}, 4, es);
    auto ref = testing::RunKernelDirect(cpu, "embedding", {}, {ids, table}, {Out(dt, {n, c})});
    auto got = testing::RunKernelDirect(*Cuda(), "embedding", {}, {ids, table}, {Out(dt, {n, c})});
    testing::ExpectBitwiseEqual("out", dt, ref[0], got[0]);
    ir::AttrMap attrs{{"num_embeddings", vocab}};
    DirectTensor dout = Floats(dt, {n, c}, 6, es);
    ref = testing::RunKernelDirect(cpu, "embedding_bwd", attrs, {ids, dout}, {Out(dt, {vocab, c})});
    got = testing::RunKernelDirect(*Cuda(), "embedding_bwd", attrs, {ids, dout}, {Out(dt, {vocab, c}, 2 * es)});
    testing::ExpectBitwiseEqual("dtable", dt, ref[0], got[0]);
  }
}

#ifdef ZT_WITH_CUDA
TEST(CudaEmbedding, OutOfRangeIdsAreRecordedNotRead) {
  ZT_SKIP_WITHOUT_CUDA();
  cudaStream_t s = CudaStreamOf(Cuda()->stream(StreamKind::kCompute));
  TakeEmbeddingIdErrors(s);  // start clean
  const int64_t vocab = 50, c = 16;
  std::vector<int64_t> idv = {3, 49, 50, 7, -1, 3, 1000000000, 0};  // bad at 2, 4, 6
  for (DType id_type : {DType::kI32, DType::kI64}) {
    SCOPED_TRACE(DTypeName(id_type));
    const int64_t n = static_cast<int64_t>(idv.size());
    DirectTensor ids = Ids(id_type, idv);
    DirectTensor table = Floats(DType::kF32, {vocab, c}, 9);
    auto out = testing::RunKernelDirect(*Cuda(), "embedding", {}, {ids, table}, {Out(DType::kF32, {n, c})});
    const float* y = reinterpret_cast<const float*>(out[0].data());
    const float* t = reinterpret_cast<const float*>(table.bytes.data());
    for (int64_t p = 0; p < n; ++p) {
      bool bad = idv[p] < 0 || idv[p] >= vocab;
      for (int64_t j = 0; j < c; ++j) {
        if (bad) {
          EXPECT_TRUE(std::isnan(y[p * c + j])) << "position " << p << " col " << j;
        } else {
          EXPECT_EQ(y[p * c + j], t[idv[p] * c + j]) << "position " << p << " col " << j;
        }
      }
    }
    EmbeddingIdErrors e = TakeEmbeddingIdErrors(s);
    EXPECT_EQ(e.count, 3);
    EXPECT_EQ(e.position, 2);
    EXPECT_EQ(e.id, 50);
    EXPECT_EQ(TakeEmbeddingIdErrors(s).count, 0) << "the record is cleared once read";

    // Backward: bad positions contribute nothing; the rest sums in position order.
    DirectTensor dout = Floats(DType::kF32, {n, c}, 10);
    ir::AttrMap attrs{{"num_embeddings", vocab}};
    auto got = testing::RunKernelDirect(*Cuda(), "embedding_bwd", attrs, {ids, dout}, {Out(DType::kF32, {vocab, c})});
    std::vector<float> want(vocab * c, 0.0f);
    const float* g = reinterpret_cast<const float*>(dout.bytes.data());
    for (int64_t p = 0; p < n; ++p) {
      if (idv[p] < 0 || idv[p] >= vocab) continue;
      for (int64_t j = 0; j < c; ++j) want[idv[p] * c + j] += g[p * c + j];
    }
    testing::ExpectNear("dtable", DType::kF32, testing::ToBytes(DType::kF32, want), got[0], {0.0, 0.0});
    e = TakeEmbeddingIdErrors(s);
    EXPECT_EQ(e.count, 3);
    EXPECT_EQ(e.position, 2);
    EXPECT_EQ(e.id, 50);
  }
}
#endif

}  // namespace
}  // namespace zt
