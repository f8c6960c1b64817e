// Safetensors reading and writing: every malformed-header case is rejected with a message naming
// the file and the problem (never a crash), random corruption of a valid file's header yields an
// error or a file whose entries are consistent, and the writer round-trips every dtype atomically.
#include "models/safetensors.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace zt::models {
namespace {

std::string LengthPrefix(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return s;
}

// A file image: length prefix, header text, `data_bytes` bytes of data.
std::string Image(const std::string& header, size_t data_bytes) {
  return LengthPrefix(header.size()) + header + std::string(data_bytes, '\x5a');
}

// The error message for an image that must be rejected.
std::string Rejected(const std::string& bytes) {
  auto f = SafetensorsFile::FromBytes(bytes, "bad.safetensors");
  EXPECT_FALSE(f.ok());
  if (f.ok()) return "";
  EXPECT_EQ(f.status().code(), StatusCode::kDataLoss);
  EXPECT_NE(f.status().message().find("bad.safetensors"), std::string::npos) << f.status().message();
  return f.status().message();
}

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << "'" << (text) << "' lacks '" << (part) << "'"

std::string Entry(const std::string& dtype, const std::string& shape, const std::string& offsets) {
  return R"({"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offsets + "}";
}

TEST(Safetensors, RejectsEveryMalformedHeader) {
  struct Case {
    std::string name;
    std::string bytes;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"shorter than 8 bytes", "abc", "shorter than the 8-byte header length"},
      {"empty", "", "shorter than the 8-byte header length"},
      {"header past end", LengthPrefix(100) + "{}", "runs past the end of the file"},
      {"header over 100 MiB", LengthPrefix(200ull << 20) + "{}", "exceeds 100 MiB"},
      {"header length 2^64-1", LengthPrefix(~0ull) + "{}", "exceeds 100 MiB"},
      {"invalid JSON", Image("{\"a\": ", 0), "not valid JSON"},
      {"not an object", Image("[1,2,3]", 0), "not a JSON object"},
      {"entry not an object", Image(R"({"a": 5})", 0), "entry 'a' is not an object"},
      {"no dtype", Image(R"({"a":{"shape":[1],"data_offsets":[0,4]}})", 4), "entry 'a' has no dtype"},
      {"dtype not a string", Image(R"({"a":{"dtype":7,"shape":[1],"data_offsets":[0,4]}})", 4), "no dtype string"},
      {"no shape", Image(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", 4), "entry 'a' has no shape array"},
      {"shape not an array", Image(R"({"a":)" + Entry("F32", "4", "[0,4]") + "}", 4), "no shape array"},
      {"no offsets", Image(R"({"a":{"dtype":"F32","shape":[1]}})", 4), "needs data_offsets"},
      {"one offset", Image(R"({"a":)" + Entry("F32", "[1]", "[0]") + "}", 4), "needs data_offsets"},
      {"negative offset", Image(R"({"a":)" + Entry("F32", "[1]", "[-4,0]") + "}", 4), "needs data_offsets"},
      {"unsupported dtype", Image(R"({"a":)" + Entry("F64", "[1]", "[0,8]") + "}", 8), "unsupported dtype F64"},
      {"unknown dtype", Image(R"({"a":)" + Entry("Q4_K", "[1]", "[0,1]") + "}", 1), "unsupported dtype Q4_K"},
      {"begin > end", Image(R"({"a":)" + Entry("F32", "[1]", "[4,0]") + "}", 4), "begin > end"},
      {"end past data", Image(R"({"a":)" + Entry("F32", "[2]", "[0,8]") + "}", 4), "past the data"},
      {"byte count", Image(R"({"a":)" + Entry("F32", "[2]", "[0,4]") + "}", 4), "has 4 bytes but its dtype and shape need 8"},
      {"overlap",
       Image(R"({"a":)" + Entry("F32", "[2]", "[0,8]") + R"(,"b":)" + Entry("F32", "[2]", "[4,12]") + "}", 12),
       "overlap"},
      {"hole", Image(R"({"a":)" + Entry("F32", "[1]", "[0,4]") + R"(,"b":)" + Entry("F32", "[1]", "[8,12]") + "}", 12),
       "hole before tensor 'b'"},
      {"trailing bytes", Image(R"({"a":)" + Entry("F32", "[1]", "[0,4]") + "}", 8), "4 bytes that no tensor uses"},
      {"data without tensors", Image("{}", 3), "3 bytes that no tensor uses"},
      {"metadata not an object", Image(R"({"__metadata__": 5})", 0), "__metadata__ is not an object"},
      {"metadata value not a string", Image(R"({"__metadata__": {"format": 1}})", 0),
       "__metadata__ value of 'format' is not a string"},
      {"negative shape", Image(R"({"a":)" + Entry("F32", "[-1]", "[0,0]") + "}", 0), "not a non-negative integer"},
      {"fractional shape", Image(R"({"a":)" + Entry("F32", "[1.5]", "[0,4]") + "}", 4), "not a non-negative integer"},
      {"string shape", Image(R"({"a":)" + Entry("F32", R"(["2"])", "[0,8]") + "}", 8), "not a non-negative integer"},
      {"absurd shape", Image(R"({"a":)" + Entry("U8", "[562949953421312]", "[0,1]") + "}", 1), "absurd shape"},
      // 2^31 * 2^31 * 4 bytes wraps to 0 in 64 bits; a wrapped product must not pass as 0 bytes.
      {"byte count overflow", Image(R"({"a":)" + Entry("F32", "[2147483648,2147483648]", "[0,0]") + "}", 0),
       "need 4611686018427387904 x 4"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    EXPECT_HAS(Rejected(c.bytes), c.expect);
  }
}

TEST(Safetensors, AcceptsEdgeCasesThatAreValid) {
  auto empty = SafetensorsFile::FromBytes(Image("{}", 0), "empty");
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_TRUE((*empty)->entries().empty());
  // A zero-element tensor, a scalar and metadata; the header padded with spaces.
  std::string h = R"({"__metadata__":{"format":"pt"},"z":)" + Entry("F32", "[0,3]", "[0,0]") + R"(,"s":)" +
                  Entry("I64", "[]", "[0,8]") + "}    ";
  auto f = SafetensorsFile::FromBytes(Image(h, 8), "ok");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  ASSERT_EQ((*f)->entries().size(), 2u);
  EXPECT_EQ((*f)->Find("z")->shape, Shape({0, 3}));
  EXPECT_EQ((*f)->Find("s")->shape.rank(), 0);
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  EXPECT_EQ((*f)->Find("missing"), nullptr);
}

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "zt_safetensors_" + std::to_string(::getpid()) + "_" + name;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Safetensors, WriterRoundTripsEveryDType) {
  std::vector<std::vector<uint8_t>> storage;
  std::vector<TensorToWrite> tensors;
  std::mt19937 rng(7);
  const std::vector<std::pair<DType, Shape>> specs = {{DType::kF32, Shape{3, 5}}, {DType::kBF16, Shape{7}},
                                                      {DType::kF16, Shape{2, 3, 1}}, {DType::kI32, Shape{4}},
                                                      {DType::kI64, Shape{}},         {DType::kU8, Shape{5}}};
  for (size_t i = 0; i < specs.size(); ++i) {
    auto [dt, shape] = specs[i];
    storage.emplace_back(static_cast<size_t>(shape.numel()) * DTypeSize(dt));
    for (auto& b : storage.back()) b = static_cast<uint8_t>(rng());
    tensors.push_back({"t" + std::to_string(i) + "." + DTypeName(dt), Tensor(storage.back().data(), dt, shape)});
  }
  std::string path = TempPath("roundtrip.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, tensors, {{"format", "pt"}, {"note", "x"}}).ok());
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  auto f = SafetensorsFile::Open(path);
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->metadata().size(), 2u);
  EXPECT_EQ((*f)->metadata().at("note"), "x");
  size_t data = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const SafetensorsEntry* e = (*f)->Find(tensors[i].name);
    ASSERT_NE(e, nullptr) << tensors[i].name;
    EXPECT_EQ(e->dtype, specs[i].first);
    EXPECT_EQ(e->shape, specs[i].second);
    Tensor v = (*f)->View(*e);
    ASSERT_EQ(v.nbytes(), storage[i].size());
    EXPECT_EQ(std::memcmp(v.data, storage[i].data(), storage[i].size()), 0) << tensors[i].name;
    data += storage[i].size();
  }
  // The data section starts 8-byte aligned.
  EXPECT_EQ((std::filesystem::file_size(path) - data) % 8, 0u);
  std::filesystem::remove(path);
}

TEST(Safetensors, WriterErrorsLeaveTheOldFile) {
  float x[2] = {1, 2};
  std::string path = TempPath("keep.safetensors");
  ASSERT_TRUE(WriteSafetensors(path, {{"a", Tensor(x, DType::kF32, Shape{2})}}).ok());
  std::string before = ReadAll(path);
  Status dup = WriteSafetensors(path, {{"a", Tensor(x, DType::kF32, Shape{1})}, {"a", Tensor(x, DType::kF32, Shape{1})}});
  EXPECT_FALSE(dup.ok());
  EXPECT_HAS(dup.message(), "duplicate tensor name 'a'");
  Status utf8 = WriteSafetensors(path, {{"bad\xff\xfe", Tensor(x, DType::kF32, Shape{1})}});
  EXPECT_FALSE(utf8.ok());
  EXPECT_EQ(ReadAll(path), before);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  Status nodir = WriteSafetensors(TempPath("no/such/dir/x.safetensors"), {{"a", Tensor(x, DType::kF32, Shape{2})}});
  EXPECT_FALSE(nodir.ok());
  EXPECT_HAS(nodir.message(), "no/such/dir");
  std::filesystem::remove(path);
}

TEST(Safetensors, OpenRejectsWhatIsNotAFile) {
  auto missing = SafetensorsFile::Open(TempPath("missing.safetensors"));
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_HAS(missing.status().message(), "missing.safetensors");
  std::string dir = TempPath("a_directory");
  std::filesystem::create_directories(dir);
  auto d = SafetensorsFile::Open(dir);
  ASSERT_FALSE(d.ok());
  EXPECT_HAS(d.status().message(), "not a regular file");
  std::string fifo = TempPath("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto p = SafetensorsFile::Open(fifo);  // must not block waiting for a writer
  ASSERT_FALSE(p.ok());
  EXPECT_HAS(p.status().message(), "not a regular file");
  std::filesystem::remove(fifo);
  std::filesystem::remove_all(dir);
  std::string empty = TempPath("empty.safetensors");
  std::ofstream(empty).close();
  auto e = SafetensorsFile::Open(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_HAS(e.status().message(), "shorter than the 8-byte");
  std::filesystem::remove(empty);
}

// A valid file image with several tensors (header length, header, data).
std::string ValidImage(size_t* header_end) {
  static float f[6] = {1, 2, 3, 4, 5, 6};
  static uint16_t h[3] = {1, 2, 3};
  static int64_t i[2] = {7, 8};
  std::string path = TempPath("fuzz_base.safetensors");
  ZT_CHECK_OK(WriteSafetensors(path,
                               {{"weight", Tensor(f, DType::kF32, Shape{2, 3})},
                                {"half", Tensor(h, DType::kBF16, Shape{3})},
                                {"ids", Tensor(i, DType::kI64, Shape{2})}},
                               {{"format", "pt"}}));
  std::string bytes = ReadAll(path);
  std::filesystem::remove(path);
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(bytes[k]);
  *header_end = 8 + n;
  return bytes;
}

// The consistency a file that parses must have, whatever bytes it came from.
void ExpectConsistent(const SafetensorsFile& f, size_t file_size, size_t header_end) {
  size_t data_size = file_size - header_end, sum = 0;
  for (const auto& e : f.entries()) {
    ASSERT_EQ(e.nbytes, static_cast<size_t>(e.shape.numel()) * DTypeSize(e.dtype)) << e.name;
    ASSERT_LE(e.offset + e.nbytes, data_size) << e.name;
    ASSERT_EQ(f.Find(e.name), &e);
    sum += e.nbytes;
    Tensor v = f.View(e);
    volatile unsigned char acc = 0;  // touch every byte
    for (size_t k = 0; k < e.nbytes; ++k) acc = acc ^ static_cast<const unsigned char*>(v.data)[k];
  }
  ASSERT_EQ(sum, data_size);
}

TEST(Safetensors, RandomHeaderCorruptionNeverCrashes) {
  size_t header_end = 0;
  const std::string base = ValidImage(&header_end);
  std::mt19937_64 rng(12345);
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string bytes = base;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      size_t pos = rng() % header_end;  // the length prefix included
      if (rng() % 2) bytes[pos] = static_cast<char>(bytes[pos] ^ (1u << (rng() % 8)));
      else bytes[pos] = static_cast<char>(rng());
    }
    auto f = SafetensorsFile::FromBytes(bytes, "fuzz");
    if (f.ok()) {
      ++accepted;
      uint64_t n = 0;
      for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(bytes[k]);
      ExpectConsistent(**f, bytes.size(), 8 + n);
    } else {
      ++rejected;
      EXPECT_FALSE(f.status().message().empty());
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(accepted, 0);  // e.g. flips inside padding or metadata strings
  // Every strict truncation of a valid file is an error.
  for (size_t len = 0; len < base.size(); ++len) {
    auto f = SafetensorsFile::FromBytes(base.substr(0, len), "truncated");
    EXPECT_FALSE(f.ok()) << "truncated to " << len << " bytes";
  }
}

TEST(Safetensors, RandomHeadersNeverCrash) {
  std::mt19937_64 rng(99);
  const std::string alphabet = "{}[]\":,0123456789-.eE FI3U8BdtypeshaoffsP_ \\ua";
  for (int iter = 0; iter < 5000; ++iter) {
    size_t n = rng() % 96;
    std::string h;
    for (size_t k = 0; k < n; ++k) h += alphabet[rng() % alphabet.size()];
    std::string bytes = Image(h, rng() % 16);
    auto f = SafetensorsFile::FromBytes(bytes, "random");
    if (f.ok()) ExpectConsistent(**f, bytes.size(), 8 + h.size());
  }
}

}  // namespace
}  // namespace zt::models
