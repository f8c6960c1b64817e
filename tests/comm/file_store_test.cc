// FileStore beyond the common contract: any key bytes and length stay inside the directory,
// readers never see half a value, an unusable directory is an error, Add is atomic across processes.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "comm/file_store.h"
#include "store_test_util.h"

namespace zt::comm {
namespace {

using std::chrono::milliseconds;
using testing::OneTo;
namespace fs = std::filesystem;

TEST(FileStore, AnyKeyMapsToItsOwnFileInsideTheDirectory) {
  testing::TempDir tmp;
  std::string dir = tmp.path() + "/s";
  FileStore s(dir, milliseconds(2000));
  std::vector<std::string> keys = {"",
                                   "../escape",
                                   "/abs/path",
                                   std::string(64, 'A'),
                                   std::string(65, 'A'),
                                   std::string(128, 'A'),
                                   std::string(300, 'z'),
                                   std::string("nul\0byte", 8),
                                   "A"};
  for (size_t i = 0; i < keys.size(); ++i) ASSERT_TRUE(s.Set(keys[i], "v" + std::to_string(i)).ok()) << i;
  FileStore other(dir, milliseconds(2000));  // a second client of the same directory
  for (size_t i = 0; i < keys.size(); ++i) EXPECT_EQ(other.Get(keys[i]).value(), "v" + std::to_string(i)) << i;
  EXPECT_FALSE(fs::exists(tmp.path() + "/escape"));
  EXPECT_FALSE(fs::exists("/abs/path"));
  // Nothing outside the store directory was created.
  for (const auto& e : fs::directory_iterator(tmp.path())) EXPECT_EQ(e.path().string(), dir);
  EXPECT_TRUE(other.Delete(std::string(65, 'A')).value());
  EXPECT_EQ(other.Get(std::string(64, 'A')).value(), "v3");
  EXPECT_FALSE(other.Delete(std::string(200, 'q')).value());
}

TEST(FileStore, ReadersNeverSeeHalfAValue) {
  testing::TempDir tmp;
  FileStore writer(tmp.path(), milliseconds(2000));
  FileStore reader(tmp.path(), milliseconds(2000));
  constexpr size_t kSize = 256 << 10;
  ASSERT_TRUE(writer.Set("v", std::string(kSize, 'a')).ok());
  std::atomic<bool> stop{false};
  std::thread w([&] {
    for (int i = 0; !stop; ++i) ASSERT_TRUE(writer.Set("v", std::string(kSize, i % 2 ? 'b' : 'a')).ok());
  });
  testing::Stopwatch sw;
  int reads = 0;
  while (sw.ms() < 300) {
    std::string v = reader.Get("v").value();
    ASSERT_EQ(v.size(), kSize);
    ASSERT_EQ(v.find_first_not_of(v[0]), std::string::npos) << "a torn value";
    ++reads;
  }
  stop = true;
  w.join();
  EXPECT_GT(reads, 10);
  // No temporaries are left behind.
  for (const auto& e : fs::directory_iterator(tmp.path()))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(FileStore, AnUnusableDirectoryIsAnErrorNamingIt) {
  testing::TempDir tmp;
  std::string file = tmp.path() + "/plain_file";
  std::ofstream(file) << "x";
  FileStore s(file + "/store", milliseconds(100));
  Status st = s.Set("k", "v");
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find(file), std::string::npos) << st.message();
  EXPECT_FALSE(s.Get("k").ok());
  EXPECT_FALSE(s.Add("k", 1).ok());
  EXPECT_FALSE(s.Wait({"k"}, milliseconds(10)).ok());
  FileStore empty("", milliseconds(100));
  EXPECT_EQ(empty.Set("k", "v").code(), StatusCode::kInvalidArgument);
}

TEST(FileStore, AddFromSeveralProcessesIsAtomic) {
  testing::TempDir tmp;
  constexpr int kProcs = 4, kAdds = 250;
  std::vector<int64_t> values = testing::RunAddersInChildren(
      kProcs, kAdds, "procs", [&] { return tmp.path(); },
      [](const std::string& dir) -> std::unique_ptr<Store> {
        return std::make_unique<FileStore>(dir, milliseconds(10000));
      });
  EXPECT_EQ(values, OneTo(kProcs * kAdds));
  EXPECT_EQ(FileStore(tmp.path()).Get("procs").value(), std::to_string(kProcs * kAdds));
}

}  // namespace
}  // namespace zt::comm
