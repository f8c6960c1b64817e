// FileStore: one file per key under the store's directory. A key's bytes are hex-encoded in 64-byte
// pieces: all but the last name directories "<hex>.d", the last names the file "<hex>.v" (so any
// key, of any bytes and length, maps to a path inside the directory, and no two keys share one).
// Temporaries are "<file>.tmp.<pid>.<random>.<n>"; one left by a crashed writer is ignored.
// Values are not fsync'ed: the store lives as long as the job, and rename() alone makes a value
// appear whole.
#include "comm/file_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <thread>

#include "comm/socket.h"
#include "comm/store_util.h"

namespace zt::comm {
namespace {

using std::chrono::milliseconds;

constexpr size_t kPieceBytes = 64;
constexpr milliseconds kMaxPoll(25);

std::string Hex(const char* p, size_t n) {
  static const char kHex[] = "0123456789abcdef";
  std::string s;
  s.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    auto b = static_cast<unsigned char>(p[i]);
    s.push_back(kHex[b >> 4]);
    s.push_back(kHex[b & 15]);
  }
  return s;
}

Status MakeDir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) == 0 || errno == EEXIST) return OkStatus();
  return Unavailable("cannot create directory " + path + " for the file store: " + std::strerror(errno));
}

// Reads a whole file. NotFound when it does not exist.
StatusOr<std::string> ReadWhole(const std::string& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return NotFound(path);
    return Unavailable("cannot read file store value " + path + ": " + std::strerror(errno));
  }
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t r = ::read(fd.get(), buf, sizeof(buf));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Unavailable("cannot read file store value " + path + ": " + std::strerror(errno));
    if (r == 0) return out;
    out.append(buf, static_cast<size_t>(r));
  }
}

// Holds flock(LOCK_EX) on the store's lock file for its lifetime. Each Take opens the file anew,
// so threads of one process exclude each other too (flock locks belong to the open file).
class DirLock {
 public:
  static StatusOr<DirLock> Take(const std::string& dir) {
    std::string path = dir + "/lock";
    Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd.valid()) return Unavailable("cannot open the file store lock " + path + ": " + std::strerror(errno));
    while (::flock(fd.get(), LOCK_EX) != 0) {
      if (errno != EINTR)
        return Unavailable("cannot lock " + path + ": " + std::strerror(errno) +
                           " (the file system must support flock)");
    }
    return DirLock(std::move(fd));
  }

 private:
  explicit DirLock(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;  // closing it releases the lock
};

// Sleeps a growing step (1 ms doubling to kMaxPoll), never past the deadline.
void PollSleep(milliseconds* step, SteadyClock::time_point deadline) {
  auto left = deadline - SteadyClock::now();
  std::this_thread::sleep_for(std::min<SteadyClock::duration>(*step, std::max(left, SteadyClock::duration::zero())));
  *step = std::min(*step * 2, kMaxPoll);
}

}  // namespace

FileStore::FileStore(std::string dir, milliseconds timeout) : dir_(std::move(dir)) {
  timeout_ = timeout;
  while (dir_.size() > 1 && dir_.back() == '/') dir_.pop_back();
  std::random_device rd;
  uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  tmp_tag_ = std::to_string(::getpid()) + "." + Hex(reinterpret_cast<const char*>(&r), sizeof(r));
}

