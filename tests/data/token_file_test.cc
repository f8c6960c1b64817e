// Token file format: round trips (u16, u32), the exact header layout, and every malformed file
// giving the right Status code and a message that names the problem — never a crash.
#include "data/token_file.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>

#include "data/temp_dir.h"

namespace zt::data {
namespace {

using testing::ReadBytes;
using testing::TempDir;
using testing::WriteBytes;

uint64_t LE(const std::string& b, size_t off, int n) {
  uint64_t v = 0;
  for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[off + i]);
  return v;
}

void PutLE(std::string& b, size_t off, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) b[off + i] = static_cast<char>(v >> (8 * i));
}

std::vector<int32_t> RandomTokens(int64_t n, int64_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return t;
}

// Expects Open to fail with `code` and a message containing every one of `parts` and the path.
void ExpectOpenError(const std::string& path, int64_t vocab, StatusCode code, std::vector<std::string> parts) {
  auto f = TokenFile::Open(path, vocab);
  ASSERT_FALSE(f.ok()) << "opened a malformed file " << path;
  EXPECT_EQ(f.status().code(), code) << f.status().ToString();
  EXPECT_NE(f.status().message().find(path), std::string::npos) << f.status().message();
  for (const auto& p : parts) EXPECT_NE(f.status().message().find(p), std::string::npos) << f.status().message();
}

class TokenFileTest : public ::testing::Test {
 protected:
  // A valid u16 file of 10 tokens (vocab 50) whose bytes the tests then damage.
  std::string ValidBytes() {
    std::string p = dir_.File("valid.tok");
    std::vector<int32_t> t = {0, 1, 2, 3, 4, 5, 6, 7, 8, 49};
    EXPECT_TRUE(WriteTokenFile(p, t, 2, 50).ok());
    return ReadBytes(p);
  }
  TempDir dir_;
};

TEST_F(TokenFileTest, RoundTripU16) {
  std::string p = dir_.File("a.tok");
  auto tokens = RandomTokens(10007, 65536, 1);
  tokens[5] = 65535;
  ASSERT_TRUE(WriteTokenFile(p, tokens, 2, 65536).ok());
  EXPECT_EQ(std::filesystem::file_size(p), 64u + 2u * tokens.size());
  auto f = TokenFile::Open(p, 65536);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->size(), static_cast<int64_t>(tokens.size()));
  EXPECT_EQ((*f)->token_size(), 2);
  EXPECT_EQ((*f)->recorded_vocab(), 65536);
  std::vector<int32_t> back(tokens.size());
  (*f)->Read(0, (*f)->size(), back.data());
  EXPECT_EQ(back, tokens);
  EXPECT_EQ((*f)->at(5), 65535);
  std::vector<int32_t> mid(3);
  (*f)->Read(100, 3, mid.data());
  EXPECT_EQ(mid, std::vector<int32_t>(tokens.begin() + 100, tokens.begin() + 103));
}

TEST_F(TokenFileTest, RoundTripU32) {
  std::string p = dir_.File("b.tok");
  auto tokens = RandomTokens(5003, 100000, 2);
  tokens[0] = 99999;
  tokens[1] = 65536;
  ASSERT_TRUE(WriteTokenFile(p, tokens, 4, 100000).ok());
  EXPECT_EQ(std::filesystem::file_size(p), 64u + 4u * tokens.size());
  auto f = TokenFile::Open(p, 100000);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->token_size(), 4);
  std::vector<int32_t> back(tokens.size());
  (*f)->Read(0, (*f)->size(), back.data());
  EXPECT_EQ(back, tokens);
}

TEST_F(TokenFileTest, HeaderLayoutIsLittleEndianAsDocumented) {
  std::string p = dir_.File("h.tok");
  std::vector<int32_t> t = {0x1234, 7, 0x10203};
  ASSERT_TRUE(WriteTokenFile(p, t, 4, 0x20000).ok());
  std::string b = ReadBytes(p);
  ASSERT_EQ(b.size(), 64u + 12u);
  EXPECT_EQ(b.substr(0, 8), "ZTTOKENS");
  EXPECT_EQ(LE(b, 8, 4), 1u);         // version
  EXPECT_EQ(LE(b, 12, 4), 4u);        // token size
  EXPECT_EQ(LE(b, 16, 8), 3u);        // count
  EXPECT_EQ(LE(b, 24, 8), 0x20000u);  // vocab
  for (size_t i = 32; i < 64; ++i) EXPECT_EQ(b[i], 0) << "reserved byte " << i;
  EXPECT_EQ(LE(b, 64, 4), 0x1234u);
  EXPECT_EQ(LE(b, 68, 4), 7u);
  EXPECT_EQ(LE(b, 72, 4), 0x10203u);
  EXPECT_EQ(TokenSizeForVocab(65536), 2);
  EXPECT_EQ(TokenSizeForVocab(65537), 4);
}

