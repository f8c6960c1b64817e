// PrefixStore: views with different prefixes over one store do not see each other's keys; keys
// land under "<prefix>/"; the view starts with the base's timeout and its own timeout bounds Get.
#include <gtest/gtest.h>

#include "comm/memory_store.h"
#include "comm/prefix_store.h"
#include "store_test_util.h"

namespace zt::comm {
namespace {

using std::chrono::milliseconds;

TEST(PrefixStore, ViewsAreIsolated) {
  auto base = std::make_shared<MemoryStore>();
  PrefixStore a(base, "g1");
  PrefixStore b(*base, "g2");
  ASSERT_TRUE(a.Set("k", "from a").ok());
  ASSERT_TRUE(b.Set("k", "from b").ok());
  EXPECT_EQ(a.Get("k").value(), "from a");
  EXPECT_EQ(b.Get("k").value(), "from b");
  EXPECT_EQ(base->Get("g1/k").value(), "from a");
  EXPECT_EQ(base->Get("g2/k").value(), "from b");
  EXPECT_EQ(a.Add("n", 2).value(), 2);
  EXPECT_EQ(b.Add("n", 5).value(), 5);
  EXPECT_EQ(base->Get("g1/n").value(), "2");
  ASSERT_TRUE(a.Set("only_a", "x").ok());
  Status st = b.Wait({"only_a"}, milliseconds(50));
  EXPECT_EQ(st.code(), StatusCode::kDeadlineExceeded);
  EXPECT_NE(st.message().find("g2/only_a"), std::string::npos) << st.message();
  EXPECT_TRUE(a.Wait({"only_a", "k"}, milliseconds(0)).ok());
  EXPECT_FALSE(b.Delete("only_a").value());
  EXPECT_TRUE(a.Delete("only_a").value());
  EXPECT_FALSE(base->Wait({"g1/only_a"}, milliseconds(0)).ok());
  // Nested views compose.
  PrefixStore inner(std::make_shared<PrefixStore>(base, "outer"), "inner");
  ASSERT_TRUE(inner.Set("k", "deep").ok());
  EXPECT_EQ(base->Get("outer/inner/k").value(), "deep");
}

TEST(PrefixStore, TimeoutIsForwardedAndBoundsGet) {
  auto base = std::make_shared<MemoryStore>();
  base->set_timeout(milliseconds(150));
  PrefixStore p(base, "g");
  EXPECT_EQ(p.timeout(), milliseconds(150));
  testing::Stopwatch sw;
  auto v = p.Get("missing");
  EXPECT_EQ(v.status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_GE(sw.ms(), 140);
  EXPECT_LT(sw.ms(), 1500);
  // The view's own timeout (shorter than the base's) is the one Get honours.
  base->set_timeout(milliseconds(5000));
  p.set_timeout(milliseconds(100));
  sw = testing::Stopwatch();
  EXPECT_EQ(p.Get("missing").status().code(), StatusCode::kDeadlineExceeded);
  EXPECT_LT(sw.ms(), 1500);
}

}  // namespace
}  // namespace zt::comm
