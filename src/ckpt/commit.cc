// Store reports, the manifest + LATEST commit, and garbage collection.
#include "ckpt/commit.h"

#include <algorithm>

#include "ckpt/format.h"
#include "core/logging.h"

namespace zt::ckpt {
namespace {

using nlohmann::json;

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Removes a step directory: the manifest first (so a crash half-way leaves a directory without a
// manifest, which is garbage by definition), then everything else, then the directory.
Status RemoveStepDir(FileSystem& fs, const std::string& path) {
  std::string manifest = JoinPath(path, kManifestName);
  ZT_ASSIGN_OR_RETURN(bool has_manifest, fs.Exists(manifest));
  if (has_manifest) {
    ZT_RETURN_IF_ERROR(fs.Unlink(manifest));
    ZT_RETURN_IF_ERROR(fs.SyncDir(path));
  }
  ZT_ASSIGN_OR_RETURN(auto entries, fs.List(path));
  for (const auto& e : entries) {
    std::string p = JoinPath(path, e.name);
    if (e.is_dir) {
      ZT_RETURN_IF_ERROR(RemoveStepDir(fs, p));
    } else {
      ZT_RETURN_IF_ERROR(fs.Unlink(p));
    }
  }
  return fs.RemoveDir(path);
}

}  // namespace

std::string ReportKey(int64_t step, int rank) { return "ckpt/" + std::to_string(step) + "/rank/" + std::to_string(rank); }
std::string CommitKey(int64_t step) { return "ckpt/" + std::to_string(step) + "/commit"; }

Status ReportShard(comm::Store& store, int64_t step, int rank, const StatusOr<ShardInfo>& shard) {
  json j;
  if (shard.ok()) {
    j["ok"] = true;
    j["shard"] = ShardToJson(*shard);
  } else {
    j["ok"] = false;
    j["error"] = shard.status().ToString();
  }
  return store.Set(ReportKey(step, rank), j.dump());
}

StatusOr<std::vector<ShardInfo>> CollectReports(comm::Store& store, int64_t step, int world_size) {
  std::vector<std::string> keys;
  for (int r = 0; r < world_size; ++r) keys.push_back(ReportKey(step, r));
  Status waited = store.Wait(keys);
  if (!waited.ok())
    return waited.WithContext("checkpoint of step " + std::to_string(step) +
                              ": not every rank reported its shard (did a rank die or fall behind?)");
  std::vector<ShardInfo> shards;
  Status first_error;
  for (int r = 0; r < world_size; ++r) {
    auto value = store.Get(keys[r]);
    (void)store.Delete(keys[r]);
    if (!value.ok()) {
      if (first_error.ok()) first_error = value.status();
      continue;
    }
    std::string label = "rank " + std::to_string(r) + "'s report for step " + std::to_string(step);
    json j = json::parse(*value, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("ok") || !j["ok"].is_boolean()) {
      if (first_error.ok()) first_error = DataLoss(label + " is not a checkpoint report: " + *value);
      continue;
    }
    if (!j["ok"].get<bool>()) {
      std::string err = j.contains("error") && j["error"].is_string() ? j["error"].get<std::string>() : "unknown error";
      if (first_error.ok())
        first_error = Unavailable("rank " + std::to_string(r) + " could not write its shard of step " +
                                  std::to_string(step) + ": " + err);
      continue;
    }
    auto shard = ParseShardInfo(j.contains("shard") ? j["shard"] : json(), r, label);
    if (!shard.ok()) {
      if (first_error.ok()) first_error = shard.status();
      continue;
    }
    shards.push_back(std::move(shard).value());
  }
  if (!first_error.ok()) return first_error;
  return shards;
}

Status MakeDirs(FileSystem& fs, const std::string& dir) {
  if (dir.empty()) return InvalidArgument("checkpoint directory is empty; give a path");
  std::string prefix;
  size_t pos = 0;
  while (pos <= dir.size()) {
    size_t slash = dir.find('/', pos);
    if (slash == std::string::npos) slash = dir.size();
    prefix = dir.substr(0, slash);
    pos = slash + 1;
    if (prefix.empty() || prefix == "." || prefix == "..") continue;
    ZT_ASSIGN_OR_RETURN(bool exists, fs.Exists(prefix));
    if (!exists) ZT_RETURN_IF_ERROR(fs.MakeDir(prefix));
  }
  return OkStatus();
}

Status CommitCheckpoint(FileSystem& fs, const std::string& dir, const Manifest& m) {
  const std::string name = StepDirName(m.step);
  const std::string step_dir = JoinPath(dir, name);
  const std::string text = ManifestText(m);
  auto check = ParseManifestText(text, "manifest of step " + std::to_string(m.step));
  if (!check.ok())
    return InvalidArgument("refusing to commit a manifest that could not be read back: " + check.status().message());

  const std::string manifest = JoinPath(step_dir, kManifestName);
  const std::string manifest_tmp = manifest + kTmpSuffix;
  Status s = fs.WriteAndSync(manifest_tmp, text);
  if (!s.ok()) {
    (void)fs.Unlink(manifest_tmp);
    return s;
  }
  s = fs.Rename(manifest_tmp, manifest);
  if (!s.ok()) {
    (void)fs.Unlink(manifest_tmp);
    return s;
  }
  // From here until LATEST moves, a failure must take the manifest back out.
  auto undo = [&](const Status& err) -> Status {
    if (fs.Unlink(manifest).ok()) (void)fs.SyncDir(step_dir);
    return err;
  };
  s = fs.SyncDir(step_dir);
  if (s.ok()) s = fs.SyncDir(dir);  // the step directory's own entry
  if (!s.ok()) return undo(s);

  const std::string latest = JoinPath(dir, kLatestName);
  const std::string latest_tmp = latest + kTmpSuffix;
  s = fs.WriteAndSync(latest_tmp, LatestText(name));
  if (!s.ok()) {
    (void)fs.Unlink(latest_tmp);
    return undo(s);
  }
  s = fs.Rename(latest_tmp, latest);
  if (!s.ok()) {
    (void)fs.Unlink(latest_tmp);
    return undo(s);
  }
  s = fs.SyncDir(dir);  // THE COMMIT POINT
  if (!s.ok())
    return s.WithContext("LATEST now names " + name + " (complete and valid) but the rename may not be durable");
  return OkStatus();
}

StatusOr<int64_t> ReadLatestStep(FileSystem& fs, const std::string& dir) {
  const std::string latest = JoinPath(dir, kLatestName);
  ZT_ASSIGN_OR_RETURN(bool exists, fs.Exists(latest));
  if (!exists) return int64_t{-1};
  ZT_ASSIGN_OR_RETURN(std::string text, fs.ReadFile(latest, 4096));
  auto name = ParseLatestText(text);
  if (!name) {
    std::string shown = text.size() > 40 ? text.substr(0, 40) + "..." : text;
    return DataLoss(latest + " holds '" + shown + "', not a checkpoint name (step-<12 digits> and a newline)");
  }
  return *ParseStepDirName(*name);
}

StatusOr<GcResult> CollectGarbage(FileSystem& fs, const std::string& dir, int keep_last, int64_t newest_committed,
                                  bool at_open) {
  GcResult result;
  ZT_ASSIGN_OR_RETURN(auto entries, fs.List(dir));
  std::vector<std::pair<int64_t, std::string>> committed;
  for (const auto& e : entries) {
    if (!e.is_dir) {
      if (e.name == std::string(kLatestName) + kTmpSuffix) {
        ZT_RETURN_IF_ERROR(fs.Unlink(JoinPath(dir, e.name)));
        result.removed.push_back(e.name);
      }
      continue;  // LATEST, and files that are not ours
    }
    auto step = ParseStepDirName(e.name);
    if (!step) continue;
    const std::string path = JoinPath(dir, e.name);
    if (*step > newest_committed && !at_open) continue;  // may be in flight
    ZT_ASSIGN_OR_RETURN(bool has_manifest, fs.Exists(JoinPath(path, kManifestName)));
    if (*step <= newest_committed && has_manifest) {
      committed.push_back({*step, e.name});
      continue;
    }
    ZT_RETURN_IF_ERROR(RemoveStepDir(fs, path));
    result.removed.push_back(e.name);
  }
  // Oldest first, so that a crash in the middle leaves the newest checkpoints.
  std::sort(committed.begin(), committed.end());
  const size_t n = committed.size();
  for (size_t i = 0; i < n; ++i) {
    const std::string path = JoinPath(dir, committed[i].second);
    bool keep = keep_last <= 0 || n - i <= static_cast<size_t>(keep_last) || committed[i].first == newest_committed;
    if (!keep) {
      ZT_RETURN_IF_ERROR(RemoveStepDir(fs, path));
      result.removed.push_back(committed[i].second);
      continue;
    }
    ZT_ASSIGN_OR_RETURN(auto files, fs.List(path));
    for (const auto& f : files) {
      if (f.is_dir || !EndsWith(f.name, kTmpSuffix)) continue;
      ZT_RETURN_IF_ERROR(fs.Unlink(JoinPath(path, f.name)));
      result.removed.push_back(committed[i].second + "/" + f.name);
    }
  }
  if (!result.removed.empty()) ZT_RETURN_IF_ERROR(fs.SyncDir(dir));
  return result;
}

}  // namespace zt::ckpt