TEST_F(TokenFileTest, UnknownVocabAcceptsAnyModelVocabCoveringTheTokens) {
  std::string p = dir_.File("u.tok");
  ASSERT_TRUE(WriteTokenFile(p, std::vector<int32_t>{3, 1, 4}, 2, 0).ok());
  auto f = TokenFile::Open(p, 5);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->recorded_vocab(), 0);
  EXPECT_EQ((*f)->vocab(), 5);
}

TEST_F(TokenFileTest, EmptyTokenListIsValid) {
  std::string p = dir_.File("z.tok");
  ASSERT_TRUE(WriteTokenFile(p, std::vector<int32_t>{}, 2, 10).ok());
  auto f = TokenFile::Open(p, 10);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->size(), 0);
}

TEST_F(TokenFileTest, MissingFileIsNotFound) {
  ExpectOpenError(dir_.File("nope.tok"), 10, StatusCode::kNotFound, {"cannot open"});
}

TEST_F(TokenFileTest, DirectoryIsRejected) {
  ExpectOpenError(dir_.path(), 10, StatusCode::kInvalidArgument, {"not a regular file"});
}

TEST_F(TokenFileTest, EmptyFile) {
  std::string p = dir_.File("empty.tok");
  WriteBytes(p, "");
  ExpectOpenError(p, 10, StatusCode::kDataLoss, {"empty"});
}

TEST_F(TokenFileTest, HeaderShorterThan64Bytes) {
  std::string p = dir_.File("short.tok");
  WriteBytes(p, ValidBytes().substr(0, 40));
  ExpectOpenError(p, 50, StatusCode::kDataLoss, {"40 bytes", "header"});
}

TEST_F(TokenFileTest, BadMagic) {
  std::string b = ValidBytes();
  b[2] = 'X';
  std::string p = dir_.File("magic.tok");
  WriteBytes(p, b);
  ExpectOpenError(p, 50, StatusCode::kDataLoss, {"bad magic", "ZTXOKENS"});
}

TEST_F(TokenFileTest, BadVersion) {
  std::string b = ValidBytes();
  PutLE(b, 8, 2, 4);
  std::string p = dir_.File("version.tok");
  WriteBytes(p, b);
  ExpectOpenError(p, 50, StatusCode::kDataLoss, {"version 2"});
}

TEST_F(TokenFileTest, BadTokenSize) {
  for (uint64_t ts : {0u, 1u, 3u, 8u}) {
    std::string b = ValidBytes();
    PutLE(b, 12, ts, 4);
    std::string p = dir_.File("ts.tok");
    WriteBytes(p, b);
    ExpectOpenError(p, 50, StatusCode::kDataLoss, {"token size " + std::to_string(ts)});
  }
}

TEST_F(TokenFileTest, NonZeroReservedByte) {
  std::string b = ValidBytes();
  b[63] = 1;
  std::string p = dir_.File("reserved.tok");
  WriteBytes(p, b);
  ExpectOpenError(p, 50, StatusCode::kDataLoss, {"reserved", "offset 63"});
}

TEST_F(TokenFileTest, TruncatedByOneByte) {
  std::string b = ValidBytes();
  b.pop_back();
  std::string p = dir_.File("trunc.tok");
  WriteBytes(p, b);
  ExpectOpenError(p, 50, StatusCode::kDataLoss, {"truncated by 1 byte", "10 tokens"});
}

TEST_F(TokenFileTest, TruncatedToHeaderOnly) {
  std::string p = dir_.File("hdr.tok");
  WriteBytes(p, ValidBytes().substr(0, 64));
  ExpectOpenError(p, 50, StatusCode::kDataLoss, {"truncated by 20 bytes"});
}

TEST_F(TokenFileTest, ExtraBytes) {
  std::string b = ValidBytes() + "abc";
  std::string p = dir_.File("extra.tok");
  WriteBytes(p, b);
  ExpectOpenError(p, 50, StatusCode::kDataLoss, {"3 bytes of extra data"});
}

TEST_F(TokenFileTest, ImplausibleCountDoesNotOverflow) {
  std::string b = ValidBytes();
  PutLE(b, 16, ~uint64_t{0}, 8);
  std::string p = dir_.File("huge.tok");
  WriteBytes(p, b);
  ExpectOpenError(p, 50, StatusCode::kDataLoss, {"more than any file can hold"});
}