Status FileStore::Ready() {
  std::lock_guard<std::mutex> l(mu_);
  if (ready_) return OkStatus();
  if (dir_.empty()) return InvalidArgument("the file store needs a directory; none was given");
  for (size_t i = 1; i <= dir_.size(); ++i) {
    if (i == dir_.size() || dir_[i] == '/') ZT_RETURN_IF_ERROR(MakeDir(dir_.substr(0, i)));
  }
  struct stat st {};
  if (::stat(dir_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return FailedPrecondition("the file store path " + dir_ + " is not a directory");
  ready_ = true;
  return OkStatus();
}

StatusOr<std::string> FileStore::PathOf(const std::string& key, bool make_dirs) {
  ZT_RETURN_IF_ERROR(Ready());
  std::string path = dir_;
  size_t pos = 0;
  while (key.size() - pos > kPieceBytes) {
    path += "/" + Hex(key.data() + pos, kPieceBytes) + ".d";
    if (make_dirs) ZT_RETURN_IF_ERROR(MakeDir(path));
    pos += kPieceBytes;
  }
  return path + "/" + Hex(key.data() + pos, key.size() - pos) + ".v";
}

Status FileStore::WriteValue(const std::string& path, const std::string& value, const std::string& key) {
  std::string tmp;
  {
    std::lock_guard<std::mutex> l(mu_);
    tmp = path + ".tmp." + tmp_tag_ + "." + std::to_string(tmp_counter_++);
  }
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd.valid())
    return Unavailable("cannot write store key '" + key + "' to " + tmp + ": " + std::strerror(errno));
  const char* p = value.data();
  size_t n = value.size();
  while (n > 0) {
    ssize_t w = ::write(fd.get(), p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = w < 0 ? errno : EIO;
      ::unlink(tmp.c_str());
      return Unavailable("cannot write store key '" + key + "' to " + tmp + ": " + std::strerror(err));
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  if (::close(fd.release()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Unavailable("cannot write store key '" + key + "' to " + tmp + ": " + std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return Unavailable("cannot rename " + tmp + " to " + path + ": " + std::strerror(err));
  }
  return OkStatus();
}

Status FileStore::Set(const std::string& key, const std::string& value) {
  ZT_ASSIGN_OR_RETURN(std::string path, PathOf(key, /*make_dirs=*/true));
  ZT_ASSIGN_OR_RETURN(DirLock lock, DirLock::Take(dir_));
  return WriteValue(path, value, key);
}

StatusOr<std::string> FileStore::Get(const std::string& key) {
  ZT_ASSIGN_OR_RETURN(std::string path, PathOf(key, /*make_dirs=*/false));
  auto deadline = SteadyClock::now() + timeout();
  milliseconds step(1);
  for (;;) {
    StatusOr<std::string> v = ReadWhole(path);
    if (v.ok() || v.status().code() != StatusCode::kNotFound) return v;
    if (SteadyClock::now() >= deadline) return WaitTimedOut(timeout(), {key}, " (file store " + dir_ + ")");
    PollSleep(&step, deadline);
  }
}

StatusOr<int64_t> FileStore::Add(const std::string& key, int64_t delta) {
  ZT_ASSIGN_OR_RETURN(std::string path, PathOf(key, /*make_dirs=*/true));
  ZT_ASSIGN_OR_RETURN(DirLock lock, DirLock::Take(dir_));
  StatusOr<std::string> cur = ReadWhole(path);
  if (!cur.ok() && cur.status().code() != StatusCode::kNotFound) return cur.status();
  ZT_ASSIGN_OR_RETURN(int64_t v, AddToStoredInt(key, cur.ok() ? &*cur : nullptr, delta));
  ZT_RETURN_IF_ERROR(WriteValue(path, std::to_string(v), key));
  return v;
}

Status FileStore::Wait(const std::vector<std::string>& keys, milliseconds timeout) {
  std::vector<std::string> paths;
  for (const auto& k : keys) {
    ZT_ASSIGN_OR_RETURN(std::string p, PathOf(k, /*make_dirs=*/false));
    paths.push_back(std::move(p));
  }
  auto deadline = SteadyClock::now() + timeout;
  milliseconds step(1);
  for (;;) {
    std::vector<std::string> missing;
    for (size_t i = 0; i < keys.size(); ++i)
      if (::access(paths[i].c_str(), F_OK) != 0) missing.push_back(keys[i]);
    if (missing.empty()) return OkStatus();
    if (SteadyClock::now() >= deadline) return WaitTimedOut(timeout, missing, " (file store " + dir_ + ")");
    PollSleep(&step, deadline);
  }
}

StatusOr<bool> FileStore::Delete(const std::string& key) {
  ZT_ASSIGN_OR_RETURN(std::string path, PathOf(key, /*make_dirs=*/false));
  ZT_ASSIGN_OR_RETURN(DirLock lock, DirLock::Take(dir_));
  if (::unlink(path.c_str()) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return Unavailable("cannot delete store key '" + key + "' (" + path + "): " + std::strerror(errno));
}

}  // namespace zt::comm
