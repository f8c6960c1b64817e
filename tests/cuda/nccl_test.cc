// NCCL communicator and the CUDA collective kernels (gpu label). World 1 runs in this process on
// one GPU; worlds 2 and 4 run one process per GPU (multi_gpu.h), meeting through a FileStore
// (2) or a TcpStore (4), and skip with fewer GPUs. Every operation is checked against references
// computed here on the host: small-integer data, whose sums and averages (N a power of two) are
// exact in every dtype whatever NCCL's order, must match bit for bit; mixed-magnitude data must
// be within NCCL's rounding (it reduces in the input dtype: (N+1) ulps of the sum of magnitudes)
// and identical on every rank. Covered: f32/bf16/f16, odd sizes, in-place forms, host tensors
// (staged), both directions of a send/recv exchange posted before waiting, the Enqueue* path on
// a caller's stream, argument errors that leave the communicator usable, two communicators on one
// store, the collective kernels (world 1 without a communicator, world 2 through NCCL, and the
// refusal of a non-NCCL communicator), a rank that never joins, and a rank that dies (the others'
// Wait fails within the timeout plus the diagnosis grace, naming it, and later calls refuse).
#include <gtest/gtest.h>

#include "multi_gpu.h"

#ifdef ZT_WITH_CUDA

#include <cuda_runtime.h>

#include <cmath>
#include <random>
#include <regex>

#include "backend/cuda/cuda_backend.h"
#include "comm/cuda/nccl_communicator.h"
#include "comm/file_store.h"
#include "comm/memory_store.h"
#include "comm/tcp_store.h"
#include "comm/thread_communicator.h"
#include "core/dtype.h"
#include "ir/attr.h"
#include "ir/ops/collective.h"
#include "kernels/kernel.h"
#include "support/device_compare.h"