TEST_F(TokenFileTest, TokenOutsideRecordedVocabIsDataLoss) {
  std::string b = ValidBytes();
  PutLE(b, 64 + 2 * 7, 50, 2);  // token 7 becomes 50 == vocab
  std::string p = dir_.File("bad_token.tok");
  WriteBytes(p, b);
  ExpectOpenError(p, 50, StatusCode::kDataLoss, {"token 50 at index 7", "vocab 50"});
}

TEST_F(TokenFileTest, TokenOutsideModelVocabIsInvalidArgument) {
  std::string p = dir_.File("unknown_vocab.tok");
  ASSERT_TRUE(WriteTokenFile(p, std::vector<int32_t>{1, 2, 9, 3, 12}, 2, 0).ok());
  ExpectOpenError(p, 8, StatusCode::kInvalidArgument, {"token 9 at index 2", "vocab 8"});
}

TEST_F(TokenFileTest, VocabMismatchNamesBoth) {
  std::string p = dir_.File("mismatch.tok");
  ASSERT_TRUE(WriteTokenFile(p, std::vector<int32_t>{1, 2}, 2, 100).ok());
  ExpectOpenError(p, 50, StatusCode::kInvalidArgument, {"vocab 100", "vocab is 50"});
  ExpectOpenError(p, 200, StatusCode::kInvalidArgument, {"vocab 100", "vocab is 200"});
}

TEST_F(TokenFileTest, ExpectedVocabOutOfRange) {
  std::string p = dir_.File("v.tok");
  ASSERT_TRUE(WriteTokenFile(p, std::vector<int32_t>{1}, 2, 0).ok());
  ExpectOpenError(p, 0, StatusCode::kInvalidArgument, {"expected vocab 0"});
  ExpectOpenError(p, (int64_t{1} << 31) + 1, StatusCode::kInvalidArgument, {"out of range"});
}

// Random damage to a valid file (byte flips anywhere, truncation, appending) must give either a
// valid file or an error: never a crash, and never a token outside the vocabulary.
TEST_F(TokenFileTest, RandomDamageNeverCrashes) {
  std::string good = ValidBytes();
  std::mt19937_64 rng(42);
  std::string p = dir_.File("fuzz.tok");
  int errors = 0;
  for (int iter = 0; iter < 600; ++iter) {
    std::string b = good;
    switch (iter % 3) {
      case 0: {
        int flips = 1 + static_cast<int>(rng() % 3);
        for (int i = 0; i < flips; ++i) b[rng() % b.size()] ^= static_cast<char>(1 + rng() % 255);
        break;
      }
      case 1:
        b.resize(rng() % b.size());
        break;
      case 2:
        b += std::string(1 + rng() % 9, static_cast<char>(rng()));
        break;
    }
    WriteBytes(p, b);
    auto f = TokenFile::Open(p, 50);
    if (!f.ok()) {
      ++errors;
      EXPECT_FALSE(f.status().message().empty());
      continue;
    }
    for (int64_t i = 0; i < (*f)->size(); ++i) ASSERT_LT((*f)->at(i), 50);
  }
  EXPECT_GT(errors, 300);
}

TEST_F(TokenFileTest, WriterRejectsTokensThatDoNotFitAndLeavesOldFile) {
  std::string p = dir_.File("w.tok");
  ASSERT_TRUE(WriteTokenFile(p, std::vector<int32_t>{1, 2, 3}, 2, 0).ok());
  const std::string before = ReadBytes(p);

  Status s = WriteTokenFile(p, std::vector<int32_t>{1, 65536}, 2, 0);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("token 65536 at index 1"), std::string::npos) << s.message();

  s = WriteTokenFile(p, std::vector<int32_t>{-1}, 4, 0);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("token -1 at index 0"), std::string::npos) << s.message();

  s = WriteTokenFile(p, std::vector<int32_t>{4, 10}, 2, 10);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("token 10 at index 1"), std::string::npos) << s.message();

  EXPECT_EQ(WriteTokenFile(p, std::vector<int32_t>{1}, 3, 0).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteTokenFile(p, std::vector<int32_t>{1}, 2, 70000).code(), StatusCode::kInvalidArgument);

  EXPECT_EQ(ReadBytes(p), before);
  EXPECT_FALSE(std::filesystem::exists(p + ".tmp"));
}

TEST_F(TokenFileTest, WriterReportsMissingDirectory) {
  Status s = WriteTokenFile(dir_.File("no/such/dir/x.tok"), std::vector<int32_t>{1}, 2, 0);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find("no/such/dir"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace zt::data
