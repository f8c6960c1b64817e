// Gloo communicator correctness with ranks as threads on a MemoryStore: every operation against a
// serial reference computed here, for world sizes 1-4, sizes divisible by nothing, f32/bf16/f16
// (16-bit reduced in f32, rounded once), sum and avg, repeated calls; results bit-identical across
// ranks and across two runs; argument errors; a stalled peer and a peer that never joins.
#include <atomic>
#include <map>
#include <mutex>

#include "gloo_test_util.h"

namespace zt::comm {
namespace {

using namespace zt::comm::testing;

constexpr milliseconds kTimeout(10000);

template <typename T>
Tensor View(std::vector<T>& v) {
  return Tensor(v.data(), DTypeOf<T>::value, Shape{static_cast<int64_t>(v.size())});
}

struct ReduceCase {
  ReduceOp op;
  int64_t total;  // all-reduce elements
  int64_t slice;  // reduce-scatter elements per rank
};
const std::vector<ReduceCase> kReduceCases = {
    {ReduceOp::kSum, 1, 1}, {ReduceOp::kSum, 7, 13}, {ReduceOp::kAvg, 7, 13},
    {ReduceOp::kSum, 1001, 5}, {ReduceOp::kAvg, 1001, 37}, {ReduceOp::kSum, 2, 3},
};

// Every case of kReduceCases (AllReduce, then ReduceScatter) on one communicator per rank,
// checked against the ring reference; returns every rank's outputs so runs can be compared.
template <typename T>
std::vector<std::vector<T>> ReduceRun(int world, uint64_t seed) {
  const size_t nc = kReduceCases.size();
  std::vector<std::vector<std::vector<T>>> ar_in(nc), rs_in(nc), ar_out(nc), rs_out(nc);
  for (size_t k = 0; k < nc; ++k) {
    const ReduceCase& c = kReduceCases[k];
    ar_in[k].resize(world), rs_in[k].resize(world), ar_out[k].resize(world), rs_out[k].resize(world);
    for (int r = 0; r < world; ++r) {
      ar_in[k][r] = Convert<T>(Values(seed + 2 * k, r, c.total));
      rs_in[k][r] = Convert<T>(Values(seed + 2 * k + 1, r, world * c.slice));
    }
  }
  RunThreads(world, kTimeout, [&](int r, Communicator& comm) {
    for (size_t k = 0; k < nc; ++k) {
      ar_out[k][r] = ar_in[k][r];
      ASSERT_TRUE(comm.Wait(comm.AllReduce(View(ar_out[k][r]), kReduceCases[k].op)).ok());
      rs_out[k][r].assign(kReduceCases[k].slice, T{});
      ASSERT_TRUE(comm.Wait(comm.ReduceScatter(View(rs_in[k][r]), View(rs_out[k][r]), kReduceCases[k].op)).ok());
    }
  });
  std::vector<std::vector<T>> all;
  for (size_t k = 0; k < nc; ++k) {
    const ReduceCase& c = kReduceCases[k];
    SCOPED_TRACE("world " + std::to_string(world) + " case " + std::to_string(k) + " (" + ReduceOpName(c.op) +
                 ", " + std::to_string(c.total) + " / " + std::to_string(c.slice) + ")");
    const bool avg = c.op == ReduceOp::kAvg;
    auto ar_ref = RingReference(ar_in[k], (c.total + world - 1) / world, avg);
    auto rs_ref = RingReference(rs_in[k], c.slice, avg);
    for (int r = 0; r < world; ++r) {
      std::vector<T> want(rs_ref.begin() + r * c.slice, rs_ref.begin() + (r + 1) * c.slice);
      if constexpr (std::is_same_v<T, float>) {
        EXPECT_EQ(Bits32(ar_out[k][r]), Bits32(ar_ref)) << "all_reduce on rank " << r;
        EXPECT_EQ(Bits32(rs_out[k][r]), Bits32(want)) << "reduce_scatter on rank " << r;
      } else {
        EXPECT_EQ(Bits16(ar_out[k][r]), Bits16(ar_ref)) << "all_reduce on rank " << r;
        EXPECT_EQ(Bits16(rs_out[k][r]), Bits16(want)) << "reduce_scatter on rank " << r;
      }
      all.push_back(ar_out[k][r]);
      all.push_back(rs_out[k][r]);
    }
  }
  return all;
}

template <typename T>
void CheckReductions() {
  for (int world = 1; world <= 4; ++world) {
    auto a = ReduceRun<T>(world, 5);
    auto b = ReduceRun<T>(world, 5);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      if constexpr (std::is_same_v<T, float>) {
        EXPECT_EQ(Bits32(a[i]), Bits32(b[i])) << "two runs differ, world " << world;
      } else {
        EXPECT_EQ(Bits16(a[i]), Bits16(b[i])) << "two runs differ, world " << world;
      }
    }
  }
}

TEST(GlooCommunicator, ReductionsF32MatchRingReferenceBitForBit) { CheckReductions<float>(); }
TEST(GlooCommunicator, ReductionsBF16AreSummedInF32AndRoundedOnce) { CheckReductions<BFloat16>(); }
TEST(GlooCommunicator, ReductionsF16AreSummedInF32AndRoundedOnce) { CheckReductions<Half>(); }

// 1 + 2^-8 + 2^-8 (+ 0): rounding each partial sum to bf16 gives 1 (ties to even); summing in
// f32 and rounding once gives 1 + 2^-7, which bf16 holds exactly.
TEST(GlooCommunicator, SixteenBitRoundingHappensOnce) {
  for (int world : {3, 4}) {
    std::vector<float> per_rank = {1.0f, std::ldexp(1.0f, -8), std::ldexp(1.0f, -8), 0.0f};
    std::vector<std::vector<BFloat16>> ar(world), rs_out(world);
    RunThreads(world, kTimeout, [&](int r, Communicator& c) {
      ar[r].assign(5, FloatToBF16(per_rank[r]));
      ASSERT_TRUE(c.Wait(c.AllReduce(View(ar[r]), ReduceOp::kSum)).ok());
      std::vector<BFloat16> in(world * 2, FloatToBF16(per_rank[r]));
      rs_out[r].resize(2);
      ASSERT_TRUE(c.Wait(c.ReduceScatter(View(in), View(rs_out[r]), ReduceOp::kSum)).ok());
    });
    for (int r = 0; r < world; ++r) {
      for (auto v : ar[r]) EXPECT_EQ(BF16ToFloat(v), 1.0f + std::ldexp(1.0f, -7)) << "world " << world;
      for (auto v : rs_out[r]) EXPECT_EQ(BF16ToFloat(v), 1.0f + std::ldexp(1.0f, -7)) << "world " << world;
    }
  }
}

// ReduceScatter's slices, concatenated, are AllReduce's result bit for bit (ZeRO stages agree).
TEST(GlooCommunicator, ReduceScatterSlicesEqualAllReduce) {
  const int world = 4;
  const int64_t slice = 257;
  std::vector<std::vector<float>> ar(world), rs(world);
  RunThreads(world, kTimeout, [&](int r, Communicator& c) {
    std::vector<float> in = Values(42, r, world * slice);
    ar[r] = in;
    rs[r].resize(slice);
    ASSERT_TRUE(c.Wait(c.AllReduce(View(ar[r]), ReduceOp::kAvg)).ok());
    ASSERT_TRUE(c.Wait(c.ReduceScatter(View(in), View(rs[r]), ReduceOp::kAvg)).ok());
  });
  for (int r = 0; r < world; ++r) {
    std::vector<float> want(ar[0].begin() + r * slice, ar[0].begin() + (r + 1) * slice);
    EXPECT_EQ(Bits32(rs[r]), Bits32(want)) << "rank " << r;
    EXPECT_EQ(Bits32(ar[r]), Bits32(ar[0])) << "rank " << r << " differs from rank 0";
  }
}

// Reduce-scatter may write into its own input's slice (in-place, as ZeRO's flat buffers do).
TEST(GlooCommunicator, ReduceScatterInPlace) {
  const int world = 4;
  const int64_t slice = 5;
  std::vector<std::vector<float>> in(world), got(world);
  for (int r = 0; r < world; ++r) in[r] = Values(9, r, world * slice);
  auto ref = RingReference(in, slice, false);
  RunThreads(world, kTimeout, [&](int r, Communicator& c) {
    std::vector<float> buf = in[r];
    Tensor out(buf.data() + r * slice, DType::kF32, Shape{slice});
    ASSERT_TRUE(c.Wait(c.ReduceScatter(View(buf), out, ReduceOp::kSum)).ok());
    got[r].assign(buf.begin() + r * slice, buf.begin() + (r + 1) * slice);
  });
  for (int r = 0; r < world; ++r)
    EXPECT_EQ(Bits32(got[r]), Bits32(std::vector<float>(ref.begin() + r * slice, ref.begin() + (r + 1) * slice)));
}

template <typename T>
void CheckAllGather(int world, int64_t n, bool in_place) {
  std::vector<std::vector<T>> out(world);
  auto input = [&](int r) {
    std::vector<T> v(n);
    for (int64_t i = 0; i < n; ++i) v[i] = static_cast<T>(1000003 * r + 7 * i - 50);
    return v;
  };
  RunThreads(world, kTimeout, [&](int r, Communicator& c) {
    out[r].assign(world * n, T{});
    std::vector<T> in = input(r);
    Tensor tin(in.data(), DTypeOf<T>::value, Shape{n});
    if (in_place) {
      std::copy(in.begin(), in.end(), out[r].begin() + r * n);
      tin.data = out[r].data() + r * n;
    }
    for (int rep = 0; rep < 3; ++rep) ASSERT_TRUE(c.Wait(c.AllGather(tin, View(out[r]))).ok());
  });
  std::vector<T> want;
  for (int r = 0; r < world; ++r) {
    auto v = input(r);
    want.insert(want.end(), v.begin(), v.end());
  }
  for (int r = 0; r < world; ++r) EXPECT_EQ(out[r], want) << "rank " << r << " of " << world;
}

TEST(GlooCommunicator, AllGatherIntegersAnyWorldSize) {
  for (int world = 1; world <= 4; ++world) {
    CheckAllGather<int32_t>(world, 13, false);
    CheckAllGather<int64_t>(world, 7, world % 2 == 0);
    CheckAllGather<int64_t>(world, 1, true);
  }
}

TEST(GlooCommunicator, AllGatherSixteenBitIsBitExact) {
  const int world = 3, n = 9;
  std::vector<std::vector<Half>> in(world), out(world);
  RunThreads(world, kTimeout, [&](int r, Communicator& c) {
    in[r] = Convert<Half>(Values(3, r, n));
    out[r].resize(world * n);
    ASSERT_TRUE(c.Wait(c.AllGather(View(in[r]), View(out[r]))).ok());
  });
  for (int r = 0; r < world; ++r)
    for (int k = 0; k < world; ++k)
      EXPECT_EQ(Bits16(std::vector<Half>(out[r].begin() + k * n, out[r].begin() + (k + 1) * n)), Bits16(in[k]));
}

TEST(GlooCommunicator, BroadcastFromEveryRoot) {
  for (int world = 1; world <= 4; ++world) {
    std::vector<std::vector<int64_t>> got(world);
    std::vector<std::vector<uint16_t>> got16(world);
    RunThreads(world, kTimeout, [&](int r, Communicator& c) {
      for (int root = 0; root < world; ++root) {
        std::vector<int64_t> x(17, -1 - r);
        if (r == root) for (int i = 0; i < 17; ++i) x[i] = 100 * root + i;
        ASSERT_TRUE(c.Wait(c.Broadcast(View(x), root)).ok());
        got[r].insert(got[r].end(), x.begin(), x.end());
        std::vector<Half> h(3, FloatToHalf(static_cast<float>(r) + 0.5f));
        ASSERT_TRUE(c.Wait(c.Broadcast(View(h), root)).ok());
        for (auto v : h) got16[r].push_back(v.bits);
      }
    });
    for (int r = 0; r < world; ++r) {
      for (int root = 0; root < world; ++root) {
        for (int i = 0; i < 17; ++i) EXPECT_EQ(got[r][root * 17 + i], 100 * root + i) << "rank " << r;
        for (int i = 0; i < 3; ++i)
          EXPECT_EQ(got16[r][root * 3 + i], FloatToHalf(static_cast<float>(root) + 0.5f).bits) << "rank " << r;
      }
    }
  }
}

// Both directions of an exchange are posted before either is waited on; tags keep two messages
// to the same peer apart even when received in the opposite order.
TEST(GlooCommunicator, SendRecvRingWithTags) {
  for (int world = 2; world <= 4; ++world) {
    std::vector<std::vector<int32_t>> a(world), b(world);
    RunThreads(world, kTimeout, [&](int r, Communicator& c) {
      int right = (r + 1) % world, left = (r + world - 1) % world;
      std::vector<int32_t> s1(5, 10 * r + 1), s2(3, 10 * r + 2);
      a[r].assign(5, 0);
      b[r].assign(3, 0);
      auto w1 = c.Send(View(s1), right, 1);
      auto w2 = c.Send(View(s2), right, 2);
      auto r2 = c.Recv(View(b[r]), left, 2);
      auto r1 = c.Recv(View(a[r]), left, 1);
      EXPECT_TRUE(r2->Wait(kTimeout).ok());
      EXPECT_TRUE(r1->Wait(kTimeout).ok());
      EXPECT_TRUE(w1->Wait(kTimeout).ok());
      EXPECT_TRUE(w2->Wait(kTimeout).ok());
    });
    for (int r = 0; r < world; ++r) {
      int left = (r + world - 1) % world;
      EXPECT_EQ(a[r], std::vector<int32_t>(5, 10 * left + 1)) << "rank " << r;
      EXPECT_EQ(b[r], std::vector<int32_t>(3, 10 * left + 2)) << "rank " << r;
    }
  }
}

TEST(GlooCommunicator, BarrierWaitsForTheLastRank) {
  const int world = 3;
  std::vector<int64_t> waited(world);
  RunThreads(world, kTimeout, [&](int r, Communicator& c) {
    ASSERT_TRUE(c.Wait(c.Barrier()).ok());
    if (r == 2) std::this_thread::sleep_for(milliseconds(300));
    auto t0 = Clock::now();
    ASSERT_TRUE(c.Wait(c.Barrier()).ok());
    waited[r] = MsSince(t0);
  });
  EXPECT_GE(waited[0], 200);
  EXPECT_GE(waited[1], 200);
}

TEST(GlooCommunicator, ArgumentErrorsAreStatusesAndLeaveItUsable) {
  RunThreads(2, kTimeout, [&](int r, Communicator& c) {
    std::vector<int32_t> i32(4);
    std::vector<float> f(4), f3(3);
    std::vector<BFloat16> h(2);
    auto expect_invalid = [](Status s, const std::string& word) {
      EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << s.ToString();
      EXPECT_NE(s.message().find(word), std::string::npos) << s.message();
    };
    expect_invalid(c.Wait(c.AllReduce(View(i32), ReduceOp::kSum)), "i32");
    expect_invalid(c.Wait(c.ReduceScatter(View(f), View(f3), ReduceOp::kSum)), "reduce_scatter");
    expect_invalid(c.Wait(c.ReduceScatter(View(f), View(h), ReduceOp::kAvg)), "bf16");
    expect_invalid(c.Wait(c.AllGather(View(f), View(f3))), "all_gather");
    expect_invalid(c.Wait(c.Broadcast(View(f), 2)), "root 2");
    expect_invalid(c.Wait(c.Send(View(f), r, 0)), "peer");
    expect_invalid(c.Wait(c.Recv(View(f), 1 - r, -3)), "tag -3");
    EXPECT_EQ(c.Describe(), "gloo rank " + std::to_string(r) + "/2");
    // Still usable: the errors were caught before any transfer.
    std::vector<float> x = {1.0f, 2.0f, 3.0f};
    ASSERT_TRUE(c.Wait(c.AllReduce(View(x), ReduceOp::kSum)).ok());
    EXPECT_EQ(x, (std::vector<float>{2.0f, 4.0f, 6.0f}));
  });
}

TEST(GlooCommunicator, BadSetupArgumentsAreStatuses) {
  MemoryStore store;
  auto bad_rank = CreateGlooCommunicator(store, 2, 2, kTimeout);
  EXPECT_EQ(bad_rank.status().code(), StatusCode::kInvalidArgument) << bad_rank.status().ToString();
  auto bad_timeout = CreateGlooCommunicator(store, 0, 1, milliseconds(0));
  EXPECT_EQ(bad_timeout.status().code(), StatusCode::kInvalidArgument) << bad_timeout.status().ToString();
  auto bad_host = CreateGlooCommunicator(store, 0, 1, kTimeout, "256.0.0.1");
  EXPECT_EQ(bad_host.status().code(), StatusCode::kInvalidArgument) << bad_host.status().ToString();
  EXPECT_NE(bad_host.status().message().find("'256.0.0.1'"), std::string::npos) << bad_host.status().message();
  auto by_interface = CreateGlooCommunicator(store, 0, 1, kTimeout, "lo");
  EXPECT_TRUE(by_interface.ok()) << by_interface.status().ToString();
}

// Two communicators on one store (created in the same order on every rank) do not mix keys.
TEST(GlooCommunicator, TwoCommunicatorsShareAStore) {
  MemoryStore store;
  std::vector<std::thread> threads;
  std::vector<float> got(2);
  for (int r = 0; r < 2; ++r) {
    threads.emplace_back([&, r] {
      auto a = CreateGlooCommunicator(store, r, 2, kTimeout);
      auto b = CreateGlooCommunicator(store, r, 2, kTimeout);
      ASSERT_TRUE(a.ok() && b.ok());
      std::vector<float> x = {static_cast<float>(r + 1)};
      ASSERT_TRUE((*b)->Wait((*b)->AllReduce(View(x), ReduceOp::kSum)).ok());
      ASSERT_TRUE((*a)->Wait((*a)->AllReduce(View(x), ReduceOp::kSum)).ok());
      got[r] = x[0];
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(got, (std::vector<float>{6.0f, 6.0f}));
  // Each under its own prefix (docs/comm.md): gloo/1/ and gloo/2/.
  for (const char* key : {"gloo/1/joined/0", "gloo/1/joined/1", "gloo/2/joined/0", "gloo/2/joined/1"})
    EXPECT_TRUE(store.Wait({key}, milliseconds(0)).ok()) << key;
}

TEST(GlooCommunicator, PeerThatNeverJoinsFailsCreationNamingIt) {
  MemoryStore store;
  const milliseconds timeout(800);
  std::vector<Status> got(3);
  std::vector<int64_t> took(3);
  std::vector<std::thread> threads;
  for (int r = 0; r < 3; ++r) {
    if (r == 1) continue;  // rank 1 never starts
    threads.emplace_back([&, r] {
      auto t0 = Clock::now();
      auto c = CreateGlooCommunicator(store, r, 3, timeout);
      took[r] = MsSince(t0);
      got[r] = c.status();
    });
  }
  for (auto& t : threads) t.join();
  for (int r : {0, 2}) {
    EXPECT_EQ(got[r].code(), StatusCode::kDeadlineExceeded) << got[r].ToString();
    EXPECT_NE(got[r].message().find("rank 1 never joined"), std::string::npos) << got[r].message();
    EXPECT_GE(took[r], 700);
    EXPECT_LE(took[r], 800 + 1500);
  }
}

// A rank that stops calling collectives: its peer's operation ends at the timeout with
// DeadlineExceeded naming it, and the communicator refuses later calls.
TEST(GlooCommunicator, StalledPeerTimesOutNamingIt) {
  const milliseconds timeout(700);
  std::vector<Status> first(2), later(2);
  int64_t took = 0;
  RunThreads(2, timeout, [&](int r, Communicator& c) {
    std::vector<float> x(10, 1.0f);
    if (r == 0) {
      auto t0 = Clock::now();
      first[0] = c.Wait(c.AllReduce(View(x), ReduceOp::kSum));
      took = MsSince(t0);
      later[0] = c.Wait(c.Broadcast(View(x), 0));
    } else {
      std::this_thread::sleep_for(milliseconds(1500));  // stalled past rank 0's timeout
    }
  });
  EXPECT_EQ(first[0].code(), StatusCode::kDeadlineExceeded) << first[0].ToString();
  EXPECT_NE(first[0].message().find("waiting for rank 1"), std::string::npos) << first[0].message();
  EXPECT_GE(took, 650);
  EXPECT_LE(took, 700 + 1000);
  EXPECT_EQ(later[0].code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(later[0].message().find("unusable"), std::string::npos) << later[0].message();
  EXPECT_NE(later[0].message().find("waiting for rank 1"), std::string::npos) << later[0].message();
}

TEST(GlooCommunicator, RecvWaitTimesOut) {
  RunThreads(2, kTimeout, [&](int r, Communicator& c) {
    if (r == 0) std::this_thread::sleep_for(milliseconds(800));  // alive, but never sends
    if (r == 1) {
      std::vector<float> x(4);
      auto t0 = Clock::now();
      Status s = c.Recv(View(x), 0, 7)->Wait(milliseconds(300));
      int64_t took = MsSince(t0);
      EXPECT_EQ(s.code(), StatusCode::kDeadlineExceeded) << s.ToString();
      EXPECT_NE(s.message().find("timed out after 300 ms waiting for rank 0"), std::string::npos) << s.message();
      EXPECT_GE(took, 250);
      EXPECT_LE(took, 1000);
    }
  });
}

}  // namespace
}  // namespace zt::comm
