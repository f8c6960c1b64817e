// `ztrain data synth` end to end: runs the built binary (ZT_BINARY_DIR/ztrain) and checks the
// exit code, the printed floor, the token files and their sidecars; bad options fail cleanly.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "data/markov.h"
#include "data/synth.h"
#include "data/temp_dir.h"
#include "data/token_file.h"

namespace zt::data {
namespace {

using testing::ReadBytes;
using testing::TempDir;

struct CliRun {
  int exit_code = -1;
  std::string out, err;
};

CliRun Ztrain(const TempDir& dir, const std::string& args) {
  const std::string bin = std::string(ZT_BINARY_DIR) + "/ztrain";
  EXPECT_TRUE(std::filesystem::exists(bin)) << bin << " is not built";
  const std::string out = dir.File("stdout.txt"), err = dir.File("stderr.txt");
  int rc = std::system((bin + " " + args + " >" + out + " 2>" + err).c_str());
  CliRun r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  r.out = ReadBytes(out);
  r.err = ReadBytes(err);
  return r;
}

TEST(DataCli, SynthWritesFilesSidecarsAndPrintsTheFloor) {
  TempDir dir;
  const std::string train = dir.File("train.tok"), eval = dir.File("eval.tok");
  CliRun r = Ztrain(dir, "data synth --out " + train + " --vocab 50 --tokens 5000 --branching 3 --seed 7 --eval-out " +
                             eval + " --eval-tokens 1000");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  char floor[32];
  std::snprintf(floor, sizeof(floor), "%.6f", std::log(3.0));
  EXPECT_NE(r.out.find(std::string("loss floor ln(3) = ") + floor), std::string::npos) << r.out;

  auto tf = TokenFile::Open(train, 50);
  auto ef = TokenFile::Open(eval, 50);
  ASSERT_TRUE(tf.ok()) << tf.status().ToString();
  ASSERT_TRUE(ef.ok()) << ef.status().ToString();
  EXPECT_EQ((*tf)->size(), 5000);
  EXPECT_EQ((*ef)->size(), 1000);
  EXPECT_EQ((*tf)->token_size(), 2);

  MarkovCorpus table(50, 3, 7);
  std::vector<int32_t> t(1000);
  (*ef)->Read(0, 1000, t.data());
  EXPECT_EQ(t, table.Generate(1000, MarkovWalkSeed(7, 1)));

  auto j = nlohmann::json::parse(ReadBytes(train + ".json"));
  EXPECT_EQ(j["kind"], "markov");
  EXPECT_EQ(j["vocab"], 50);
  EXPECT_EQ(j["branching"], 3);
  EXPECT_EQ(j["seed"], 7);
  EXPECT_EQ(j["tokens"], 5000);
  EXPECT_NEAR(j["loss_floor"].get<double>(), std::log(3.0), 1e-12);
  auto je = nlohmann::json::parse(ReadBytes(eval + ".json"));
  EXPECT_EQ(je["tokens"], 1000);
  EXPECT_EQ(je["seed"], 7);
  EXPECT_EQ(je["split"], "eval");
}

TEST(DataCli, DefaultsAndLargeVocabUseU32) {
  TempDir dir;
  const std::string out = dir.File("big.tok");
  CliRun r = Ztrain(dir, "data synth --out " + out + " --vocab 70000 --tokens 100");
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  auto f = TokenFile::Open(out, 70000);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->token_size(), 4);
  auto j = nlohmann::json::parse(ReadBytes(out + ".json"));
  EXPECT_EQ(j["branching"], 2);
  EXPECT_FALSE(std::filesystem::exists(dir.File("big.tok.tmp")));
}

TEST(DataCli, BadOptionsFailWithoutWriting) {
  TempDir dir;
  const std::string out = dir.File("x.tok");
  CliRun r = Ztrain(dir, "data synth --out " + out + " --vocab 10 --tokens 100 --branching 11");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("--branching 11"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));

  r = Ztrain(dir, "data synth --out " + out + " --vocab 10 --tokens 100 --eval-out " + dir.File("e.tok"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("eval-tokens"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(out));

  r = Ztrain(dir, "data synth --vocab 10 --tokens 100");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("--out"), std::string::npos) << r.err;

  r = Ztrain(dir, "data");
  EXPECT_NE(r.exit_code, 0);
}

}  // namespace
}  // namespace zt::data
