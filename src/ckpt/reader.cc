// LATEST, listing, section reads and verification.
#include "ckpt/reader.h"

#include <algorithm>

#include "ckpt/checksum.h"
#include "ckpt/format.h"

namespace zt::ckpt {
namespace {

FileSystem& FsOr(FileSystem* fs) { return fs != nullptr ? *fs : *DefaultFs(); }

const char* kLsHint = "; run `ztrain ckpt ls` on the directory to find another committed checkpoint";

// Reads and checks a shard's header against the manifest's entry. `label` names the file.
Status CheckShardHeader(ReadableFile& f, const Manifest& m, const ShardInfo& s, const std::string& label) {
  ZT_ASSIGN_OR_RETURN(uint64_t size, f.Size());
  if (size != s.bytes)
    return DataLoss(label + " is " + std::to_string(size) + " bytes but the manifest says " + std::to_string(s.bytes) +
                    (size < s.bytes ? ": the file is truncated" : ": the file was changed after the checkpoint"));
  char buf[kShardHeaderBytes];
  ZT_RETURN_IF_ERROR(f.PRead(0, buf, sizeof(buf)));
  ZT_ASSIGN_OR_RETURN(ShardHeader h, DecodeShardHeader(buf, sizeof(buf), label));
  if (h.step != m.step || h.rank != s.rank || h.world_size != m.world_size)
    return DataLoss(label + " holds step " + std::to_string(h.step) + ", rank " + std::to_string(h.rank) + " of " +
                    std::to_string(h.world_size) + "; the manifest expects step " + std::to_string(m.step) +
                    ", rank " + std::to_string(s.rank) + " of " + std::to_string(m.world_size) +
                    ": the file belongs to another checkpoint");
  if (h.num_sections != s.sections.size())
    return DataLoss(label + " has " + std::to_string(h.num_sections) + " sections; the manifest lists " +
                    std::to_string(s.sections.size()));
  if (ShardFileBytes(h.data_bytes) != s.bytes)
    return DataLoss(label + ": its header's data size " + std::to_string(h.data_bytes) +
                    " does not fit its size of " + std::to_string(s.bytes) + " bytes");
  return OkStatus();
}

struct Located {
  std::string name;
  std::string path;
  bool latest = false;
};

StatusOr<Located> Locate(FileSystem& fs, const std::string& dir, int64_t step) {
  Located l;
  if (step == kLatestStep) {
    ZT_ASSIGN_OR_RETURN(l.name, ReadLatestName(fs, dir));
    l.latest = true;
  } else {
    if (step < 0) return InvalidArgument("checkpoint step " + std::to_string(step) + " is negative");
    l.name = StepDirName(step);
  }
  l.path = JoinPath(dir, l.name);
  ZT_ASSIGN_OR_RETURN(bool exists, fs.Exists(l.path));
  if (!exists) {
    if (l.latest)
      return DataLoss(JoinPath(dir, kLatestName) + " names " + l.name + " but " + l.path + " does not exist" + kLsHint);
    return NotFound("no checkpoint of step " + std::to_string(step) + " in " + dir + " (" + l.path +
                    " does not exist)" + kLsHint);
  }
  return l;
}

StatusOr<Manifest> LoadManifest(FileSystem& fs, const Located& l) {
  const std::string mpath = JoinPath(l.path, kManifestName);
  ZT_ASSIGN_OR_RETURN(bool exists, fs.Exists(mpath));
  if (!exists)
    return DataLoss(mpath + " is missing: " +
                    (l.latest ? std::string("the checkpoint LATEST names is damaged") : "it was never committed") +
                    kLsHint);
  ZT_ASSIGN_OR_RETURN(std::string text, fs.ReadFile(mpath));
  ZT_ASSIGN_OR_RETURN(Manifest m, ParseManifestText(text, mpath));
  int64_t dir_step = *ParseStepDirName(l.name);
  if (m.step != dir_step)
    return DataLoss(mpath + " is the manifest of step " + std::to_string(m.step) + ", not of " + l.name + kLsHint);
  return m;
}

}  // namespace

StatusOr<std::string> ReadLatestName(FileSystem& fs, const std::string& dir) {
  ZT_ASSIGN_OR_RETURN(bool dir_exists, fs.Exists(dir));
  if (!dir_exists) return NotFound("checkpoint directory " + dir + " does not exist");
  const std::string latest = JoinPath(dir, kLatestName);
  ZT_ASSIGN_OR_RETURN(bool exists, fs.Exists(latest));
  if (!exists) return NotFound("no committed checkpoint in " + dir + ": " + latest + " is missing");
  ZT_ASSIGN_OR_RETURN(std::string text, fs.ReadFile(latest, 4096));
  auto name = ParseLatestText(text);
  if (!name) {
    std::string shown;
    for (char c : text.substr(0, 40)) shown += (c >= 32 && c < 127) ? c : '?';
    return DataLoss(latest + " holds '" + shown + "', not a checkpoint name (step-<12 digits> and a newline)" +
                    kLsHint);
  }
  return *name;
}

const char* CheckpointStateName(CheckpointState s) {
  switch (s) {
    case CheckpointState::kLatest: return "LATEST";
    case CheckpointState::kCommitted: return "committed";
    case CheckpointState::kUncommitted: return "uncommitted";
    case CheckpointState::kIncomplete: return "incomplete";
    case CheckpointState::kInvalid: return "invalid";
  }
  return "?";
}

StatusOr<CheckpointList> ListCheckpoints(const std::string& dir, FileSystem* fs_in) {
  FileSystem& fs = FsOr(fs_in);
  CheckpointList list;
  auto latest = ReadLatestName(fs, dir);
  if (latest.ok()) {
    list.latest = *latest;
  } else if (latest.status().code() == StatusCode::kNotFound) {
    ZT_ASSIGN_OR_RETURN(bool dir_exists, fs.Exists(dir));
    if (!dir_exists) return latest.status();
  } else {
    list.latest_problem = latest.status().message();
  }
  int64_t latest_step = list.latest.empty() ? -1 : *ParseStepDirName(list.latest);
  ZT_ASSIGN_OR_RETURN(auto entries, fs.List(dir));
  for (const auto& e : entries) {
    if (!e.is_dir) continue;
    auto step = ParseStepDirName(e.name);
    if (!step) continue;
    CheckpointEntry c;
    c.name = e.name;
    c.step = *step;
    Located l{e.name, JoinPath(dir, e.name), false};
    ZT_ASSIGN_OR_RETURN(bool has_manifest, fs.Exists(JoinPath(l.path, kManifestName)));
    if (!has_manifest) {
      c.state = CheckpointState::kIncomplete;
      c.problem = "no manifest";
    } else {
      auto m = LoadManifest(fs, l);
      if (!m.ok()) {
        c.state = CheckpointState::kInvalid;
        c.problem = m.status().message();
      } else {
        for (const auto& s : m->shards) c.bytes += s.bytes;
        c.manifest = std::move(m).value();
        if (e.name == list.latest) c.state = CheckpointState::kLatest;
        else if (latest_step >= 0 && c.step < latest_step) c.state = CheckpointState::kCommitted;
        else c.state = CheckpointState::kUncommitted;
      }
    }
    list.entries.push_back(std::move(c));
  }
  std::sort(list.entries.begin(), list.entries.end(),
            [](const CheckpointEntry& a, const CheckpointEntry& b) { return a.step < b.step; });
  return list;
}

StatusOr<std::unique_ptr<CheckpointReader>> CheckpointReader::Open(const std::string& dir, int64_t step,
                                                                   FileSystem* fs_in) {
  FileSystem& fs = FsOr(fs_in);
  ZT_ASSIGN_OR_RETURN(Located l, Locate(fs, dir, step));
  ZT_ASSIGN_OR_RETURN(Manifest m, LoadManifest(fs, l));
  std::unique_ptr<CheckpointReader> r(new CheckpointReader());
  r->fs_ = &fs;
  r->path_ = l.path;
  r->name_ = l.name;
  r->manifest_ = std::move(m);
  r->files_.resize(r->manifest_.shards.size());
  return r;
}

StatusOr<Manifest> OpenLatest(const std::string& dir, FileSystem* fs) {
  ZT_ASSIGN_OR_RETURN(auto r, CheckpointReader::Open(dir, kLatestStep, fs));
  return r->manifest();
}

const SnapshotSection* CheckpointReader::FindSection(int rank, const std::string& section) const {
  if (rank < 0 || rank >= static_cast<int>(manifest_.shards.size())) return nullptr;
  for (const auto& s : manifest_.shards[rank].sections)
    if (s.name == section) return &s;
  return nullptr;
}

StatusOr<ReadableFile*> CheckpointReader::Shard(int rank) {
  std::lock_guard<std::mutex> l(mu_);
  if (files_[rank]) return files_[rank].get();
  const ShardInfo& s = manifest_.shards[rank];
  const std::string label = JoinPath(path_, s.file);
  ZT_ASSIGN_OR_RETURN(auto f, fs_->OpenRead(label));
  ZT_RETURN_IF_ERROR(CheckShardHeader(*f, manifest_, s, label));
  files_[rank] = std::move(f);
  return files_[rank].get();
}

Status CheckpointReader::ReadBytes(int rank, const std::string& section, uint64_t offset, size_t n, void* out) {
  if (rank < 0 || rank >= manifest_.world_size)
    return InvalidArgument("rank " + std::to_string(rank) + " is not in checkpoint " + path_ + " of " +
                           std::to_string(manifest_.world_size) + " ranks");
  const SnapshotSection* s = FindSection(rank, section);
  if (s == nullptr)
    return NotFound("rank " + std::to_string(rank) + "'s shard of " + path_ + " has no section '" + section + "'");
  if (offset > s->nbytes() || n > s->nbytes() - offset)
    return OutOfRange("bytes [" + std::to_string(offset) + ", " + std::to_string(offset + n) + ") of section '" +
                      section + "' (" + std::to_string(s->nbytes()) + " bytes) of rank " + std::to_string(rank));
  ZT_ASSIGN_OR_RETURN(ReadableFile * f, Shard(rank));
  return f->PRead(s->offset + offset, out, n);
}

Status CheckpointReader::ReadElements(int rank, const std::string& section, DType dtype, int64_t first, int64_t count,
                                      void* out) {
  const SnapshotSection* s = FindSection(rank, section);
  if (s != nullptr && s->dtype != dtype)
    return InvalidArgument("section '" + section + "' of rank " + std::to_string(rank) + " in " + path_ + " holds " +
                           DTypeName(s->dtype) + ", not " + DTypeName(dtype));
  if (first < 0 || count < 0) return OutOfRange("negative element range of section '" + section + "'");
  size_t es = DTypeSize(dtype);
  return ReadBytes(rank, section, static_cast<uint64_t>(first) * es, static_cast<size_t>(count) * es, out);
}

StatusOr<VerifyReport> Verify(const std::string& dir, const std::string& name, FileSystem* fs_in) {
  FileSystem& fs = FsOr(fs_in);
  int64_t step = kLatestStep;
  if (!name.empty()) {
    auto parsed = ParseStepDirName(name);
    if (!parsed) return InvalidArgument("'" + name + "' is not a checkpoint name (step-<12 digits>)");
    step = *parsed;
  }
  ZT_ASSIGN_OR_RETURN(Located l, Locate(fs, dir, step));
  ZT_ASSIGN_OR_RETURN(Manifest m, LoadManifest(fs, l));
  VerifyReport report;
  report.path = l.path;
  report.step = m.step;
  std::vector<std::string> problems;
  for (const ShardInfo& s : m.shards) {
    const std::string label = JoinPath(l.path, s.file);
    auto f = fs.OpenRead(label);
    if (!f.ok()) {
      problems.push_back(label + ": " + f.status().message());
      continue;
    }
    Status header = CheckShardHeader(**f, m, s, label);
    if (!header.ok()) {  // the checksum could only disagree as well
      problems.push_back(header.message());
      continue;
    }
    auto digest = ChecksumFile(fs, label);
    if (!digest.ok()) {
      problems.push_back(label + ": " + digest.status().message());
      continue;
    }
    std::string got = FormatChecksum(digest->digest);
    if (got != s.checksum)
      problems.push_back(label + ": checksum " + got + " does not match the manifest's " + s.checksum +
                         ": the file is corrupt");
    report.shards++;
    report.bytes += digest->bytes;
  }
  if (!problems.empty()) {
    std::string msg = "checkpoint " + l.path + " failed verification (" + std::to_string(problems.size()) +
                      (problems.size() == 1 ? " problem" : " problems") + "):";
    for (const auto& p : problems) msg += "\n  " + p;
    return DataLoss(msg);
  }
  return report;
}

}  // namespace zt::ckpt
