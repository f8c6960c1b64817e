// Status, StatusOr, the ZT_RETURN_IF_ERROR / ZT_ASSIGN_OR_RETURN macros and CHECK. Invariants
// checked: an error keeps its code and message through the macros and WithContext; the macros
// evaluate their argument exactly once and stop the function at the first error; a failed CHECK
// dies with "file:line: CHECK failed: <expr>" and the streamed message, while a passing CHECK
// does not evaluate its message.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "core/check.h"
#include "core/status.h"

namespace zt {
namespace {

class DeathStyle : public ::testing::Environment {
 public:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};
const auto* const kDeathStyle = ::testing::AddGlobalTestEnvironment(new DeathStyle);

TEST(Status, OkAndErrors) {
  Status ok;
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.code(), StatusCode::kOk);
  EXPECT_EQ(ok.ToString(), "OK");
  EXPECT_TRUE(OkStatus().ok());
  EXPECT_TRUE(Status::Ok().ok());

  struct Case {
    Status s;
    StatusCode code;
    const char* name;
  };
  const Case cases[] = {
      {InvalidArgument("m"), StatusCode::kInvalidArgument, "InvalidArgument"},
      {NotFound("m"), StatusCode::kNotFound, "NotFound"},
      {FailedPrecondition("m"), StatusCode::kFailedPrecondition, "FailedPrecondition"},
      {OutOfRange("m"), StatusCode::kOutOfRange, "OutOfRange"},
      {DataLoss("m"), StatusCode::kDataLoss, "DataLoss"},
      {Unavailable("m"), StatusCode::kUnavailable, "Unavailable"},
      {DeadlineExceeded("m"), StatusCode::kDeadlineExceeded, "DeadlineExceeded"},
      {PermissionDenied("m"), StatusCode::kPermissionDenied, "PermissionDenied"},
      {Unimplemented("m"), StatusCode::kUnimplemented, "Unimplemented"},
      {Internal("m"), StatusCode::kInternal, "Internal"},
      {Status(StatusCode::kAlreadyExists, "m"), StatusCode::kAlreadyExists, "AlreadyExists"},
  };
  for (const Case& c : cases) {
    EXPECT_FALSE(c.s.ok()) << c.name;
    EXPECT_EQ(c.s.code(), c.code) << c.name;
    EXPECT_EQ(c.s.message(), "m");
    EXPECT_STREQ(StatusCodeName(c.code), c.name);
    EXPECT_EQ(c.s.ToString(), std::string(c.name) + ": m");
  }
}

TEST(Status, WithContextPrefixesErrorsOnly) {
  Status e = NotFound("file x.bin missing").WithContext("loading checkpoint");
  EXPECT_EQ(e.code(), StatusCode::kNotFound);
  EXPECT_EQ(e.message(), "loading checkpoint: file x.bin missing");
  EXPECT_EQ(e.WithContext("step 3").message(), "step 3: loading checkpoint: file x.bin missing");
  Status ok = OkStatus().WithContext("ignored");
  EXPECT_TRUE(ok.ok());
  EXPECT_EQ(ok.message(), "");
}

TEST(StatusOr, ValueAndError) {
  StatusOr<int> v = 42;
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 42);
  EXPECT_EQ(v.value(), 42);
  EXPECT_TRUE(v.status().ok());

  StatusOr<int> e = OutOfRange("too big");
  EXPECT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), StatusCode::kOutOfRange);
  EXPECT_EQ(e.status().message(), "too big");

  StatusOr<std::string> s = std::string("abc");
  EXPECT_EQ(s->size(), 3u);
  StatusOr<std::unique_ptr<int>> p = std::make_unique<int>(7);
  std::unique_ptr<int> moved = std::move(p).value();
  EXPECT_EQ(*moved, 7);
}

TEST(StatusOrDeathTest, ValueOnErrorAndOkStatusDie) {
  EXPECT_DEATH(
      {
        StatusOr<int> e = NotFound("no such key");
        (void)e.value();
      },
      "StatusOr::value\\(\\) on error: NotFound: no such key");
  EXPECT_DEATH({ StatusOr<int> bad = OkStatus(); }, "StatusOr constructed from an OK status");
}

