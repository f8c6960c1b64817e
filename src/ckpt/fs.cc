// PosixFs: the FileSystem interface over open/pwrite/fsync/rename/unlink/readdir.
#include "ckpt/fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zt::ckpt {
namespace {

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string msg = what + " " + path + " failed: " + std::strerror(err);
  switch (err) {
    case ENOENT:
      return NotFound(msg);
    case EACCES:
    case EPERM:
    case EROFS:
      return PermissionDenied(msg + " (check the directory's permissions)");
    case ENOSPC:
    case EDQUOT:
      return Unavailable(msg + " (free space on the checkpoint file system, or lower keep_last)");
    case EINVAL:
      return InvalidArgument(msg);
    default:
      return Unavailable(msg);
  }
}

class PosixWritableFile final : public WritableFile {
 public:
  PosixWritableFile(std::string path, int fd, bool direct) : path_(std::move(path)), fd_(fd), direct_(direct) {}
  ~PosixWritableFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status PWrite(uint64_t offset, const void* data, size_t n) override {
    if (fd_ < 0) return FailedPrecondition("write to closed file " + path_);
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      ssize_t w = ::pwrite(fd_, p, n, static_cast<off_t>(offset));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return ErrnoStatus("writing", path_, errno);
      if (w == 0) return ErrnoStatus("writing", path_, EIO);
      p += w;
      n -= static_cast<size_t>(w);
      offset += static_cast<uint64_t>(w);
    }
    return OkStatus();
  }

  Status Sync() override {
    if (fd_ < 0) return FailedPrecondition("fsync of closed file " + path_);
    if (::fsync(fd_) != 0) return ErrnoStatus("fsync of", path_, errno);
    return OkStatus();
  }

  Status Close() override {
    if (fd_ < 0) return FailedPrecondition("closing " + path_ + " twice");
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return ErrnoStatus("closing", path_, errno);
    return OkStatus();
  }

  const std::string& path() const override { return path_; }
  bool direct() const override { return direct_; }

 private:
  std::string path_;
  int fd_;
  bool direct_;
};

class PosixReadableFile final : public ReadableFile {
 public:
  PosixReadableFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~PosixReadableFile() override { ::close(fd_); }

  Status PRead(uint64_t offset, void* data, size_t n) override {
    char* p = static_cast<char*>(data);
    uint64_t start = offset;
    while (n > 0) {
      ssize_t r = ::pread(fd_, p, n, static_cast<off_t>(offset));
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return ErrnoStatus("reading", path_, errno);
      if (r == 0)
        return DataLoss(path_ + " ends at byte " + std::to_string(offset) + " but " + std::to_string(n) +
                        " more bytes were expected (reading from byte " + std::to_string(start) +
                        "): the file is truncated");
      p += r;
      n -= static_cast<size_t>(r);
      offset += static_cast<uint64_t>(r);
    }
    return OkStatus();
  }

  StatusOr<uint64_t> Size() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return ErrnoStatus("stat of", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

  const std::string& path() const override { return path_; }

 private:
  std::string path_;
  int fd_;
};

}  // namespace

std::string JoinPath(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

std::string BaseName(const std::string& path) {
  size_t end = path.size();
  while (end > 1 && path[end - 1] == '/') --end;
  size_t slash = path.find_last_of('/', end - 1);
  if (slash == std::string::npos) return path.substr(0, end);
  return path.substr(slash + 1, end - slash - 1);
}

StatusOr<std::string> FileSystem::ReadFile(const std::string& path, uint64_t max_bytes) {
  ZT_ASSIGN_OR_RETURN(auto f, OpenRead(path));
  ZT_ASSIGN_OR_RETURN(uint64_t size, f->Size());
  if (size > max_bytes)
    return DataLoss(path + " is " + std::to_string(size) + " bytes, more than the " + std::to_string(max_bytes) +
                    " expected of it; is it the right file?");
  std::string bytes(size, '\0');
  ZT_RETURN_IF_ERROR(f->PRead(0, bytes.data(), bytes.size()));
  return bytes;
}

Status FileSystem::WriteAndSync(const std::string& path, const std::string& bytes) {
  ZT_ASSIGN_OR_RETURN(auto f, Create(path));
  ZT_RETURN_IF_ERROR(f->PWrite(0, bytes.data(), bytes.size()));
  ZT_RETURN_IF_ERROR(f->Sync());
  return f->Close();
}

StatusOr<std::unique_ptr<WritableFile>> PosixFs::Create(const std::string& path, const CreateOptions& o) {
  int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
  if (o.direct) flags |= O_DIRECT;
  int fd = ::open(path.c_str(), flags, 0644);
  if (fd < 0) {
    int err = errno;
    if (err == EINVAL && o.direct)
      return InvalidArgument("creating " + path +
                             " with O_DIRECT failed: the file system does not support direct I/O; turn "
                             "direct I/O off for this directory");
    return ErrnoStatus("creating", path, err);
  }
  return std::unique_ptr<WritableFile>(new PosixWritableFile(path, fd, o.direct));
}

StatusOr<std::unique_ptr<ReadableFile>> PosixFs::OpenRead(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening", path, errno);
  return std::unique_ptr<ReadableFile>(new PosixReadableFile(path, fd));
}

Status PosixFs::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("renaming " + from + " to", to, errno);
  return OkStatus();
}

Status PosixFs::SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("opening directory", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  // Some file systems do not support fsync on directories; their renames are durable anyway.
  if (rc != 0 && err != EINVAL && err != ENOTSUP) return ErrnoStatus("fsync of directory", dir, err);
  return OkStatus();
}

Status PosixFs::Unlink(const std::string& path) {
  if (::unlink(path.c_str()) != 0) return ErrnoStatus("removing", path, errno);
  return OkStatus();
}

Status PosixFs::RemoveDir(const std::string& dir) {
  if (::rmdir(dir.c_str()) != 0) return ErrnoStatus("removing directory", dir, errno);
  return OkStatus();
}

Status PosixFs::MakeDir(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0755) == 0) return OkStatus();
  int err = errno;
  if (err == EEXIST) {
    struct stat st;
    if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return OkStatus();
    return FailedPrecondition("cannot create directory " + dir + ": a file of that name exists; move it away");
  }
  return ErrnoStatus("creating directory", dir, err);
}

StatusOr<std::vector<DirEntry>> PosixFs::List(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return ErrnoStatus("listing", dir, errno);
  std::vector<DirEntry> out;
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    bool is_dir = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      is_dir = ::stat(JoinPath(dir, name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    out.push_back({name, is_dir});
    errno = 0;
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoStatus("listing", dir, err);
  return out;
}

StatusOr<uint64_t> PosixFs::FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("stat of", path, errno);
  return static_cast<uint64_t>(st.st_size);
}

StatusOr<bool> PosixFs::Exists(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return true;
  if (errno == ENOENT || errno == ENOTDIR) return false;
  return ErrnoStatus("stat of", path, errno);
}

FileSystem* DefaultFs() {
  static PosixFs fs;
  return &fs;
}

}  // namespace zt::ckpt
