// ZT_FUSION's selection (passes/fusion.h): the named sets, lists, the error for an unknown name,
// and which passes each set runs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "passes/fusion.h"

namespace zt::passes {
namespace {

std::vector<std::string> Names(const FusionSet& set) {
  std::vector<std::string> out;
  for (auto& p : FusionPasses(set)) out.push_back(p->name());
  return out;
}

TEST(FusionSet, DefaultLeavesOutTheBiasGradientEpilogue) {
  for (const char* text : {"1", "default"}) {
    auto s = ParseFusionSet(text);
    ASSERT_TRUE(s.ok()) << text;
    EXPECT_TRUE(s->add_norm && s->matmul_gelu && s->adamw) << text;
    EXPECT_FALSE(s->matmul_bgrad) << text;
  }
  EXPECT_EQ(Names(FusionSet{}), (std::vector<std::string>{"fuse_add_norm", "fuse_matmul_epilogue", "fuse_adamw"}));
}

TEST(FusionSet, AllNoneAndLists) {
  auto all = ParseFusionSet("all");
  ASSERT_TRUE(all.ok());
  EXPECT_TRUE(all->add_norm && all->matmul_gelu && all->matmul_bgrad && all->adamw);
  for (const char* text : {"0", "none"}) {
    auto s = ParseFusionSet(text);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(s->any()) << text;
    EXPECT_TRUE(Names(*s).empty()) << text;
  }
  auto some = ParseFusionSet("matmul_bgrad,adamw");
  ASSERT_TRUE(some.ok());
  EXPECT_FALSE(some->add_norm || some->matmul_gelu);
  EXPECT_TRUE(some->matmul_bgrad && some->adamw);
  EXPECT_EQ(Names(*some), (std::vector<std::string>{"fuse_matmul_epilogue", "fuse_adamw"}));
  auto one = ParseFusionSet("add_norm");
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(Names(*one), std::vector<std::string>{"fuse_add_norm"});
}

TEST(FusionSet, UnknownNamesAreRefusedWithTheChoices) {
  for (const char* text : {"yes", "add_norm,gelu", "adamw,", ""}) {
    auto s = ParseFusionSet(text);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_NE(s.status().message().find("matmul_bgrad"), std::string::npos) << s.status().message();
  }
}

}  // namespace
}  // namespace zt::passes
