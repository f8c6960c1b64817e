// Hostfile parsing: DeepSpeed's `hostname slots=N` lines with comments and blank lines, the rank
// offsets of each node, and every malformed line reported with its line number.
#include "launch/hostfile.h"

#include <gtest/gtest.h>

#include "data/temp_dir.h"

namespace zt::launch {
namespace {

void ExpectError(const std::string& text, const std::string& needle) {
  auto hf = ParseHostfile(text, "hosts.txt");
  ASSERT_FALSE(hf.ok()) << "accepted:\n" << text;
  EXPECT_EQ(hf.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(hf.status().message().find(needle), std::string::npos)
      << "message: " << hf.status().message() << "\nexpected to contain: " << needle;
}

TEST(Hostfile, ParsesLinesCommentsAndBlanks) {
  auto hf = ParseHostfile(
      "# the job's nodes\n"
      "\n"
      "node-a slots=4\n"
      "   node-b\tslots=2   # a comment after the entry\n"
      "\t\n"
      "10.0.0.3 slots=1",  // no final newline
      "hosts.txt");
  ASSERT_TRUE(hf.ok()) << hf.status().ToString();
  ASSERT_EQ(hf->nodes.size(), 3u);
  EXPECT_EQ(hf->nodes[0].host, "node-a");
  EXPECT_EQ(hf->nodes[0].slots, 4);
  EXPECT_EQ(hf->nodes[1].host, "node-b");
  EXPECT_EQ(hf->nodes[1].slots, 2);
  EXPECT_EQ(hf->nodes[2].host, "10.0.0.3");
  EXPECT_EQ(hf->nodes[2].slots, 1);
  EXPECT_EQ(hf->TotalSlots(), 7);
  EXPECT_EQ(hf->FirstRank(0), 0);
  EXPECT_EQ(hf->FirstRank(1), 4);
  EXPECT_EQ(hf->FirstRank(2), 6);
}

TEST(Hostfile, RejectsDuplicateHostsNamingBothLines) {
  ExpectError("a slots=1\nb slots=2\n\na slots=3\n", "hosts.txt:4: host 'a' is listed again (first on line 1)");
}

TEST(Hostfile, RejectsMissingOrBadSlots) {
  ExpectError("a slots=1\nb\n", "hosts.txt:2: host 'b' has no slots=N");
  ExpectError("a slots=0\n", "hosts.txt:1: slots='0' is not a positive integer");
  ExpectError("a slots=-2\n", "hosts.txt:1: slots='-2' is not a positive integer");
  ExpectError("a slots=two\n", "hosts.txt:1: slots='two' is not a positive integer");
  ExpectError("a slots=\n", "hosts.txt:1: slots='' is not a positive integer");
  ExpectError("a slots=4x\n", "slots='4x'");
  ExpectError("a slots=99999999999\n", "slots='99999999999'");
  ExpectError("a slots=1 slots=2\n", "hosts.txt:1: slots is given twice");
  ExpectError("a slots 4\n", "hosts.txt:1: 'slots' is not key=value");
}

TEST(Hostfile, RejectsUnknownKeysAndMalformedLines) {
  ExpectError("# c\na slots=1 gpus=4\n", "hosts.txt:2: unknown key 'gpus'");
  ExpectError("slots=4\n", "hosts.txt:1: expected 'hostname slots=N'");
}

TEST(Hostfile, RejectsEmptyAndHugeFiles) {
  ExpectError("", "hosts.txt: no hosts");
  ExpectError("# only comments\n\n", "hosts.txt: no hosts");
  ExpectError("a slots=999999999\nb slots=999999999\n", "hosts.txt:1: the hosts so far have more than");
}

TEST(Hostfile, LoadsFilesAndReportsMissingOnes) {
  data::testing::TempDir dir;
  data::testing::WriteBytes(dir.File("hosts"), "x slots=2\ny slots=2\n");
  auto hf = LoadHostfile(dir.File("hosts"));
  ASSERT_TRUE(hf.ok()) << hf.status().ToString();
  EXPECT_EQ(hf->TotalSlots(), 4);
  auto missing = LoadHostfile(dir.File("nope"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir.File("nope")), std::string::npos);
  data::testing::WriteBytes(dir.File("bad"), "x slots=2\ny slots=q\n");
  auto bad = LoadHostfile(dir.File("bad"));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find(dir.File("bad") + ":2: "), std::string::npos) << bad.status().message();
}

}  // namespace
}  // namespace zt::launch
