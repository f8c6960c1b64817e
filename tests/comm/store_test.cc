// The Store contract, run against every implementation (MemoryStore, TcpStore, FileStore and a
// PrefixStore view): set/get, waiting gets and waits, timeouts that fire in time and name the
// missing keys, delete, atomic Add from many threads, Add on a non-integer.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include "comm/file_store.h"
#include "comm/memory_store.h"
#include "comm/prefix_store.h"
#include "comm/tcp_store.h"
#include "store_test_util.h"

namespace zt::comm {
namespace {

using std::chrono::milliseconds;
using testing::OneTo;
using testing::Stopwatch;

constexpr milliseconds kTestTimeout(5000);

// Each harness hands out clients of one shared store.
struct MemoryHarness {
  std::shared_ptr<MemoryStore> store = std::make_shared<MemoryStore>();
  std::shared_ptr<Store> Client() {
    store->set_timeout(kTestTimeout);
    return store;
  }
};

struct TcpHarness {
  std::unique_ptr<TcpStoreServer> server;
  std::string token;
  TcpHarness() {
    token = GenerateToken().value();
    server = TcpStoreServer::Start("127.0.0.1", 0, token).value();
  }
  std::shared_ptr<Store> Client() {
    auto c = ConnectTcpStore("127.0.0.1", server->port(), token, kTestTimeout);
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return std::shared_ptr<Store>(std::move(c).value());
  }
};

struct FileHarness {
  testing::TempDir dir;
  std::shared_ptr<Store> Client() { return std::make_shared<FileStore>(dir.path() + "/store", kTestTimeout); }
};

struct PrefixHarness {
  std::shared_ptr<MemoryStore> base = std::make_shared<MemoryStore>();
  std::shared_ptr<Store> Client() {
    base->set_timeout(kTestTimeout);
    return std::make_shared<PrefixStore>(base, "group");
  }
};

template <typename H>
class StoreTest : public ::testing::Test {
 protected:
  H harness_;
};

using Harnesses = ::testing::Types<MemoryHarness, TcpHarness, FileHarness, PrefixHarness>;
class HarnessNames {
 public:
  template <typename T>
  static std::string GetName(int i) {
    const char* names[] = {"Memory", "Tcp", "File", "Prefix"};
    return names[i];
  }
};
TYPED_TEST_SUITE(StoreTest, Harnesses, HarnessNames);

TYPED_TEST(StoreTest, SetGetOverwriteAndBinary) {
  auto s = this->harness_.Client();
  ASSERT_TRUE(s->Set("a", "1").ok());
  EXPECT_EQ(s->Get("a").value(), "1");
  ASSERT_TRUE(s->Set("a", "two").ok());
  EXPECT_EQ(s->Get("a").value(), "two");
  ASSERT_TRUE(s->Set("empty", "").ok());
  EXPECT_EQ(s->Get("empty").value(), "");
  std::string bin("\0\x01\xff/..\n", 7);
  const char kKey[] = "k/with\0nul/../and \xc3\xa9";
  std::string key(kKey, sizeof(kKey) - 1);
  ASSERT_TRUE(s->Set(key, bin).ok());
  EXPECT_EQ(s->Get(key).value(), bin);
  std::string big(1 << 20, 'x');
  for (size_t i = 0; i < big.size(); i += 4099) big[i] = static_cast<char>(i);
  ASSERT_TRUE(s->Set("big", big).ok());
  EXPECT_EQ(s->Get("big").value(), big);
  // Another client of the same store sees the values.
  auto t = this->harness_.Client();
  EXPECT_EQ(t->Get(key).value(), bin);
}

TYPED_TEST(StoreTest, GetWaitsForALaterSetFromAnotherThread) {
  auto s = this->harness_.Client();
  auto other = this->harness_.Client();
  std::thread setter([&] {
    std::this_thread::sleep_for(milliseconds(150));
    EXPECT_TRUE(other->Set("late", "here").ok());
  });
  Stopwatch sw;
  StatusOr<std::string> v = s->Get("late");
  setter.join();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, "here");
  EXPECT_GE(sw.ms(), 100);
  EXPECT_LT(sw.ms(), 3000);
}

TYPED_TEST(StoreTest, OneClientSharedByAWaitingAndASettingThread) {
  auto s = this->harness_.Client();
  std::thread setter([&] {
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_TRUE(s->Set("shared", "v").ok());
  });
  StatusOr<std::string> v = s->Get("shared");
  setter.join();
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, "v");
}

TYPED_TEST(StoreTest, GetWaitsForAnAdd) {
  auto s = this->harness_.Client();
  auto other = this->harness_.Client();
  std::thread adder([&] {
    std::this_thread::sleep_for(milliseconds(100));
    EXPECT_EQ(other->Add("counter", 3).value(), 3);
  });
  EXPECT_EQ(s->Get("counter").value(), "3");
  adder.join();
}

