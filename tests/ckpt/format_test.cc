// File names, LATEST's text, the shard header (round trip and every rejection), xxh64 streaming,
// and WriteShard's file against the format.
#include <gtest/gtest.h>

#include <cstring>

#include "ckpt/checksum.h"
#include "ckpt/format.h"
#include "ckpt/fs.h"
#include "ckpt/io_pool.h"
#include "ckpt/shard_io.h"
#include "ckpt_test_util.h"

namespace zt::ckpt {
namespace {

using testing::TempDir;

TEST(Format, Names) {
  EXPECT_EQ(StepDirName(0), "step-000000000000");
  EXPECT_EQ(StepDirName(123), "step-000000000123");
  EXPECT_EQ(ParseStepDirName("step-000000000123"), 123);
  for (const char* bad : {"step-123", "step-0000000001234", "step-00000000012x", "Step-000000000123", "",
                          "step-000000000123.tmp"})
    EXPECT_FALSE(ParseStepDirName(bad).has_value()) << bad;
  EXPECT_EQ(ShardFileName(3), "rank-00003.shard");
  EXPECT_EQ(LatestText("step-000000000007"), "step-000000000007\n");
  EXPECT_EQ(ParseLatestText("step-000000000007\n"), "step-000000000007");
  for (const char* bad : {"step-000000000007", "step-000000000007\n\n", " step-000000000007\n", "\n", "",
                          "step-7\n", "../etc\n"})
    EXPECT_FALSE(ParseLatestText(bad).has_value()) << bad;
}

TEST(Format, ShardHeaderRoundTrip) {
  ShardHeader h;
  h.step = 1234567890123;
  h.rank = 5;
  h.world_size = 8;
  h.data_bytes = 777777;
  h.num_sections = 12;
  auto b = EncodeShardHeader(h);
  EXPECT_EQ(std::memcmp(b.data(), "ZTCKSHRD", 8), 0);
  auto back = DecodeShardHeader(b.data(), b.size(), "f.shard");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->step, h.step);
  EXPECT_EQ(back->rank, 5);
  EXPECT_EQ(back->world_size, 8);
  EXPECT_EQ(back->data_bytes, 777777u);
  EXPECT_EQ(back->num_sections, 12u);
  EXPECT_EQ(back->version, kShardVersion);
}

void PutU64(char* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>(v >> (8 * i));
}
// Rewrites the header's own checksum after a deliberate change, so later checks are reached.
void Reseal(std::array<char, kShardHeaderBytes>& b) { PutU64(b.data() + 56, Xxh64Of(b.data(), 56)); }

TEST(Format, ShardHeaderRejections) {
  ShardHeader h;
  h.step = 10;
  h.rank = 1;
  h.world_size = 2;
  const auto good = EncodeShardHeader(h);
  auto expect_bad = [](const std::array<char, kShardHeaderBytes>& b, const char* what, size_t n = kShardHeaderBytes) {
    auto r = DecodeShardHeader(b.data(), n, "dir/rank-00001.shard");
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.status().code(), StatusCode::kDataLoss) << what;
    EXPECT_NE(r.status().message().find("dir/rank-00001.shard"), std::string::npos) << r.status().message();
    EXPECT_NE(r.status().message().find(what), std::string::npos) << r.status().message();
  };
  expect_bad(good, "too short", 63);
  auto b = good;
  b[0] = 'X';
  expect_bad(b, "magic");
  // Any flipped bit in the fields breaks the header checksum.
  for (size_t byte : {8, 16, 24, 28, 40, 48, 55}) {
    b = good;
    b[byte] ^= 0x10;
    expect_bad(b, "checksum");
  }
  b = good;
  b[60] ^= 1;  // in the checksum itself
  expect_bad(b, "checksum");
  h.version = 2;
  expect_bad(EncodeShardHeader(h), "version 2");
  h.version = kShardVersion;
  h.rank = 2;  // == world_size
  expect_bad(EncodeShardHeader(h), "impossible");
  h.rank = 1;
  h.step = -3;
  expect_bad(EncodeShardHeader(h), "negative step");
  h.step = 10;
  h.data_offset = 64;
  expect_bad(EncodeShardHeader(h), "data offset");
  b = good;
  b[12] = 65;  // header size field
  Reseal(b);
  expect_bad(b, "header size");
  b = good;
  b[53] = 1;  // reserved
  Reseal(b);
  expect_bad(b, "reserved");
}