// --- ZT_RETURN_IF_ERROR / ZT_ASSIGN_OR_RETURN ---------------------------------------------------

int g_calls = 0;
Status Step(bool fail) {
  ++g_calls;
  return fail ? InvalidArgument("step failed") : OkStatus();
}
StatusOr<int> Make(int x) {
  ++g_calls;
  if (x < 0) return InvalidArgument("negative " + std::to_string(x));
  return x * 10;
}

Status TwoSteps(bool fail_first, bool fail_second, int* reached) {
  *reached = 0;
  ZT_RETURN_IF_ERROR(Step(fail_first));
  *reached = 1;
  ZT_RETURN_IF_ERROR(Step(fail_second));
  *reached = 2;
  return OkStatus();
}

StatusOr<int> SumOf(int a, int b) {
  ZT_ASSIGN_OR_RETURN(int x, Make(a));
  ZT_ASSIGN_OR_RETURN(int y, Make(b));  // a second use in one function must compile
  return x + y;
}

StatusOr<std::unique_ptr<int>> MakePtr(bool fail) {
  if (fail) return Unavailable("no ptr");
  return std::make_unique<int>(5);
}
StatusOr<int> DerefPtr(bool fail) {
  std::unique_ptr<int> p;
  ZT_ASSIGN_OR_RETURN(p, MakePtr(fail));  // assignment to an existing move-only variable
  return *p + 1;
}

TEST(StatusMacros, ReturnIfErrorStopsAtFirstError) {
  int reached = -1;
  g_calls = 0;
  EXPECT_TRUE(TwoSteps(false, false, &reached).ok());
  EXPECT_EQ(reached, 2);
  EXPECT_EQ(g_calls, 2);  // each argument evaluated once

  g_calls = 0;
  Status s = TwoSteps(true, false, &reached);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "step failed");
  EXPECT_EQ(reached, 0);
  EXPECT_EQ(g_calls, 1);

  s = TwoSteps(false, true, &reached);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(reached, 1);
}

TEST(StatusMacros, AssignOrReturn) {
  g_calls = 0;
  auto ok = SumOf(1, 2);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_EQ(*ok, 30);
  EXPECT_EQ(g_calls, 2);

  g_calls = 0;
  auto bad = SumOf(-3, 2);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "negative -3");
  EXPECT_EQ(g_calls, 1);  // stopped before the second call

  bad = SumOf(4, -5);
  EXPECT_EQ(bad.status().message(), "negative -5");

  EXPECT_EQ(*DerefPtr(false), 6);
  EXPECT_EQ(DerefPtr(true).status().code(), StatusCode::kUnavailable);
}

// --- CHECK -------------------------------------------------------------------------------------

TEST(CheckDeathTest, MessageHasFileLineExpressionAndStream) {
  int a = 1, b = 2;
  // The death statements are kept on one line so __LINE__ there is the CHECK's line.
  const int line1 = __LINE__ + 1;
  EXPECT_DEATH(ZT_CHECK(a > b) << "custom " << 17, "status_check_test\\.cc:" + std::to_string(line1) + ": CHECK failed: a > b custom 17");
  const int line2 = __LINE__ + 1;
  EXPECT_DEATH(ZT_CHECK_EQ(a, b) << "ids differ", "status_check_test\\.cc:" + std::to_string(line2) + ": CHECK failed: a == b \\(1 vs 2\\) ids differ");
  EXPECT_DEATH(ZT_CHECK_LT(b, a), "CHECK failed: b < a \\(2 vs 1\\)");
  EXPECT_DEATH(ZT_CHECK_OK(NotFound("gone")), "CHECK failed: .*NotFound: gone");
}

TEST(Check, PassingCheckDoesNotEvaluateMessage) {
  int evaluated = 0;
  auto side_effect = [&] { return ++evaluated; };
  ZT_CHECK(true) << side_effect();
  ZT_CHECK_EQ(3, 3) << side_effect();
  ZT_CHECK_OK(OkStatus());
  EXPECT_EQ(evaluated, 0);
  // CHECK works as a statement inside if/else without braces.
  if (evaluated == 0)
    ZT_CHECK(true) << "x";
  else
    ZT_CHECK(false) << "not reached";
}

}  // namespace
}  // namespace zt
