// Before/after IR text checks shared by the pass tests: parse a graph written in printer form
// (verified), run one pass on it and compare the printed result, including graphs the pass must
// leave unchanged. Invariant: a pass that reports a change changed the text, one that reports
// none left it byte for byte, and a second run finds nothing more to do.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "ir/text.h"
#include "ir/verifier.h"
#include "passes/pass.h"

namespace zt::passes::testing {

// A graph parsed from `text`; CHECK-fails on a parse or verification error (a broken test text).
inline std::unique_ptr<ir::Graph> ParseVerified(const std::string& text) {
  auto g = ir::ParseGraph(text);
  ZT_CHECK(g.ok()) << g.status().ToString();
  Status v = ir::Verify(**g);
  ZT_CHECK(v.ok()) << v.ToString();
  return std::move(*g);
}

// Runs `pass` on `before` (written in printer form); expects the printed result to be `after`
// (the input unchanged when `after` is empty), Run to say whether anything changed, the result to
// verify, and a second run to change nothing.
inline void ExpectRewrite(Pass& pass, const std::string& before, const std::string& after) {
  auto g = ParseVerified(before);
  ASSERT_EQ(ir::PrintGraph(*g), before) << "test texts are written in printer form";
  auto changed = pass.Run(*g);
  ASSERT_TRUE(changed.ok()) << changed.status().ToString();
  std::string printed = ir::PrintGraph(*g);
  EXPECT_EQ(printed, after.empty() ? before : after);
  EXPECT_EQ(*changed, !after.empty());
  Status v = ir::Verify(*g);
  EXPECT_TRUE(v.ok()) << v.ToString();
  auto again = pass.Run(*g);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  EXPECT_EQ(ir::PrintGraph(*g), printed);
}

}  // namespace zt::passes::testing
