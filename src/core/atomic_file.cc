// AtomicFile: temp file + fsync + rename (+ directory fsync).
#include "core/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zt {
namespace {

std::string DirectoryOf(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

StatusOr<std::unique_ptr<AtomicFile>> AtomicFile::Create(const std::string& path) {
  if (path.empty()) return InvalidArgument("output path is empty; give a file name");
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    int err = errno;
    Status s(
        err == ENOENT ? StatusCode::kNotFound : StatusCode::kUnavailable,
        "cannot create " + tmp + ": " + std::strerror(err) + (err == ENOENT ? " (does the directory exist?)" : ""));
    return s;
  }
  return std::unique_ptr<AtomicFile>(new AtomicFile(path, tmp, fd));
}

AtomicFile::~AtomicFile() {
  if (!committed_) Abandon();
}

void AtomicFile::Abandon() {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    ::unlink(tmp_.c_str());
  }
}

Status AtomicFile::Write(const void* data, size_t n) {
  ZT_CHECK(fd_ >= 0 && !committed_) << "AtomicFile::Write after Commit or failure";
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    ssize_t w = ::write(fd_, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      int err = w < 0 ? errno : EIO;
      Abandon();
      return Unavailable("writing " + tmp_ + " failed: " + std::strerror(err) + "; " + path_ + " was not changed");
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return OkStatus();
}

Status AtomicFile::Commit() {
  ZT_CHECK(fd_ >= 0 && !committed_) << "AtomicFile::Commit twice or after a failed Write";
  if (::fsync(fd_) != 0) {
    int err = errno;
    Abandon();
    return Unavailable("fsync of " + tmp_ + " failed: " + std::strerror(err) + "; " + path_ + " was not changed");
  }
  if (::close(fd_) != 0) {
    int err = errno;
    fd_ = -1;
    ::unlink(tmp_.c_str());
    return Unavailable("closing " + tmp_ + " failed: " + std::strerror(err) + "; " + path_ + " was not changed");
  }
  fd_ = -1;
  if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp_.c_str());
    return Unavailable("cannot rename " + tmp_ + " to " + path_ + ": " + std::strerror(err));
  }
  committed_ = true;
  // Make the rename itself durable. Failure here leaves a complete file in place, so it is not an
  // error for the caller.
  int dfd = ::open(DirectoryOf(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return OkStatus();
}

Status WriteFileAtomically(const std::string& path, const std::string& bytes) {
  ZT_ASSIGN_OR_RETURN(auto f, AtomicFile::Create(path));
  ZT_RETURN_IF_ERROR(f->Write(bytes.data(), bytes.size()));
  return f->Commit();
}

}  // namespace zt