namespace zt::comm {
namespace {

using std::chrono::milliseconds;
using testing::RankInfo;

#define CUDA_CHECK_OK(expr)                                                                          \
  do {                                                                                              \
    cudaError_t e_ = (expr);                                                                        \
    ZT_CHECK(e_ == cudaSuccess) << #expr << ": " << cudaGetErrorName(e_) << " " << cudaGetErrorString(e_); \
  } while (0)

// A device array of n T, poisoned (0xFF bytes: NaN for floats) until written.
template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    CUDA_CHECK_OK(cudaMalloc(&p, std::max<size_t>(n, 1) * sizeof(T)));
    CUDA_CHECK_OK(cudaMemset(p, 0xFF, std::max<size_t>(n, 1) * sizeof(T)));
  }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  void Put(const std::vector<T>& v) { CUDA_CHECK_OK(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice)); }
  std::vector<T> Get() const {
    std::vector<T> v(n);
    CUDA_CHECK_OK(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
  Tensor t() const { return Tensor(p, DTypeOf<T>::value, Shape{static_cast<int64_t>(n)}); }
  Tensor Slice(size_t begin, size_t count) const {
    return Tensor(p + begin, DTypeOf<T>::value, Shape{static_cast<int64_t>(count)});
  }
};

template <typename T>
Tensor HostT(std::vector<T>& v) {
  return Tensor(v.data(), DTypeOf<T>::value, Shape{static_cast<int64_t>(v.size())});
}

// Integers in [-8, 8]: sums over 4 ranks stay within 32, exact in bf16 and f16.
std::vector<float> Ints(uint64_t seed, int rank, size_t n) {
  std::mt19937_64 g(seed * 1000003 + static_cast<uint64_t>(rank) * 7919 + 1);
  std::uniform_int_distribution<int> u(-8, 8);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(u(g));
  return v;
}

// Mixed magnitudes in +-[2^-6, 2^6): rounding shows in the low bits.
std::vector<float> Mixed(uint64_t seed, int rank, size_t n) {
  std::mt19937_64 g(seed * 7919 + static_cast<uint64_t>(rank) * 104729 + 17);
  std::uniform_real_distribution<float> u(0.5f, 1.0f);
  std::uniform_int_distribution<int> e(-6, 5), s(0, 1);
  std::vector<float> v(n);
  for (auto& x : v) x = std::ldexp(s(g) ? u(g) : -u(g), e(g));
  return v;
}

template <typename T>
std::vector<T> As(const std::vector<float>& v) {
  std::vector<T> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = FromF32<T>(v[i]);
  return out;
}

template <typename T>
std::vector<uint8_t> Bytes(const std::vector<T>& v) {
  std::vector<uint8_t> b(v.size() * sizeof(T));
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

template <typename T>
double Ulp();  // relative rounding unit of T
template <>
double Ulp<float>() { return std::ldexp(1.0, -24); }
template <>
double Ulp<BFloat16>() { return std::ldexp(1.0, -8); }
template <>
double Ulp<Half>() { return std::ldexp(1.0, -11); }

using Gen = std::vector<float> (*)(uint64_t, int, size_t);

// The reduction over ranks of gen(seed, r, n) rounded to T, in double; and the sum of magnitudes.
template <typename T>
void Reference(Gen gen, uint64_t seed, int world, size_t n, bool avg, std::vector<double>* ref,
               std::vector<double>* mag) {
  ref->assign(n, 0.0);
  mag->assign(n, 0.0);
  for (int r = 0; r < world; ++r) {
    std::vector<T> x = As<T>(gen(seed, r, n));
    for (size_t i = 0; i < n; ++i) {
      (*ref)[i] += ToF32(x[i]);
      (*mag)[i] += std::fabs(ToF32(x[i]));
    }
  }
  if (avg) {
    for (size_t i = 0; i < n; ++i) {
      (*ref)[i] /= world;
      (*mag)[i] /= world;
    }
  }
}

// got[i] == ref[begin + i] exactly (exact == true) or within NCCL's rounding.
template <typename T>
void ExpectReduced(const std::string& what, const std::vector<T>& got, const std::vector<double>& ref,
                   const std::vector<double>& mag, size_t begin, int world, bool exact) {
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i) {
    double g = ToF32(got[i]), r = ref[begin + i];
    double tol = exact ? 0.0 : (world + 1) * Ulp<T>() * mag[begin + i] + 1e-30;
    if (!(std::fabs(g - r) <= tol)) {
      ADD_FAILURE() << what << ": element " << i << " is " << g << ", expected " << r << " (tolerance " << tol << ")";
      ++bad;
    }
  }
}

const char* TypeName(DType t) { return DTypeName(t); }

// --- the operations, one rank's part ---

template <typename T>
void CheckAllReduce(NcclCommunicator& c, Gen gen, bool exact, size_t n, ReduceOp op) {
  const int world = c.world_size();
  const std::string what = std::string("all_reduce(") + ReduceOpName(op) + ") " + TypeName(DTypeOf<T>::value) + "[" +
                           std::to_string(n) + "]";
  SCOPED_TRACE(what);
  Dev<T> x(n);
  x.Put(As<T>(gen(11, c.rank(), n)));
  ASSERT_TRUE(c.Wait(c.AllReduce(x.t(), op)).ok());
  std::vector<T> got = x.Get();
  std::vector<double> ref, mag;
  Reference<T>(gen, 11, world, n, op == ReduceOp::kAvg, &ref, &mag);
  ExpectReduced(what, got, ref, mag, 0, world, exact);
  // Every rank holds the same bits: gather them all and compare.
  const size_t bytes = n * sizeof(T);
  Dev<uint8_t> all(world * bytes);
  Status s = c.Wait(c.AllGather(Tensor(x.p, DType::kU8, Shape{static_cast<int64_t>(bytes)}), all.t()));
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<uint8_t> every = all.Get(), mine = Bytes(got);
  for (int r = 0; r < world; ++r) {
    EXPECT_TRUE(std::equal(mine.begin(), mine.end(), every.begin() + r * bytes)) << what << ": rank " << r << " differs";
  }
}

template <typename T>
void CheckReduceScatter(NcclCommunicator& c, Gen gen, bool exact, size_t slice, ReduceOp op, bool in_place) {
  const int world = c.world_size(), rank = c.rank();
  const std::string what = std::string("reduce_scatter(") + ReduceOpName(op) + ") " + TypeName(DTypeOf<T>::value) +
                           " slice " + std::to_string(slice) + (in_place ? " in place" : "");
  SCOPED_TRACE(what);
  Dev<T> in(world * slice), out(slice);
  in.Put(As<T>(gen(12, rank, world * slice)));
  Tensor o = in_place ? in.Slice(rank * slice, slice) : out.t();
  Status s = c.Wait(c.ReduceScatter(in.t(), o, op));
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<T> all_in = in.Get();
  std::vector<T> got = in_place ? std::vector<T>(all_in.begin() + rank * slice, all_in.begin() + (rank + 1) * slice)
                                : out.Get();
  std::vector<double> ref, mag;
  Reference<T>(gen, 12, world, world * slice, op == ReduceOp::kAvg, &ref, &mag);
  ExpectReduced(what, got, ref, mag, rank * slice, world, exact);
}

template <typename T>
void CheckAllGather(NcclCommunicator& c, size_t n, bool in_place) {
  const int world = c.world_size(), rank = c.rank();
  SCOPED_TRACE(std::string("all_gather ") + TypeName(DTypeOf<T>::value) + "[" + std::to_string(n) + "]" +
               (in_place ? " in place" : ""));
  Dev<T> in(n), out(world * n);
  std::vector<T> mine = As<T>(Mixed(13, rank, n));
  if (in_place) {
    CUDA_CHECK_OK(cudaMemcpy(out.p + rank * n, mine.data(), n * sizeof(T), cudaMemcpyHostToDevice));
  } else {
    in.Put(mine);
  }
  Status s = c.Wait(c.AllGather(in_place ? out.Slice(rank * n, n) : in.t(), out.t()));
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<T> got = out.Get();
  for (int r = 0; r < world; ++r) {
    std::vector<T> want = As<T>(Mixed(13, r, n));
    EXPECT_EQ(Bytes(std::vector<T>(got.begin() + r * n, got.begin() + (r + 1) * n)), Bytes(want)) << "from rank " << r;
  }
}

// Host tensors go through staging buffers.
void CheckHostTensors(NcclCommunicator& c) {
  const int world = c.world_size(), rank = c.rank();
  SCOPED_TRACE("host tensors");
  std::vector<float> x = Ints(21, rank, 1001);
  ASSERT_TRUE(c.Wait(c.AllReduce(HostT(x), ReduceOp::kSum)).ok());
  std::vector<double> ref, mag;
  Reference<float>(Ints, 21, world, 1001, false, &ref, &mag);
  ExpectReduced("host all_reduce", x, ref, mag, 0, world, true);

  std::vector<int64_t> gin(5), gout(world * 5, -1);
  for (int i = 0; i < 5; ++i) gin[i] = (int64_t{1} << 40) * rank + i;
  ASSERT_TRUE(c.Wait(c.AllGather(HostT(gin), HostT(gout))).ok());
  for (int r = 0; r < world; ++r)
    for (int i = 0; i < 5; ++i) EXPECT_EQ(gout[r * 5 + i], (int64_t{1} << 40) * r + i);

  std::vector<Half> rin = As<Half>(Ints(22, rank, world * 9)), rout(9);
  ASSERT_TRUE(c.Wait(c.ReduceScatter(HostT(rin), HostT(rout), ReduceOp::kAvg)).ok());
  Reference<Half>(Ints, 22, world, world * 9, true, &ref, &mag);
  ExpectReduced("host reduce_scatter", rout, ref, mag, rank * 9, world, true);

  // Device in, host out.
  Dev<float> din(3);
  din.Put({1.0f * rank, 2.0f, 3.0f});
  std::vector<float> hout(world * 3, -1.0f);
  ASSERT_TRUE(c.Wait(c.AllGather(din.t(), HostT(hout))).ok());
  for (int r = 0; r < world; ++r) EXPECT_EQ(hout[r * 3], 1.0f * r);
}

void CheckBroadcast(NcclCommunicator& c) {
  const int world = c.world_size(), rank = c.rank(), root = world - 1;
  SCOPED_TRACE("broadcast");
  Dev<Half> x(77);
  x.Put(As<Half>(Mixed(31, rank, 77)));
  ASSERT_TRUE(c.Wait(c.Broadcast(x.t(), root)).ok());
  EXPECT_EQ(Bytes(x.Get()), Bytes(As<Half>(Mixed(31, root, 77))));
  std::vector<int32_t> h(6, rank == 0 ? 42 : -1);
  ASSERT_TRUE(c.Wait(c.Broadcast(HostT(h), 0)).ok());
  EXPECT_EQ(h, std::vector<int32_t>(6, 42));
}

void CheckSendRecv(NcclCommunicator& c) {
  const int world = c.world_size(), rank = c.rank();
  if (world == 1) return;
  SCOPED_TRACE("send/recv");
  const int next = (rank + 1) % world, prev = (rank + world - 1) % world;
  // Device buffers; both directions posted before either is waited on.
  Dev<int32_t> send(4), recv(4);
  send.Put(std::vector<int32_t>(4, 100 + rank));
  auto ws = c.Send(send.t(), next, 3);
  auto wr = c.Recv(recv.t(), prev, 3);
  Status s = wr->Wait(c.timeout());
  ASSERT_TRUE(s.ok()) << s.ToString();
  ASSERT_TRUE(ws->Wait(c.timeout()).ok());
  EXPECT_EQ(recv.Get(), std::vector<int32_t>(4, 100 + prev));
  // Host buffers, the other way round the ring.
  std::vector<float> hs(1000, 0.5f * rank), hr(1000, -1.0f);
  auto wr2 = c.Recv(HostT(hr), next, 4);
  auto ws2 = c.Send(HostT(hs), prev, 4);
  ASSERT_TRUE(ws2->Wait(c.timeout()).ok());
  ASSERT_TRUE(wr2->Wait(c.timeout()).ok());
  EXPECT_EQ(hr, std::vector<float>(1000, 0.5f * next));
}

// The device path: queued on a caller's stream, no host wait until we synchronize it.
void CheckEnqueue(NcclCommunicator& c) {
  const int world = c.world_size(), rank = c.rank();
  SCOPED_TRACE("enqueue");
  cudaStream_t s;
  CUDA_CHECK_OK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  const size_t n = 1000, slice = 7;
  Dev<float> ar_in(n), ar_out(n);
  ar_in.Put(Ints(41, rank, n));
  Dev<BFloat16> rs_in(world * slice), rs_out(slice);
  rs_in.Put(As<BFloat16>(Ints(42, rank, world * slice)));
  Dev<Half> ag(world * 33);
  CUDA_CHECK_OK(cudaMemcpy(ag.p + rank * 33, As<Half>(Mixed(43, rank, 33)).data(), 33 * sizeof(Half),
                           cudaMemcpyHostToDevice));
  Dev<float> inplace(5);
  inplace.Put(Ints(44, rank, 5));
  ASSERT_TRUE(c.EnqueueAllReduce(ar_in.t(), ar_out.t(), ReduceOp::kAvg, s).ok());
  ASSERT_TRUE(c.EnqueueReduceScatter(rs_in.t(), rs_out.t(), ReduceOp::kSum, s).ok());
  ASSERT_TRUE(c.EnqueueAllGather(ag.Slice(rank * 33, 33), ag.t(), s).ok());
  ASSERT_TRUE(c.EnqueueAllReduce(inplace.t(), inplace.t(), ReduceOp::kSum, s).ok());
  ASSERT_TRUE(c.Watch(s, "the enqueue test's stream").ok());
  CUDA_CHECK_OK(cudaStreamSynchronize(s));
  EXPECT_TRUE(c.Health().ok());
  std::vector<double> ref, mag;
  Reference<float>(Ints, 41, world, n, true, &ref, &mag);
  ExpectReduced("enqueued all_reduce(avg)", ar_out.Get(), ref, mag, 0, world, true);
  EXPECT_EQ(Bytes(ar_in.Get()), Bytes(Ints(41, rank, n))) << "out of place: the input must stay";
  Reference<BFloat16>(Ints, 42, world, world * slice, false, &ref, &mag);
  ExpectReduced("enqueued reduce_scatter(sum)", rs_out.Get(), ref, mag, rank * slice, world, true);
  std::vector<Half> g = ag.Get();
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(Bytes(std::vector<Half>(g.begin() + r * 33, g.begin() + (r + 1) * 33)), Bytes(As<Half>(Mixed(43, r, 33))));
  }
  Reference<float>(Ints, 44, world, 5, false, &ref, &mag);
  ExpectReduced("enqueued all_reduce in place", inplace.Get(), ref, mag, 0, world, true);
  CUDA_CHECK_OK(cudaStreamDestroy(s));
}

