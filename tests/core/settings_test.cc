// Settings: the declared table, defaults, typed parsing whose errors name the variable and its
// value, CHECK-death on an undeclared name, and detection of stray ZT_* variables.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>

#include "core/settings.h"

namespace zt {
namespace {

// Sets (or unsets) an environment variable for one scope and restores the previous state.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = std::string(old);
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_.c_str(), old_->c_str(), 1);
    else unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> old_;
};

bool Contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(Settings, DeclaredTable) {
  std::set<std::string> names;
  for (const settings::Info& i : settings::All()) {
    std::string n(i.name);
    EXPECT_TRUE(names.insert(n).second) << n << " declared twice";
    EXPECT_EQ(n.rfind("ZT_", 0), 0u) << n;
    EXPECT_FALSE(i.help.empty()) << n;
  }
  for (const char* n : {"ZT_LOG_LEVEL", "ZT_NUM_THREADS", "ZT_DUMP_IR", "ZT_DUMP_DIR", "ZT_EXEC_MEMORY"})
    EXPECT_TRUE(names.count(n)) << n << " is not declared";
  std::string help = settings::HelpText();
  for (const std::string& n : names) EXPECT_NE(help.find(n), std::string::npos) << n;
}

TEST(Settings, DefaultsAndEnvironment) {
  {
    ScopedEnv e("ZT_EXEC_MEMORY", nullptr);
    EXPECT_EQ(settings::GetString("ZT_EXEC_MEMORY"), "arena");
  }
  {
    ScopedEnv e("ZT_EXEC_MEMORY", "dynamic");
    EXPECT_EQ(settings::GetString("ZT_EXEC_MEMORY"), "dynamic");
  }
  {
    ScopedEnv e("ZT_NUM_THREADS", nullptr);
    auto v = settings::GetInt("ZT_NUM_THREADS");
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    EXPECT_EQ(*v, 0);
  }
  {
    ScopedEnv e("ZT_NUM_THREADS", "-12");
    EXPECT_EQ(*settings::GetInt("ZT_NUM_THREADS"), -12);
  }
  {
    ScopedEnv e("ZT_DUMP_DIR", "/tmp/x");
    EXPECT_EQ(settings::DumpDir(), "/tmp/x");
  }
}

TEST(Settings, GetIntErrorsNameTheVariable) {
  for (const char* bad : {"abc", "12x", "", "1.5", "99999999999999999999999"}) {
    ScopedEnv e("ZT_NUM_THREADS", bad);
    auto v = settings::GetInt("ZT_NUM_THREADS");
    ASSERT_FALSE(v.ok()) << "'" << bad << "' parsed as " << *v;
    EXPECT_EQ(v.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(v.status().message().find("ZT_NUM_THREADS='" + std::string(bad) + "'"), std::string::npos)
        << v.status().ToString();
  }
}

TEST(Settings, GetDoubleAndBool) {
  {
    ScopedEnv e("ZT_DUMP_DIR", "2.5e-3");
    EXPECT_DOUBLE_EQ(*settings::GetDouble("ZT_DUMP_DIR"), 2.5e-3);
  }
  {
    ScopedEnv e("ZT_DUMP_DIR", "2.5x");
    auto v = settings::GetDouble("ZT_DUMP_DIR");
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.status().message().find("ZT_DUMP_DIR='2.5x'"), std::string::npos) << v.status().ToString();
  }
  for (const char* t : {"1", "true", "yes", "on"}) {
    ScopedEnv e("ZT_DUMP_IR", t);
    auto v = settings::GetBool("ZT_DUMP_IR");
    ASSERT_TRUE(v.ok()) << t;
    EXPECT_TRUE(*v) << t;
  }
  for (const char* f : {"0", "false", "no", "off"}) {
    ScopedEnv e("ZT_DUMP_IR", f);
    auto v = settings::GetBool("ZT_DUMP_IR");
    ASSERT_TRUE(v.ok()) << f;
    EXPECT_FALSE(*v) << f;
  }
  for (const char* bad : {"maybe", "2", "TRUEISH"}) {
    ScopedEnv e("ZT_DUMP_IR", bad);
    auto v = settings::GetBool("ZT_DUMP_IR");
    ASSERT_FALSE(v.ok()) << bad;
    EXPECT_NE(v.status().message().find("ZT_DUMP_IR='" + std::string(bad) + "'"), std::string::npos)
        << v.status().ToString();
    EXPECT_NE(v.status().message().find("1/0"), std::string::npos) << "the error says what is accepted";
  }
}

TEST(Settings, UnknownInEnvironmentFindsStrayNames) {
  ScopedEnv stray("ZT_FOO", "1");
  ScopedEnv declared("ZT_LOG_LEVEL", "info");
  ScopedEnv other("NOT_ZT_BAR", "1");
  auto unknown = settings::UnknownInEnvironment();
  EXPECT_TRUE(Contains(unknown, "ZT_FOO"));
  EXPECT_FALSE(Contains(unknown, "ZT_LOG_LEVEL"));
  EXPECT_FALSE(Contains(unknown, "NOT_ZT_BAR"));
  unsetenv("ZT_FOO");
  EXPECT_FALSE(Contains(settings::UnknownInEnvironment(), "ZT_FOO"));
}

TEST(SettingsDeathTest, UndeclaredNameAndBadThreadCount) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH((void)settings::GetString("ZT_NOT_A_SETTING"),
               "CHECK failed: .*setting ZT_NOT_A_SETTING is not declared");
  EXPECT_DEATH((void)settings::GetInt("ZT_NOPE"), "ZT_NOPE is not declared");
  // A malformed user setting is not a crash: a clear error and exit status 2.
  ScopedEnv e("ZT_NUM_THREADS", "many");
  EXPECT_EXIT((void)settings::NumThreads(), ::testing::ExitedWithCode(2), "ZT_NUM_THREADS='many'");
  ScopedEnv e2("ZT_NUM_THREADS", "-1");
  EXPECT_EXIT((void)settings::NumThreads(), ::testing::ExitedWithCode(2), "ZT_NUM_THREADS must be >= 0");
}

}  // namespace
}  // namespace zt