TEST(Checksum, StreamingEqualsOneShotAndParses) {
  std::vector<char> data(100000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 131 + 7);
  uint64_t whole = Xxh64Of(data.data(), data.size());
  for (size_t piece : {1, 7, 4096, 65536, 100000}) {
    Xxh64 h;
    for (size_t off = 0; off < data.size(); off += piece) h.Update(data.data() + off, std::min(piece, data.size() - off));
    EXPECT_EQ(h.Digest(), whole) << piece;
  }
  EXPECT_EQ(ParseChecksum(FormatChecksum(whole)), whole);
  EXPECT_EQ(FormatChecksum(0x1f).size(), 22u);
  EXPECT_FALSE(ParseChecksum("xxh64:123").has_value());
  EXPECT_FALSE(ParseChecksum("xxh32:0123456789abcdef").has_value());
  EXPECT_FALSE(ParseChecksum("xxh64:0123456789abcdeg").has_value());
  // Known value of xxh64("") with seed 0.
  EXPECT_EQ(Xxh64Of("", 0), 0xef46db3751d8e999ull);
}

// WriteShard's file is the header block, the snapshot bytes at 4096, zero padding to 4096; its
// checksum is the whole file's; the same for every thread count, chunk size and I/O mode.
TEST(ShardIo, FileMatchesTheFormat) {
  TempDir d;
  auto snap = testing::MakeSnapshot(9, 1, 2, 3);
  std::string expected_digest;
  for (int threads : {0, 1, 3}) {
    for (size_t chunk : {4096u, 12288u, 8u << 20}) {
      for (bool direct : {false, true}) {
        IoPool pool(threads);
        ShardWriteOptions o;
        o.chunk_bytes = chunk;
        o.direct_io = direct;
        o.pool = &pool;
        bool released = false;
        o.on_bytes_written = [&] { released = true; };
        auto r = WriteShard(*DefaultFs(), d.path(), *snap, o);
        ASSERT_TRUE(r.ok()) << r.status().ToString();
        EXPECT_TRUE(released);
        std::string bytes = testing::ReadBytes(d.File("rank-00001.shard"));
        EXPECT_FALSE(std::filesystem::exists(d.File("rank-00001.shard.tmp")));
        ASSERT_EQ(bytes.size(), r->info.bytes);
        ASSERT_EQ(bytes.size() % 4096, 0u);
        ASSERT_EQ(bytes.size(), ShardFileBytes(snap->bytes.size()));
        auto h = DecodeShardHeader(bytes.data(), bytes.size(), "shard");
        ASSERT_TRUE(h.ok()) << h.status().ToString();
        EXPECT_EQ(h->step, 9);
        EXPECT_EQ(h->rank, 1);
        EXPECT_EQ(h->data_bytes, snap->bytes.size());
        EXPECT_EQ(h->num_sections, snap->sections.size());
        EXPECT_EQ(bytes.find_first_not_of('\0', kShardHeaderBytes), kShardDataOffset);
        EXPECT_EQ(std::memcmp(bytes.data() + kShardDataOffset, snap->bytes.data(), snap->bytes.size()), 0);
        EXPECT_EQ(bytes.find_first_not_of('\0', kShardDataOffset + snap->bytes.size()), std::string::npos);
        EXPECT_EQ(r->info.checksum, FormatChecksum(Xxh64Of(bytes.data(), bytes.size())));
        ASSERT_EQ(r->info.sections.size(), snap->sections.size());
        for (size_t i = 0; i < snap->sections.size(); ++i)
          EXPECT_EQ(r->info.sections[i].offset, snap->sections[i].offset + kShardDataOffset);
        if (expected_digest.empty()) expected_digest = r->info.checksum;
        EXPECT_EQ(r->info.checksum, expected_digest);
      }
    }
  }
}

TEST(ShardIo, RejectsAnImpossibleSnapshot) {
  TempDir d;
  auto snap = testing::MakeSnapshot(1, 0, 1);
  snap->sections[2].numel += 1000000;
  auto r = WriteShard(*DefaultFs(), d.path(), *snap, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.status().message().find(snap->sections[2].name), std::string::npos);
  EXPECT_TRUE(testing::Tree(d.path()).empty());
}

TEST(ShardIo, FailureLeavesNoFile) {
  TempDir d;
  auto snap = testing::MakeSnapshot(1, 0, 1);
  // A missing step directory: the create fails and nothing appears.
  auto r = WriteShard(*DefaultFs(), d.File("missing"), *snap, {});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kNotFound);
  EXPECT_NE(r.status().message().find("missing/rank-00000.shard.tmp"), std::string::npos) << r.status().message();
}

}  // namespace
}  // namespace zt::ckpt