// Refused arguments leave the communicator usable (every rank makes the same mistakes).
void CheckArgumentErrors(NcclCommunicator& c) {
  const int world = c.world_size();
  SCOPED_TRACE("argument errors");
  Dev<int32_t> i(8);
  Dev<float> f(8), small(3);
  EXPECT_EQ(c.Wait(c.AllReduce(i.t(), ReduceOp::kSum)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Wait(c.ReduceScatter(f.t(), f.t(), ReduceOp::kSum)).code(),
            world == 1 ? StatusCode::kOk : StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Wait(c.AllGather(f.t(), small.t())).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Wait(c.Send(f.t(), c.rank(), 0)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Wait(c.Broadcast(f.t(), world)).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(c.EnqueueAllGather(f.t(), small.t(), c.stream()).code(), StatusCode::kInvalidArgument);
  Status overlap = c.EnqueueAllReduce(f.Slice(0, 4), f.Slice(2, 4), ReduceOp::kSum, c.stream());
  EXPECT_EQ(overlap.code(), StatusCode::kInvalidArgument) << overlap.ToString();
  Status b = c.Wait(c.Barrier());
  EXPECT_TRUE(b.ok()) << b.ToString();
}

void OpsRank(Store& store, int rank, int world) {
  auto created = CreateNcclCommunicator(store, rank, world, milliseconds(120000));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  NcclCommunicator& c = **created;
  c.set_timeout(milliseconds(60000));
  EXPECT_EQ(c.rank(), rank);
  EXPECT_EQ(c.world_size(), world);
  EXPECT_NE(c.Describe().find("nccl rank " + std::to_string(rank)), std::string::npos) << c.Describe();
  ASSERT_NE(std::getenv("NCCL_NVLS_ENABLE"), nullptr);
  EXPECT_STREQ(std::getenv("NCCL_NVLS_ENABLE"), "0");

  for (size_t n : {1, 7, 1000, 100003}) {
    CheckAllReduce<float>(c, Ints, true, n, ReduceOp::kSum);
    CheckAllReduce<BFloat16>(c, Ints, true, n, ReduceOp::kAvg);
    CheckAllReduce<Half>(c, Ints, true, n, ReduceOp::kSum);
  }
  CheckAllReduce<float>(c, Mixed, false, 4099, ReduceOp::kSum);
  CheckAllReduce<float>(c, Mixed, false, 4099, ReduceOp::kAvg);
  CheckAllReduce<BFloat16>(c, Mixed, false, 4099, ReduceOp::kAvg);
  CheckAllReduce<Half>(c, Mixed, false, 4099, ReduceOp::kAvg);
  for (size_t s : {1, 7, 513}) {
    for (bool in_place : {false, true}) {
      CheckReduceScatter<float>(c, Ints, true, s, ReduceOp::kSum, in_place);
      CheckReduceScatter<BFloat16>(c, Ints, true, s, ReduceOp::kAvg, in_place);
      CheckReduceScatter<Half>(c, Ints, true, s, ReduceOp::kAvg, in_place);
    }
    CheckReduceScatter<float>(c, Mixed, false, s, ReduceOp::kAvg, false);
    CheckReduceScatter<BFloat16>(c, Mixed, false, s, ReduceOp::kSum, false);
    CheckReduceScatter<Half>(c, Mixed, false, s, ReduceOp::kAvg, false);
  }
  for (size_t n : {1, 5, 1001}) {
    for (bool in_place : {false, true}) {
      CheckAllGather<float>(c, n, in_place);
      CheckAllGather<BFloat16>(c, n, in_place);
      CheckAllGather<Half>(c, n, in_place);
    }
  }
  CheckHostTensors(c);
  CheckBroadcast(c);
  CheckSendRecv(c);
  CheckEnqueue(c);
  CheckArgumentErrors(c);
  {
    // A second communicator on the same store (its keys under the next generation).
    auto second = CreateNcclCommunicator(store, rank, world, milliseconds(120000));
    ASSERT_TRUE(second.ok()) << second.status().ToString();
    CheckAllReduce<float>(**second, Ints, true, 33, ReduceOp::kSum);
  }
  Status b = c.Wait(c.Barrier());
  EXPECT_TRUE(b.ok()) << b.ToString();
  EXPECT_TRUE(c.Health().ok());
}

// --- world 1, in this process ---

TEST(NcclWorld1, EveryOperation) {
  ZT_SKIP_WITH_FEWER_GPUS(1);
  CUDA_CHECK_OK(cudaSetDevice(0));
  MemoryStore store;
  OpsRank(store, 0, 1);
}

TEST(NcclSetup, BadArgumentsAreRefusedBeforeTouchingTheGpu) {
  MemoryStore store;
  auto bad_rank = CreateNcclCommunicator(store, 2, 2, milliseconds(1000));
  EXPECT_EQ(bad_rank.status().code(), StatusCode::kInvalidArgument);
  auto bad_world = CreateNcclCommunicator(store, 0, 0, milliseconds(1000));
  EXPECT_EQ(bad_world.status().code(), StatusCode::kInvalidArgument);
  auto bad_timeout = CreateNcclCommunicator(store, 0, 1, milliseconds(0));
  EXPECT_EQ(bad_timeout.status().code(), StatusCode::kInvalidArgument);
}

TEST(NcclSetup, RankThatNeverJoinsIsNamed) {
  ZT_SKIP_WITH_FEWER_GPUS(1);
  CUDA_CHECK_OK(cudaSetDevice(0));
  MemoryStore store;
  auto t0 = std::chrono::steady_clock::now();
  auto c = CreateNcclCommunicator(store, 0, 3, milliseconds(1500));
  auto ms = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(c.status().message().find("ranks 1, 2 never joined"), std::string::npos) << c.status().ToString();
  EXPECT_LT(ms, 1500 + 1000);
}

// --- several processes, one GPU each ---

// The store of a child: a FileStore in the shared directory, or the parent's TcpStore.
std::unique_ptr<Store> ChildStore(const RankInfo& info) {
  if (const char* port = std::getenv("ZTEST_STORE_PORT")) {
    auto s = ConnectTcpStore("127.0.0.1", std::atoi(port), std::getenv("ZTEST_STORE_TOKEN"), milliseconds(60000));
    ZT_CHECK(s.ok()) << s.status().ToString();
    return std::move(*s);
  }
  return std::make_unique<FileStore>(info.dir + "/store", milliseconds(60000));
}

// A TcpStore hosted by the parent (tcp) or nothing (FileStore); the children's extra environment.
struct ParentStore {
  std::unique_ptr<TcpStoreServer> server;
  std::vector<std::string> env;
  explicit ParentStore(bool tcp) {
    if (!tcp) return;
    auto token = GenerateToken();
    ZT_CHECK(token.ok());
    auto s = TcpStoreServer::Start("127.0.0.1", 0, *token);
    ZT_CHECK(s.ok()) << s.status().ToString();
    server = std::move(*s);
    env = {"ZTEST_STORE_PORT=" + std::to_string(server->port()), "ZTEST_STORE_TOKEN=" + *token};
  }
};

class NcclRanks : public ::testing::TestWithParam<int> {};

TEST_P(NcclRanks, EveryOperation) {
  ZT_RUN_AS_RANK([](const RankInfo& info) {
    CUDA_CHECK_OK(cudaSetDevice(info.rank));
    auto store = ChildStore(info);
    OpsRank(*store, info.rank, info.world);
  });
  const int world = GetParam();
  ZT_SKIP_WITH_FEWER_GPUS(world);
  testing::TempDir dir("zt_gpu_nccl_ops_");
  ParentStore store(world == 4);  // 2 ranks meet through a FileStore, 4 through a TcpStore
  testing::ExpectRanksSucceeded(testing::SpawnRanks(world, dir.path(), milliseconds(300000), store.env));
}

INSTANTIATE_TEST_SUITE_P(Worlds, NcclRanks, ::testing::Values(2, 4),
                         [](const ::testing::TestParamInfo<int>& i) { return "N" + std::to_string(i.param); });

// The collective kernels: world 2 through NCCL on the node's stream.
class NcclKernels : public ::testing::TestWithParam<int> {};

// Runs the CUDA kernel of `op` on device tensors with `comm` and synchronizes its stream.
Status RunKernel(Backend& backend, Communicator* comm, const std::string& op, const ir::AttrMap& attrs,
                 const Tensor& in, const Tensor& out) {
  KernelFn fn = KernelRegistry::Global().Find(op, DeviceKind::kCUDA);
  ZT_CHECK(fn != nullptr) << "no CUDA kernel for " << op;
  std::vector<Tensor> ins = {in}, outs = {out};
  Stream& stream = backend.stream(StreamKind::kComm);
  KernelContext ctx{attrs, ins, outs, Tensor(), backend, stream, comm};
  Status s = fn(ctx);
  stream.Synchronize();
  return s;
}

void KernelsRank(const RankInfo& info, Store& store) {
  const int world = info.world, rank = info.rank;
  auto backend = CudaBackend::Create(rank);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  auto created = CreateNcclCommunicator(store, rank, world, milliseconds(120000),
                                        CudaStreamOf((*backend)->stream(StreamKind::kComm)));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  NcclCommunicator& c = **created;
  const int64_t W = world;
  const size_t slice = 1001;
  Dev<BFloat16> rs_in(world * slice), rs_out(slice);
  rs_in.Put(As<BFloat16>(Ints(51, rank, world * slice)));
  Status s = RunKernel(**backend, &c, "reduce_scatter", {{"world_size", W}, {"op", std::string("avg")}}, rs_in.t(),
                       rs_out.t());
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<double> ref, mag;
  Reference<BFloat16>(Ints, 51, world, world * slice, true, &ref, &mag);
  ExpectReduced("reduce_scatter kernel", rs_out.Get(), ref, mag, rank * slice, world, true);

  Dev<float> ag_in(slice), ag_out(world * slice);
  ag_in.Put(Ints(52, rank, slice));
  s = RunKernel(**backend, &c, "all_gather", {{"world_size", W}}, ag_in.t(), ag_out.t());
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<float> g = ag_out.Get();
  for (int r = 0; r < world; ++r) {
    EXPECT_EQ(std::vector<float>(g.begin() + r * slice, g.begin() + (r + 1) * slice), Ints(52, r, slice));
  }

  Dev<Half> ar_in(77), ar_out(77);
  ar_in.Put(As<Half>(Ints(53, rank, 77)));
  s = RunKernel(**backend, &c, "all_reduce", {{"op", std::string("sum")}}, ar_in.t(), ar_out.t());
  ASSERT_TRUE(s.ok()) << s.ToString();
  Reference<Half>(Ints, 53, world, 77, false, &ref, &mag);
  ExpectReduced("all_reduce kernel", ar_out.Get(), ref, mag, 0, world, true);

  // Compiled for another world size: refused before anything is queued.
  s = RunKernel(**backend, &c, "all_gather", {{"world_size", W + 1}}, ag_in.t(), ag_out.t());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
  EXPECT_TRUE(c.Wait(c.Barrier()).ok());
}

TEST_P(NcclKernels, CollectivesThroughNccl) {
  ZT_RUN_AS_RANK([](const RankInfo& info) {
    CUDA_CHECK_OK(cudaSetDevice(info.rank));
    auto store = ChildStore(info);
    KernelsRank(info, *store);
  });
  const int world = GetParam();
  ZT_SKIP_WITH_FEWER_GPUS(world);
  if (world == 1) {
    CUDA_CHECK_OK(cudaSetDevice(0));
    MemoryStore store;
    KernelsRank({0, 1, ""}, store);
    return;
  }
  testing::TempDir dir("zt_gpu_nccl_kernels_");
  testing::ExpectRanksSucceeded(testing::SpawnRanks(world, dir.path(), milliseconds(300000)));
}

INSTANTIATE_TEST_SUITE_P(Worlds, NcclKernels, ::testing::Values(1, 2),
                         [](const ::testing::TestParamInfo<int>& i) { return "N" + std::to_string(i.param); });

// Without a communicator a one-rank program copies (as on the CPU); a non-NCCL communicator of
// several ranks is refused.
TEST(NcclKernelsOneRank, CopiesWithoutCommunicatorAndRefusesOtherCommunicators) {
  ZT_SKIP_WITHOUT_CUDA();
  for (DType dt : {DType::kF32, DType::kBF16, DType::kF16}) {
    for (int64_t n : {1, 7, 1000}) {
      SCOPED_TRACE(std::string(DTypeName(dt)) + "[" + std::to_string(n) + "]");
      testing::CompareOptions exact;
      exact.tolerance = testing::Tolerance{0.0, 0.0};
      testing::CompareWithCpu({{"x", Shape{n}, dt}},
                              [](ir::Builder& b, const std::vector<ir::Value*>& v) {
                                return std::vector<ir::Value*>{ir::ops::AllGather(b, v[0], 1, "g"),
                                                               ir::ops::ReduceScatter(b, v[0], 1, "avg", "rs"),
                                                               ir::ops::AllReduce(b, v[0], "sum", "ar")};
                              },
                              exact);
    }
  }
  auto backend = CudaBackend::Create(0);
  ASSERT_TRUE(backend.ok()) << backend.status().ToString();
  auto group = CreateThreadGroup(2);
  Dev<float> in(4), out(8);
  Status s = RunKernel(**backend, group[0].get(), "all_gather", {{"world_size", int64_t{2}}}, in.t(), out.t());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("needs an NCCL communicator"), std::string::npos) << s.ToString();
  s = RunKernel(**backend, nullptr, "all_gather", {{"world_size", int64_t{2}}}, in.t(), out.t());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.ToString();
}

// --- a rank that dies ---

class NcclDeadRank : public ::testing::TestWithParam<int> {};

constexpr int64_t kDeadTimeoutMs = 4000;

int VictimOf(int world) { return world == 2 ? 1 : 2; }

void DeadRankPart(const RankInfo& info) {
  CUDA_CHECK_OK(cudaSetDevice(info.rank));
  auto store = ChildStore(info);
  auto created = CreateNcclCommunicator(*store, info.rank, info.world, milliseconds(120000));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  NcclCommunicator& c = **created;
  c.set_timeout(milliseconds(kDeadTimeoutMs));
  Dev<float> x(1 << 20);
  x.Put(std::vector<float>(1 << 20, 1.0f));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(c.Wait(c.AllReduce(x.t(), ReduceOp::kSum)).ok()) << "warm-up";
  const int victim = VictimOf(info.world);
  if (info.rank == victim) {
    std::fflush(stderr);
    _exit(0);  // leaves without a word, holding its part of the next all-reduce
  }
  auto t0 = std::chrono::steady_clock::now();
  Status s = c.Wait(c.AllReduce(x.t(), ReduceOp::kSum));
  auto ms = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - t0).count();
  SCOPED_TRACE(s.ToString());
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.code() == StatusCode::kDeadlineExceeded || s.code() == StatusCode::kUnavailable) << s.ToString();
  EXPECT_NE(s.message().find("all_reduce(sum)"), std::string::npos);
  // The victim is named among the ranks that did not report (the others may fail at different
  // moments, so it may not be alone there).
  std::regex named("ranks? ([0-9]+, )*" + std::to_string(victim) + "(, [0-9]+)* did not report");
  EXPECT_TRUE(std::regex_search(s.message(), named)) << "the message does not name rank " << victim;
  // Within the timeout plus the grace for peers' reports (timeout / 4) plus slack.
  EXPECT_LT(ms, kDeadTimeoutMs + kDeadTimeoutMs / 4 + 3000);
  Status later = c.Wait(c.Barrier());
  EXPECT_FALSE(later.ok());
  EXPECT_NE(later.message().find("unusable"), std::string::npos) << later.ToString();
  Dev<float> y(8);
  EXPECT_FALSE(c.EnqueueAllReduce(y.t(), y.t(), ReduceOp::kSum, c.stream()).ok());
  EXPECT_FALSE(c.Health().ok());
}

TEST_P(NcclDeadRank, OthersFailWithinTheTimeoutNamingIt) {
  ZT_RUN_AS_RANK(DeadRankPart);
  const int world = GetParam();
  ZT_SKIP_WITH_FEWER_GPUS(world);
  testing::TempDir dir("zt_gpu_nccl_dead_");
  auto status = testing::SpawnRanks(world, dir.path(), milliseconds(180000));
  testing::ExpectRanksSucceeded(status, VictimOf(world));
}

INSTANTIATE_TEST_SUITE_P(Worlds, NcclDeadRank, ::testing::Values(2, 4),
                         [](const ::testing::TestParamInfo<int>& i) { return "N" + std::to_string(i.param); });

}  // namespace
}  // namespace zt::comm

#else  // !ZT_WITH_CUDA

TEST(Nccl, NeedsCuda) { GTEST_SKIP() << "built without CUDA"; }

#endif
