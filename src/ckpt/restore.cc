// ChooseRestore: the store protocol (restore.h) and its one decision, taken on rank 0.
// Keys: "zt/restore/host/<rank>" = "none" or the comma-separated steps the rank holds verified;
// "zt/restore/choice" = "host <step>", "disk <step> <path>", "none 0" or "error <message>".
#include "ckpt/restore.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "core/logging.h"

namespace zt::ckpt {
namespace {

constexpr char kHostKey[] = "zt/restore/host/";
constexpr char kChoiceKey[] = "zt/restore/choice";

std::string EncodeSteps(const std::vector<int64_t>& steps) {
  if (steps.empty()) return "none";
  std::string s;
  for (int64_t x : steps) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

std::optional<int64_t> ParseStep(std::string_view s) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

StatusOr<std::set<int64_t>> DecodeSteps(const std::string& value, int rank) {
  std::set<int64_t> out;
  if (value == "none") return out;
  size_t start = 0;
  while (start <= value.size()) {
    size_t comma = value.find(',', start);
    std::string_view part(value.data() + start, (comma == std::string::npos ? value.size() : comma) - start);
    auto step = ParseStep(part);
    if (!step) {
      return DataLoss("the store's " + std::string(kHostKey) + std::to_string(rank) + " = '" + value +
                      "' is not a list of steps (is another job using this store?)");
    }
    out.insert(*step);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

// Rank 0: the decision, as restore.h describes it.
StatusOr<RestoreChoice> Decide(const std::vector<std::set<int64_t>>& held, DiskCatalog* disk) {
  RestoreChoice c;
  std::optional<int64_t> host;  // newest step every rank holds
  for (auto it = held[0].rbegin(); it != held[0].rend(); ++it) {
    if (std::all_of(held.begin(), held.end(), [&](const std::set<int64_t>& h) { return h.count(*it) > 0; })) {
      host = *it;
      break;
    }
  }
  std::vector<DiskCheckpointRef> on_disk;
  if (disk != nullptr) {
    auto listed = disk->ListCommitted();
    if (!listed.ok()) {
      if (!host) return listed.status().WithContext("cannot list the disk checkpoints");
      c.warnings.push_back("cannot list the disk checkpoints (" + listed.status().message() +
                           "); resuming from host memory");
    } else {
      on_disk = std::move(*listed);
    }
  }
  for (const DiskCheckpointRef& d : on_disk) {
    if (host && d.step <= *host) break;  // host memory is at least as new as anything left
    Status v = disk->Verify(d);
    if (v.ok()) {
      c.source = RestoreSource::kDisk;
      c.step = d.step;
      c.disk_path = d.path;
      return c;
    }
    c.warnings.push_back("skipping disk checkpoint " + d.path + " (step " + std::to_string(d.step) +
                         "): " + v.message());
  }
  if (host) {
    c.source = RestoreSource::kHostMemory;
    c.step = *host;
  }
  return c;
}

std::string EncodeChoice(const StatusOr<RestoreChoice>& c) {
  if (!c.ok()) return "error " + c.status().message();
  switch (c->source) {
    case RestoreSource::kHostMemory:
      return "host " + std::to_string(c->step);
    case RestoreSource::kDisk:
      return "disk " + std::to_string(c->step) + " " + c->disk_path;
    case RestoreSource::kNone:
      break;
  }
  return "none 0";
}

StatusOr<RestoreChoice> DecodeChoice(const std::string& v) {
  auto bad = [&] {
    return DataLoss("the store's " + std::string(kChoiceKey) + " = '" + v + "' is not a restore decision");
  };
  const size_t sp = v.find(' ');
  if (sp == std::string::npos) return bad();
  const std::string kind = v.substr(0, sp), rest = v.substr(sp + 1);
  if (kind == "error") return FailedPrecondition("rank 0 could not choose what to restore from: " + rest);
  const size_t sp2 = rest.find(' ');
  auto step = ParseStep(std::string_view(rest).substr(0, sp2));
  if (!step) return bad();
  RestoreChoice c;
  c.step = *step;
  if (kind == "host" && sp2 == std::string::npos) {
    c.source = RestoreSource::kHostMemory;
  } else if (kind == "disk" && sp2 != std::string::npos && sp2 + 1 < rest.size()) {
    c.source = RestoreSource::kDisk;
    c.disk_path = rest.substr(sp2 + 1);
  } else if (kind == "none" && sp2 == std::string::npos && c.step == 0) {
    c.source = RestoreSource::kNone;
  } else {
    return bad();
  }
  return c;
}

}  // namespace

const char* RestoreSourceName(RestoreSource s) {
  switch (s) {
    case RestoreSource::kNone:
      return "none";
    case RestoreSource::kHostMemory:
      return "host memory";
    case RestoreSource::kDisk:
      return "disk";
  }
  return "?";
}

std::string RestoreChoice::Describe() const {
  switch (source) {
    case RestoreSource::kHostMemory:
      return "host memory step " + std::to_string(step) + " (slot " + std::to_string(host_slot) + ")";
    case RestoreSource::kDisk:
      return "disk step " + std::to_string(step) + " (" + disk_path + ")";
    case RestoreSource::kNone:
      break;
  }
  return "nothing (a fresh start)";
}

StatusOr<RestoreChoice> ChooseRestore(const std::vector<HostSlotInfo>& held, DiskCatalog* disk, comm::Store& store,
                                      int rank, int world_size) {
  ZT_CHECK(world_size >= 1 && rank >= 0 && rank < world_size) << "rank " << rank << " of " << world_size;
  std::vector<int64_t> mine;
  for (const HostSlotInfo& h : held)
    if (h.rank == rank && h.world_size == world_size) mine.push_back(h.step);
  std::sort(mine.begin(), mine.end());
  mine.erase(std::unique(mine.begin(), mine.end()), mine.end());
  ZT_RETURN_IF_ERROR(store.Set(kHostKey + std::to_string(rank), EncodeSteps(mine)));

  StatusOr<RestoreChoice> decided = Internal("unset");
  if (rank == 0) {
    std::vector<std::set<int64_t>> all(static_cast<size_t>(world_size));
    Status s;
    for (int r = 0; r < world_size && s.ok(); ++r) {
      auto v = store.Get(kHostKey + std::to_string(r));
      if (!v.ok()) {
        s = v.status().WithContext("rank 0 waited for every rank's host-memory steps");
        break;
      }
      auto steps = DecodeSteps(*v, r);
      if (!steps.ok()) s = steps.status();
      else all[static_cast<size_t>(r)] = std::move(*steps);
    }
    decided = s.ok() ? Decide(all, disk) : StatusOr<RestoreChoice>(s);
    ZT_RETURN_IF_ERROR(store.Set(kChoiceKey, EncodeChoice(decided)));  // the others wait for it
    for (const auto& w : decided.ok() ? decided->warnings : std::vector<std::string>{})
      ZT_LOG(WARNING) << w;
  }
  ZT_ASSIGN_OR_RETURN(std::string v, store.Get(kChoiceKey));
  ZT_ASSIGN_OR_RETURN(RestoreChoice c, DecodeChoice(v));
  if (rank == 0) c.warnings = decided->warnings;
  if (c.source == RestoreSource::kHostMemory) {
    for (const HostSlotInfo& h : held) {  // newest first: the newest slot holding that step
      if (h.step == c.step && h.rank == rank && h.world_size == world_size) {
        c.host_slot = h.slot;
        break;
      }
    }
    if (c.host_slot < 0) {
      return DataLoss("the job resumes from host-memory step " + std::to_string(c.step) + ", but rank " +
                      std::to_string(rank) + " does not hold it (is another job using this store?)");
    }
  }
  return c;
}

StatusOr<RestoreChoice> ChooseRestore(const HostStore* host, DiskCatalog* disk, comm::Store& store, int rank,
                                      int world_size) {
  std::vector<HostSlotInfo> held;
  if (host != nullptr) {
    std::vector<std::string> problems;
    held = host->List(&problems);
    for (const auto& p : problems) ZT_LOG(WARNING) << "host-memory checkpoint: " << p;
  }
  return ChooseRestore(held, disk, store, rank, world_size);
}

}  // namespace zt::ckpt
