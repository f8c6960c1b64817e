// FaultInjectingFs and SlowFs. The crash simulation uses POSIX calls (truncate, link, rename)
// directly on the wrapped paths, so the wrapped file system must be a real directory tree.
#include "ckpt/fault_fs.h"

#include <unistd.h>

#include <filesystem>
#include <thread>

namespace zt::ckpt {
namespace {

std::string ParentOf(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  size_t slash = p.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return p.substr(0, slash);
}

std::string Normalized(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  return dir;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

// A WritableFile whose writes and fsync are kill points.
class FaultWritableFile final : public WritableFile {
 public:
  FaultWritableFile(FaultInjectingFs* fs, std::unique_ptr<WritableFile> base, std::string kind)
      : fs_(fs), base_(std::move(base)), kind_(std::move(kind)) {}

  Status PWrite(uint64_t offset, const void* data, size_t n) override {
    std::shared_lock<std::shared_mutex> lk(fs_->op_mu_);
    auto d = fs_->Reach(kind_ + ".write");
    if (d == FaultInjectingFs::Decision::kDead) return fs_->Dead();
    if (d == FaultInjectingFs::Decision::kCrashNow) {
      bool partial;
      {
        std::lock_guard<std::mutex> l(fs_->mu_);
        partial = fs_->partial_write_;
      }
      if (partial && n > 1) {
        size_t prefix = n / 2;
        if (prefix >= kDirectIoAlignment) prefix = prefix / kDirectIoAlignment * kDirectIoAlignment;
        if (base_->PWrite(offset, data, prefix).ok()) fs_->NoteWrite(base_->path());
      }
      lk.unlock();
      fs_->SimulateCrash();
      return fs_->Dead();
    }
    Status s = base_->PWrite(offset, data, n);
    if (s.ok()) fs_->NoteWrite(base_->path());
    return s;
  }

  Status Sync() override {
    std::shared_lock<std::shared_mutex> lk(fs_->op_mu_);
    auto d = fs_->Reach(kind_ + ".fsync");
    if (d == FaultInjectingFs::Decision::kDead) return fs_->Dead();
    if (d == FaultInjectingFs::Decision::kCrashNow) {
      lk.unlock();
      fs_->SimulateCrash();
      return fs_->Dead();
    }
    Status s = base_->Sync();
    if (s.ok()) fs_->NoteSync(base_->path());
    return s;
  }

  Status Close() override {
    if (fs_->crashed()) return fs_->Dead();
    return base_->Close();
  }
  const std::string& path() const override { return base_->path(); }
  bool direct() const override { return base_->direct(); }

 private:
  FaultInjectingFs* fs_;
  std::unique_ptr<WritableFile> base_;
  std::string kind_;
};

const std::vector<std::string>& FaultInjectingFs::KillPoints() {
  static const std::vector<std::string> kPoints = {
      "dir.create",      "shard.create",   "shard.write",     "shard.fsync",   "shard.rename",
      "dir.fsync",       "manifest.create", "manifest.write", "manifest.fsync", "manifest.rename",
      "latest.create",   "latest.write",   "latest.fsync",    "latest.rename", "gc.unlink",
      "gc.rmdir",
  };
  return kPoints;
}

std::string FaultInjectingFs::KindOf(const std::string& path) {
  std::string name = BaseName(path);
  if (EndsWith(name, ".tmp")) name.resize(name.size() - 4);
  if (EndsWith(name, ".shard")) return "shard";
  if (name == "manifest.json") return "manifest";
  if (name == "LATEST") return "latest";
  return "file";
}

void FaultInjectingFs::Arm(const std::string& point, int hit, bool partial_write) {
  std::lock_guard<std::mutex> l(mu_);
  armed_point_ = point;
  armed_hit_ = hit;
  partial_write_ = partial_write;
  hits_at_arm_ = hits_;
}

void FaultInjectingFs::Disarm() {
  std::lock_guard<std::mutex> l(mu_);
  armed_point_.clear();
  armed_hit_ = 0;
}

std::string FaultInjectingFs::crash_point() const {
  std::lock_guard<std::mutex> l(mu_);
  return crash_point_;
}

int FaultInjectingFs::hits(const std::string& point) const {
  std::lock_guard<std::mutex> l(mu_);
  auto it = hits_.find(point);
  return it == hits_.end() ? 0 : it->second;
}

std::map<std::string, int> FaultInjectingFs::all_hits() const {
  std::lock_guard<std::mutex> l(mu_);
  return hits_;
}

FaultInjectingFs::Decision FaultInjectingFs::Reach(const std::string& point) {
  std::lock_guard<std::mutex> l(mu_);
  if (crashed_.load()) return Decision::kDead;
  int n = ++hits_[point];
  if (!armed_point_.empty() && point == armed_point_ && n - hits_at_arm_[point] == armed_hit_) {
    crash_point_ = point + "#" + std::to_string(armed_hit_);
    crashed_.store(true);
    return Decision::kCrashNow;
  }
  return Decision::kProceed;
}

Status FaultInjectingFs::Dead() const {
  return Unavailable("injected crash at " + crash_point() + ": the file system is gone");
}

void FaultInjectingFs::NoteWrite(const std::string& path) {
  std::lock_guard<std::mutex> l(mu_);
  files_[path].dirty = true;
}

void FaultInjectingFs::NoteSync(const std::string& path) {
  auto size = base_->FileSize(path);
  std::lock_guard<std::mutex> l(mu_);
  Tracked& t = files_[path];
  t.dirty = false;
  if (size.ok()) t.synced_size = *size;
}

void FaultInjectingFs::SimulateCrash() {
  // Wait for operations already under way (they happened before the crash), then lose what a
  // power cut may lose.
  std::unique_lock<std::shared_mutex> lk(op_mu_);
  std::lock_guard<std::mutex> l(mu_);
  if (!o_.lose_unsynced) return;
  for (const auto& [path, t] : files_)
    if (t.dirty) (void)::truncate(path.c_str(), static_cast<off_t>(t.synced_size));
  for (auto it = pending_renames_.rbegin(); it != pending_renames_.rend(); ++it) {
    (void)::rename(it->to.c_str(), it->from.c_str());
    if (!it->backup.empty()) (void)::rename(it->backup.c_str(), it->to.c_str());
  }
  pending_renames_.clear();
  for (auto it = pending_mkdirs_.rbegin(); it != pending_mkdirs_.rend(); ++it) {
    std::error_code ec;
    std::filesystem::remove_all(*it, ec);
  }
  pending_mkdirs_.clear();
}

StatusOr<std::unique_ptr<WritableFile>> FaultInjectingFs::Create(const std::string& path, const CreateOptions& o) {
  std::shared_lock<std::shared_mutex> lk(op_mu_);
  std::string kind = KindOf(path);
  auto d = Reach(kind + ".create");
  if (d == Decision::kDead) return Dead();
  if (d == Decision::kCrashNow) {
    lk.unlock();
    SimulateCrash();
    return Dead();
  }
  ZT_ASSIGN_OR_RETURN(auto f, base_->Create(path, o));
  {
    std::lock_guard<std::mutex> l(mu_);
    files_[path] = Tracked{0, true};  // the truncation itself is not durable until an fsync
  }
  return std::unique_ptr<WritableFile>(new FaultWritableFile(this, std::move(f), kind));
}

StatusOr<std::unique_ptr<ReadableFile>> FaultInjectingFs::OpenRead(const std::string& path) {
  if (crashed()) return Dead();
  return base_->OpenRead(path);
}

Status FaultInjectingFs::Rename(const std::string& from, const std::string& to) {
  std::shared_lock<std::shared_mutex> lk(op_mu_);
  auto d = Reach(KindOf(from) + ".rename");
  if (d == Decision::kDead) return Dead();
  if (d == Decision::kCrashNow) {
    lk.unlock();
    SimulateCrash();
    return Dead();
  }
  std::string backup;
  if (o_.lose_unsynced && ::access(to.c_str(), F_OK) == 0) {
    std::lock_guard<std::mutex> l(mu_);
    backup = to + ".crashsim-" + std::to_string(++backups_);
    if (::link(to.c_str(), backup.c_str()) != 0) backup.clear();
  }
  Status s = base_->Rename(from, to);
  std::lock_guard<std::mutex> l(mu_);
  if (!s.ok()) {
    if (!backup.empty()) (void)::unlink(backup.c_str());
    return s;
  }
  auto it = files_.find(from);
  if (it != files_.end()) {
    files_[to] = it->second;
    files_.erase(from);
  } else {
    files_.erase(to);
  }
  if (o_.lose_unsynced) pending_renames_.push_back({from, to, backup});
  return OkStatus();
}

Status FaultInjectingFs::SyncDir(const std::string& dir) {
  std::shared_lock<std::shared_mutex> lk(op_mu_);
  auto d = Reach("dir.fsync");
  if (d == Decision::kDead) return Dead();
  if (d == Decision::kCrashNow) {
    lk.unlock();
    SimulateCrash();
    return Dead();
  }
  ZT_RETURN_IF_ERROR(base_->SyncDir(dir));
  std::string nd = Normalized(dir);
  std::lock_guard<std::mutex> l(mu_);
  std::vector<PendingRename> still;
  for (auto& r : pending_renames_) {
    if (ParentOf(r.to) == nd) {
      if (!r.backup.empty()) (void)::unlink(r.backup.c_str());
    } else {
      still.push_back(r);
    }
  }
  pending_renames_ = std::move(still);
  std::erase_if(pending_mkdirs_, [&](const std::string& m) { return ParentOf(m) == nd; });
  return OkStatus();
}

Status FaultInjectingFs::Unlink(const std::string& path) {
  std::shared_lock<std::shared_mutex> lk(op_mu_);
  auto d = Reach("gc.unlink");
  if (d == Decision::kDead) return Dead();
  if (d == Decision::kCrashNow) {
    lk.unlock();
    SimulateCrash();
    return Dead();
  }
  ZT_RETURN_IF_ERROR(base_->Unlink(path));
  std::lock_guard<std::mutex> l(mu_);
  files_.erase(path);
  return OkStatus();
}

Status FaultInjectingFs::RemoveDir(const std::string& dir) {
  std::shared_lock<std::shared_mutex> lk(op_mu_);
  auto d = Reach("gc.rmdir");
  if (d == Decision::kDead) return Dead();
  if (d == Decision::kCrashNow) {
    lk.unlock();
    SimulateCrash();
    return Dead();
  }
  return base_->RemoveDir(dir);
}

Status FaultInjectingFs::MakeDir(const std::string& dir) {
  std::shared_lock<std::shared_mutex> lk(op_mu_);
  auto d = Reach("dir.create");
  if (d == Decision::kDead) return Dead();
  if (d == Decision::kCrashNow) {
    lk.unlock();
    SimulateCrash();
    return Dead();
  }
  bool existed = ::access(dir.c_str(), F_OK) == 0;
  ZT_RETURN_IF_ERROR(base_->MakeDir(dir));
  if (!existed && o_.lose_unsynced) {
    std::lock_guard<std::mutex> l(mu_);
    pending_mkdirs_.push_back(Normalized(dir));
  }
  return OkStatus();
}

StatusOr<std::vector<DirEntry>> FaultInjectingFs::List(const std::string& dir) {
  if (crashed()) return Dead();
  return base_->List(dir);
}

StatusOr<uint64_t> FaultInjectingFs::FileSize(const std::string& path) {
  if (crashed()) return Dead();
  return base_->FileSize(path);
}

StatusOr<bool> FaultInjectingFs::Exists(const std::string& path) {
  if (crashed()) return Dead();
  return base_->Exists(path);
}

// --- SlowFs ---

namespace {

class SlowWritableFile final : public WritableFile {
 public:
  SlowWritableFile(std::unique_ptr<WritableFile> base, SlowFs::Delays d) : base_(std::move(base)), d_(d) {}
  Status PWrite(uint64_t offset, const void* data, size_t n) override {
    std::this_thread::sleep_for(d_.per_write);
    return base_->PWrite(offset, data, n);
  }
  Status Sync() override {
    std::this_thread::sleep_for(d_.per_sync);
    return base_->Sync();
  }
  Status Close() override { return base_->Close(); }
  const std::string& path() const override { return base_->path(); }
  bool direct() const override { return base_->direct(); }

 private:
  std::unique_ptr<WritableFile> base_;
  SlowFs::Delays d_;
};

}  // namespace

StatusOr<std::unique_ptr<WritableFile>> SlowFs::Create(const std::string& path, const CreateOptions& o) {
  ZT_ASSIGN_OR_RETURN(auto f, base_->Create(path, o));
  return std::unique_ptr<WritableFile>(new SlowWritableFile(std::move(f), d_));
}

}  // namespace zt::ckpt