TYPED_TEST(StoreTest, WaitForSeveralKeys) {
  auto s = this->harness_.Client();
  auto other = this->harness_.Client();
  EXPECT_TRUE(s->Wait({}, milliseconds(0)).ok());
  std::atomic<int> sets_begun{0};
  std::thread setter([&] {
    for (const char* k : {"w1", "w2", "w3"}) {
      std::this_thread::sleep_for(milliseconds(60));
      sets_begun++;
      EXPECT_TRUE(other->Set(k, "x").ok());
    }
  });
  Status st = s->Wait({"w1", "w2", "w3"}, milliseconds(4000));
  EXPECT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(sets_begun.load(), 3);  // not before the last Set began
  setter.join();
  EXPECT_TRUE(s->Wait({"w3", "w1"}, milliseconds(0)).ok());
}

TYPED_TEST(StoreTest, WaitTimesOutInTimeNamingTheMissingKeys) {
  auto s = this->harness_.Client();
  ASSERT_TRUE(s->Set("have_1", "x").ok());
  Stopwatch sw;
  Status st = s->Wait({"have_1", "miss_1", "miss_2"}, milliseconds(300));
  int64_t ms = sw.ms();
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded) << st.ToString();
  EXPECT_GE(ms, 290);
  EXPECT_LT(ms, 2500);
  EXPECT_NE(st.message().find("miss_1, "), std::string::npos) << st.message();  // (a prefix view names
  EXPECT_NE(st.message().find("miss_2"), std::string::npos) << st.message();    //  the full keys)
  EXPECT_EQ(st.message().find("have_1"), std::string::npos) << st.message();
  // The client is still usable after a timed-out wait.
  ASSERT_TRUE(s->Set("after", "ok").ok());
  EXPECT_EQ(s->Get("after").value(), "ok");
  // The store's own timeout bounds Get (and the zero-length Wait returns at once).
  s->set_timeout(milliseconds(200));
  sw = Stopwatch();
  StatusOr<std::string> v = s->Get("never");
  EXPECT_EQ(v.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(v.status().message().find("never"), std::string::npos) << v.status().message();
  EXPECT_GE(sw.ms(), 190);
  EXPECT_LT(sw.ms(), 2500);
  sw = Stopwatch();
  EXPECT_EQ(s->Wait({"never"}, milliseconds(0)).code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(sw.ms(), 1000);
}

TYPED_TEST(StoreTest, Delete) {
  auto s = this->harness_.Client();
  ASSERT_TRUE(s->Set("d", "1").ok());
  EXPECT_TRUE(s->Delete("d").value());
  EXPECT_FALSE(s->Delete("d").value());
  EXPECT_FALSE(s->Delete("never_set").value());
  EXPECT_EQ(s->Wait({"d"}, milliseconds(50)).code(), StatusCode::kDeadlineExceeded);
  ASSERT_TRUE(s->Set("d", "2").ok());
  EXPECT_EQ(s->Get("d").value(), "2");
}

TYPED_TEST(StoreTest, AddSemantics) {
  auto s = this->harness_.Client();
  EXPECT_EQ(s->Add("n", 5).value(), 5);
  EXPECT_EQ(s->Add("n", -7).value(), -2);
  EXPECT_EQ(s->Add("n", 0).value(), -2);
  EXPECT_EQ(s->Get("n").value(), "-2");
  ASSERT_TRUE(s->Set("m", "40").ok());
  EXPECT_EQ(s->Add("m", 2).value(), 42);
}

TYPED_TEST(StoreTest, AddOnANonIntegerIsAnError) {
  auto s = this->harness_.Client();
  ASSERT_TRUE(s->Set("text", "abc").ok());
  StatusOr<int64_t> v = s->Add("text", 1);
  EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(v.status().message().find("text"), std::string::npos) << v.status().message();
  EXPECT_NE(v.status().message().find("not an integer"), std::string::npos) << v.status().message();
  EXPECT_EQ(s->Get("text").value(), "abc");  // unchanged
  EXPECT_EQ(s->Add("other", 1).value(), 1);   // and the store still works
}

TYPED_TEST(StoreTest, AddFromEightThreadsIsAtomic) {
  auto s = this->harness_.Client();
  constexpr int kThreads = 8, kAdds = 1000;
  std::vector<std::vector<int64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kAdds; ++i) {
        StatusOr<int64_t> v = s->Add("ctr", 1);
        if (!v.ok()) {
          ADD_FAILURE() << v.status().ToString();
          return;
        }
        got[t].push_back(*v);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(s->Get("ctr").value(), std::to_string(kThreads * kAdds));
  std::vector<int64_t> all;
  for (const auto& g : got) all.insert(all.end(), g.begin(), g.end());
  std::sort(all.begin(), all.end());
  EXPECT_EQ(all, OneTo(kThreads * kAdds));  // every Add saw a distinct value
}

}  // namespace
}  // namespace zt::comm
