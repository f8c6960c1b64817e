// HostStore: the segment layout and the double-buffered publish/verify protocol.
//
// Segment ("<prefix>-r<rank>" in /dev/shm, 0600):
//   [0, 4096)   SegmentHeader: magic "ZTHOSTv1", version, header size, segment size, and for each
//               of the two slots a SlotHeader (below)
//   regions     each slot's region at its own 4096-aligned offset: the section table, zero padding
//               to 4096, then the snapshot bytes
// A slot is committed when its `seq` is non-zero; the newest is the one with the highest seq.
// Put: (1) seq := 0 on the target slot (the one not holding the newest verified snapshot), release
// fence; (2) place/grow its region if too small (never touching the other slot's region); (3) copy
// table and bytes, hashing them; (4) store the header fields, then seq := max(seqs) + 1 with
// release. Readers load seq with acquire, check the fields and the checksum, then re-load seq after
// an acquire fence: a slot whose seq changed, or is 0, is never returned.
#include "ckpt/host_store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "ckpt/checksum.h"
#include "core/settings.h"

namespace zt::ckpt {
namespace {

constexpr uint64_t kMagic = 0x317654534F48545AULL;  // "ZTHOSTv1" as a little-endian u64
constexpr uint64_t kVersion = 1;
constexpr uint64_t kHeaderBytes = 4096;
constexpr uint64_t kAlign = 4096;
constexpr size_t kChunk = size_t{4} << 20;  // copy and hash in 4 MiB pieces
constexpr size_t kMaxPrefixChars = 200;
constexpr uint32_t kMaxSectionName = 4096;
constexpr char kShmDir[] = "/dev/shm";

// Every field is a u64 accessed through std::atomic_ref: the segment is shared between processes.
struct SlotHeader {
  uint64_t seq;          // 0: empty or being written; else the commit number (publishes the rest)
  uint64_t offset;       // region start, from the segment start
  uint64_t capacity;     // region bytes
  uint64_t step;         // int64
  uint64_t rank;
  uint64_t world_size;
  uint64_t table_bytes;  // section table at the region start
  uint64_t data_offset;  // snapshot bytes at region start + data_offset
  uint64_t data_bytes;
  uint64_t checksum;     // xxh64(SlotMeta, table, bytes)
  uint64_t reserved[6];
};
struct SegmentHeader {
  uint64_t magic;
  uint64_t version;
  uint64_t header_bytes;
  uint64_t segment_bytes;  // as last sized by the writer (informational; fstat is the truth)
  uint64_t reserved[4];
  SlotHeader slots[2];
};
static_assert(sizeof(SlotHeader) == 128 && sizeof(SegmentHeader) <= kHeaderBytes);
static_assert(std::atomic_ref<uint64_t>::is_always_lock_free);

// The header fields the checksum covers (and the order it hashes them in).
struct SlotMeta {
  int64_t step;
  int64_t rank;
  int64_t world_size;
  uint64_t table_bytes;
  uint64_t data_offset;
  uint64_t data_bytes;
};
static_assert(sizeof(SlotMeta) == 48);

uint64_t Load(const uint64_t& field, std::memory_order order = std::memory_order_relaxed) {
  return std::atomic_ref<uint64_t>(const_cast<uint64_t&>(field)).load(order);
}
void Put64(uint64_t& field, uint64_t value, std::memory_order order = std::memory_order_relaxed) {
  std::atomic_ref<uint64_t>(field).store(value, order);
}

uint64_t RoundUp(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

std::string Errno(const std::string& what) { return what + ": " + strerror(errno); }

// What a slot's header says, loaded field by field.
struct SlotView {
  uint64_t seq = 0, offset = 0, capacity = 0, checksum = 0;
  SlotMeta meta{};
};

SlotView LoadView(const SlotHeader& s) {
  SlotView v;
  v.offset = Load(s.offset);
  v.capacity = Load(s.capacity);
  v.meta.step = static_cast<int64_t>(Load(s.step));
  v.meta.rank = static_cast<int64_t>(Load(s.rank));
  v.meta.world_size = static_cast<int64_t>(Load(s.world_size));
  v.meta.table_bytes = Load(s.table_bytes);
  v.meta.data_offset = Load(s.data_offset);
  v.meta.data_bytes = Load(s.data_bytes);
  v.checksum = Load(s.checksum);
  return v;
}

// Why a committed slot's fields cannot be right for a segment of `size` bytes; empty when they can.
std::string CheckView(const SlotView& v, uint64_t size, int rank) {
  if (v.offset < kHeaderBytes || v.offset % kAlign != 0 || v.capacity > size || v.offset > size - v.capacity)
    return "its region [" + std::to_string(v.offset) + ", +" + std::to_string(v.capacity) + ") is not inside the " +
           std::to_string(size) + "-byte segment";
  const SlotMeta& m = v.meta;
  if (m.table_bytes < 4 || m.data_offset < m.table_bytes || m.data_offset > v.capacity ||
      m.data_bytes > v.capacity - m.data_offset)
    return "its table/data sizes do not fit its region";
  if (m.world_size < 1 || m.rank != rank || m.rank >= m.world_size || m.step < 0)
    return "it holds rank " + std::to_string(m.rank) + " of " + std::to_string(m.world_size) + ", step " +
           std::to_string(m.step) + " (expected rank " + std::to_string(rank) + ")";
  return "";
}

// Hashes meta, table and bytes of a region (in the segment, or a copy laid out the same way).
uint64_t HashSlot(const SlotMeta& meta, const char* table, const char* bytes) {
  Xxh64 h;
  h.Update(&meta, sizeof(meta));
  h.Update(table, meta.table_bytes);
  h.Update(bytes, meta.data_bytes);
  return h.Digest();
}

template <typename T>
void Append(std::string* out, const T& v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof(T));
}

// u32 count, then per section: u32 name length, name, u32 dtype, i64 numel, u64 offset.
std::string EncodeTable(const RankSnapshot& s) {
  std::string t;
  Append(&t, static_cast<uint32_t>(s.sections.size()));
  for (const auto& sec : s.sections) {
    Append(&t, static_cast<uint32_t>(sec.name.size()));
    t += sec.name;
    Append(&t, static_cast<uint32_t>(sec.dtype));
    Append(&t, static_cast<int64_t>(sec.numel));
    Append(&t, static_cast<uint64_t>(sec.offset));
  }
  return t;
}

StatusOr<std::vector<SnapshotSection>> DecodeTable(const char* p, size_t n, uint64_t data_bytes,
                                                   const std::string& where) {
  size_t at = 0;
  auto take = [&](void* out, size_t k) {
    if (n - at < k) return false;
    std::memcpy(out, p + at, k);
    at += k;
    return true;
  };
  auto bad = [&](const std::string& why) { return DataLoss(where + ": section table " + why); };
  uint32_t count = 0;
  if (!take(&count, 4)) return bad("is truncated");
  std::vector<SnapshotSection> out;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len = 0, dt = 0;
    int64_t numel = 0;
    uint64_t offset = 0;
    if (!take(&len, 4) || len > kMaxSectionName || n - at < len) return bad("is truncated");
    std::string name(p + at, len);
    at += len;
    if (!take(&dt, 4) || !take(&numel, 8) || !take(&offset, 8)) return bad("is truncated");
    if (dt >= static_cast<uint32_t>(kNumDTypes) || numel < 0) return bad("has a bad entry for " + name);
    SnapshotSection sec{name, static_cast<DType>(dt), numel, offset};
    if (static_cast<uint64_t>(numel) > data_bytes / DTypeSize(sec.dtype) || offset > data_bytes - sec.nbytes())
      return bad("places " + name + " outside the snapshot's bytes");
    out.push_back(std::move(sec));
  }
  if (at != n) return bad("has trailing bytes");
  return out;
}

// "/zt-<digits>-<alnum>-r<digits>" without the leading '/': the pid, or -1 when it does not match.
long OrphanCandidatePid(const std::string& entry) {
  if (entry.rfind("zt-", 0) != 0) return -1;
  size_t i = 3, j = i;
  while (j < entry.size() && isdigit(static_cast<unsigned char>(entry[j]))) ++j;
  if (j == i || j - i > 9 || j >= entry.size() || entry[j] != '-') return -1;
  const long pid = std::stol(entry.substr(i, j - i));
  size_t k = j + 1, id_start = k;
  while (k < entry.size() && isalnum(static_cast<unsigned char>(entry[k]))) ++k;
  if (k == id_start || entry.compare(k, 2, "-r") != 0) return -1;
  k += 2;
  if (k == entry.size()) return -1;
  for (; k < entry.size(); ++k)
    if (!isdigit(static_cast<unsigned char>(entry[k]))) return -1;
  return pid;
}

// Calls fn(entry name without '/') for each entry of /dev/shm; a missing /dev/shm has none.
template <typename Fn>
Status ForEachShmEntry(Fn fn) {
  DIR* d = opendir(kShmDir);
  if (d == nullptr) {
    if (errno == ENOENT) return OkStatus();
    return Internal(Errno(std::string("cannot list ") + kShmDir));
  }
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) names.emplace_back(e->d_name);
  closedir(d);
  for (const auto& n : names)
    if (n != "." && n != "..") fn(n);
  return OkStatus();
}

void Unlink(const std::string& name, std::vector<std::string>* removed, std::string* errors) {
  if (shm_unlink(name.c_str()) == 0) {
    removed->push_back(name);
  } else if (errno != ENOENT) {  // ENOENT: gone already, someone else cleaned up
    *errors += (errors->empty() ? "" : "; ") + Errno("cannot remove host-memory segment " + name);
  }
}

}  // namespace

Status HostStore::CheckPrefix(const std::string& prefix) {
  bool ok = prefix.size() >= 2 && prefix.size() <= kMaxPrefixChars + 1 && prefix[0] == '/';
  for (size_t i = 1; ok && i < prefix.size(); ++i) {
    const char c = prefix[i];
    ok = isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  }
  if (ok) return OkStatus();
  return InvalidArgument("ZT_SHM_PREFIX='" + prefix + "' is not a shared-memory name prefix: give '/' then 1.." +
                         std::to_string(kMaxPrefixChars) + " of A-Z a-z 0-9 . _ - (e.g. /zt-myjob), or leave it "
                         "unset and `ztrain launch` picks one");
}

std::string HostStore::SegmentName(const std::string& prefix, int rank) {
  return prefix + "-r" + std::to_string(rank);
}

std::string DefaultShmPrefix(long agent_pid, const std::string& id) {
  return "/zt-" + std::to_string(agent_pid) + "-" + id;
}

HostStore::~HostStore() {
  if (base_ != nullptr) munmap(base_, map_bytes_);
  if (fd_ >= 0) close(fd_);
}

Status HostStore::Map(size_t bytes) const {
  if (base_ != nullptr) munmap(base_, map_bytes_);
  base_ = nullptr;
  map_bytes_ = 0;
  if (bytes == 0) return OkStatus();
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, 0);
  if (p == MAP_FAILED) return Internal(Errno("cannot map host-memory segment " + name_));
  base_ = static_cast<char*>(p);
  map_bytes_ = bytes;
  return OkStatus();
}

Status HostStore::Refresh() const {
  struct stat st;
  if (fstat(fd_, &st) != 0) return Internal(Errno("fstat " + name_));
  if (static_cast<size_t>(st.st_size) != map_bytes_) return Map(static_cast<size_t>(st.st_size));
  return OkStatus();
}

Status HostStore::Grow(size_t bytes) {
  const size_t old = map_bytes_;
  if (ftruncate(fd_, static_cast<off_t>(bytes)) != 0) return Internal(Errno("cannot resize " + name_));
  // Reserve the pages now: a full /dev/shm must be an error here, not SIGBUS in the middle of a copy.
  int rc = posix_fallocate(fd_, static_cast<off_t>(old), static_cast<off_t>(bytes - old));
  if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
    int ignored = ftruncate(fd_, static_cast<off_t>(old));
    (void)ignored;
    return Unavailable("cannot grow host-memory segment " + name_ + " to " + std::to_string(bytes) +
                       " bytes: " + strerror(rc) + " (is " + kShmDir +
                       " too small? containers: docker run --shm-size=...; see docs/checkpoint-tiers.md)");
  }
  return Map(bytes);
}

StatusOr<std::unique_ptr<HostStore>> HostStore::Open(const std::string& prefix, int rank, bool create) {
  ZT_RETURN_IF_ERROR(CheckPrefix(prefix));
  if (rank < 0) return InvalidArgument("host store rank " + std::to_string(rank) + " is negative");
  const std::string name = SegmentName(prefix, rank);
  int fd = shm_open(name.c_str(), O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0), 0600);
  if (fd < 0) {
    if (errno == ENOENT) return NotFound("host-memory segment " + name + " does not exist");
    if (errno == EACCES) return PermissionDenied(Errno("cannot open host-memory segment " + name));
    return Internal(Errno("cannot open host-memory segment " + name));
  }
  std::unique_ptr<HostStore> hs(new HostStore(name, rank, fd));
  struct stat st;
  if (fstat(fd, &st) != 0) return Internal(Errno("fstat " + name));
  if (st.st_uid != geteuid()) {
    return PermissionDenied("host-memory segment " + name + " belongs to uid " + std::to_string(st.st_uid) +
                            ", not to this user; choose another ZT_SHM_PREFIX");
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return PermissionDenied("host-memory segment " + name + " has mode " + mode +
                            " (open to other users); remove it (rm " + kShmDir + name + ") and start again");
  }
  ZT_RETURN_IF_ERROR(hs->Refresh());
  auto* h = reinterpret_cast<SegmentHeader*>(hs->base_);
  const uint64_t magic = hs->map_bytes_ >= kHeaderBytes ? Load(h->magic, std::memory_order_acquire) : 0;
  if (magic == 0) {
    // New, or its creator died before finishing the header (nothing can be committed then).
    if (!create) return hs;  // empty: List() finds nothing
    if (hs->map_bytes_ < kHeaderBytes) ZT_RETURN_IF_ERROR(hs->Grow(kHeaderBytes));
    h = reinterpret_cast<SegmentHeader*>(hs->base_);
    std::memset(hs->base_, 0, kHeaderBytes);
    Put64(h->version, kVersion);
    Put64(h->header_bytes, kHeaderBytes);
    Put64(h->segment_bytes, hs->map_bytes_);
    Put64(h->magic, kMagic, std::memory_order_release);
    return hs;
  }
  if (magic != kMagic) {
    return DataLoss("host-memory segment " + name + " is not a ztrain host store (bad magic); remove it (rm " +
                    kShmDir + name + ") or choose another ZT_SHM_PREFIX");
  }
  if (Load(h->version) != kVersion || Load(h->header_bytes) != kHeaderBytes) {
    return DataLoss("host-memory segment " + name + " has format version " + std::to_string(Load(h->version)) +
                    ", this ztrain reads version " + std::to_string(kVersion) + "; remove it (rm " + kShmDir +
                    name + ")");
  }
  return hs;
}

int HostStore::ChooseTarget() {
  if (!writer_ready_) {
    auto held = List();
    last_committed_ = held.empty() ? -1 : held[0].slot;
    writer_ready_ = true;
  }
  return last_committed_ < 0 ? 0 : 1 - last_committed_;
}

Status HostStore::Put(const RankSnapshot& s, const PutHooks& hooks) {
  for (const auto& sec : s.sections) {
    if (sec.numel < 0 || sec.offset > s.bytes.size() || sec.nbytes() > s.bytes.size() - sec.offset)
      return InvalidArgument("snapshot section " + sec.name + " lies outside the snapshot's bytes");
    if (sec.name.size() > kMaxSectionName) return InvalidArgument("snapshot section name too long: " + sec.name);
  }
  if (s.world_size < 1 || s.rank != rank_ || s.rank >= s.world_size || s.step < 0) {
    return InvalidArgument("snapshot of rank " + std::to_string(s.rank) + " of " + std::to_string(s.world_size) +
                           " at step " + std::to_string(s.step) + " does not belong in " + name_);
  }
  const std::string table = EncodeTable(s);
  const uint64_t data_offset = RoundUp(table.size(), kAlign);
  const uint64_t need = RoundUp(data_offset + s.bytes.size(), kAlign);

  ZT_RETURN_IF_ERROR(Refresh());
  if (map_bytes_ < kHeaderBytes) return FailedPrecondition("host-memory segment " + name_ + " has no header");
  const int t = ChooseTarget();
  auto* h = reinterpret_cast<SegmentHeader*>(base_);
  const uint64_t seq = std::max(Load(h->slots[0].seq), Load(h->slots[1].seq)) + 1;

  // (1) Unpublish the target before touching it.
  Put64(h->slots[t].seq, 0);
  std::atomic_thread_fence(std::memory_order_release);

  // (2) Place its region: keep it when big enough, else the lowest offset that does not overlap
  // the other slot's region (which may hold the snapshot we must not lose).
  uint64_t offset = Load(h->slots[t].offset), capacity = Load(h->slots[t].capacity);
  if (capacity < need || offset < kHeaderBytes) {
    const bool other_committed = Load(h->slots[1 - t].seq) != 0;
    const uint64_t o_off = Load(h->slots[1 - t].offset), o_cap = Load(h->slots[1 - t].capacity);
    offset = kHeaderBytes;
    if (other_committed && offset < o_off + o_cap && o_off < offset + need) offset = o_off + o_cap;
    capacity = need;
    uint64_t end = offset + capacity;
    if (!other_committed) end += need;  // room for the next snapshot too: two of this size
    if (end > map_bytes_) {
      ZT_RETURN_IF_ERROR(Grow(end));
      h = reinterpret_cast<SegmentHeader*>(base_);
      Put64(h->segment_bytes, map_bytes_);
    }
    Put64(h->slots[t].offset, offset);
    Put64(h->slots[t].capacity, capacity);
    if (!other_committed) {
      Put64(h->slots[1 - t].offset, offset + capacity);
      Put64(h->slots[1 - t].capacity, need);
    }
  }

  // (3) Copy the table and the bytes, hashing what we copy.
  char* region = base_ + offset;
  SlotMeta meta{s.step, s.rank, s.world_size, table.size(), data_offset, s.bytes.size()};
  Xxh64 hash;
  hash.Update(&meta, sizeof(meta));
  std::memcpy(region, table.data(), table.size());
  hash.Update(table.data(), table.size());
  std::memset(region + table.size(), 0, data_offset - table.size());
  const size_t total = s.bytes.size();
  for (size_t done = 0; done < total;) {
    size_t n = std::min(kChunk, total - done);
    if (hooks.abandon_after && *hooks.abandon_after > done) n = std::min(n, *hooks.abandon_after - done);
    std::memcpy(region + data_offset + done, s.bytes.data() + done, n);
    hash.Update(s.bytes.data() + done, n);
    done += n;
    if (hooks.on_progress) hooks.on_progress(done, total);
    if (hooks.abandon_after && done >= *hooks.abandon_after) return OkStatus();
  }
  if (hooks.abandon_after) return OkStatus();  // everything copied, nothing published

  // (4) Publish: the fields, then the sequence number (release: a reader that sees it sees them).
  SlotHeader& slot = h->slots[t];
  Put64(slot.step, static_cast<uint64_t>(meta.step));
  Put64(slot.rank, static_cast<uint64_t>(meta.rank));
  Put64(slot.world_size, static_cast<uint64_t>(meta.world_size));
  Put64(slot.table_bytes, meta.table_bytes);
  Put64(slot.data_offset, meta.data_offset);
  Put64(slot.data_bytes, meta.data_bytes);
  Put64(slot.checksum, hash.Digest());
  Put64(slot.seq, seq, std::memory_order_release);
  last_committed_ = t;
  return OkStatus();
}

std::vector<HostSlotInfo> HostStore::List(std::vector<std::string>* problems) const {
  std::vector<HostSlotInfo> out;
  auto problem = [&](const std::string& p) {
    if (problems) problems->push_back(name_ + ": " + p);
  };
  if (Status s = Refresh(); !s.ok()) {
    problem(s.message());
    return out;
  }
  if (map_bytes_ < kHeaderBytes) return out;
  const auto* h = reinterpret_cast<const SegmentHeader*>(base_);
  if (Load(h->magic, std::memory_order_acquire) != kMagic) return out;
  for (int i = 0; i < 2; ++i) {
    const SlotHeader& slot = h->slots[i];
    const uint64_t seq = Load(slot.seq, std::memory_order_acquire);
    if (seq == 0) continue;
    const SlotView v = LoadView(slot);
    const std::string what = "slot " + std::to_string(i) + " (step " + std::to_string(v.meta.step) + ")";
    if (std::string why = CheckView(v, map_bytes_, rank_); !why.empty()) {
      problem(what + " skipped: " + why);
      continue;
    }
    const char* region = base_ + v.offset;
    const uint64_t sum = HashSlot(v.meta, region, region + v.meta.data_offset);
    auto table = DecodeTable(region, v.meta.table_bytes, v.meta.data_bytes, name_ + " " + what);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (Load(slot.seq) != seq) {
      problem(what + " skipped: it changed while being read");
      continue;
    }
    if (sum != v.checksum) {
      problem(what + " skipped: its checksum does not match (a torn or corrupted snapshot)");
      continue;
    }
    if (!table.ok()) {
      problem(what + " skipped: " + table.status().message());
      continue;
    }
    out.push_back(HostSlotInfo{i, seq, v.meta.step, static_cast<int>(v.meta.rank),
                               static_cast<int>(v.meta.world_size), v.meta.data_bytes});
  }
  std::sort(out.begin(), out.end(), [](const HostSlotInfo& a, const HostSlotInfo& b) { return a.seq > b.seq; });
  return out;
}

StatusOr<RankSnapshot> HostStore::ReadSlot(int i) const {
  ZT_CHECK(i == 0 || i == 1) << "host store slot " << i;
  ZT_RETURN_IF_ERROR(Refresh());
  const std::string what = name_ + " slot " + std::to_string(i);
  const auto* h = reinterpret_cast<const SegmentHeader*>(base_);
  if (map_bytes_ < kHeaderBytes || Load(h->magic, std::memory_order_acquire) != kMagic)
    return NotFound(what + " holds no committed snapshot (the segment is empty)");
  const SlotHeader& slot = h->slots[i];
  const uint64_t seq = Load(slot.seq, std::memory_order_acquire);
  if (seq == 0) return NotFound(what + " holds no committed snapshot");
  const SlotView v = LoadView(slot);
  if (std::string why = CheckView(v, map_bytes_, rank_); !why.empty()) return DataLoss(what + ": " + why);
  const char* region = base_ + v.offset;
  std::string table(region, v.meta.table_bytes);
  RankSnapshot snap;
  snap.bytes.resize(v.meta.data_bytes);
  std::memcpy(snap.bytes.data(), region + v.meta.data_offset, v.meta.data_bytes);
  std::atomic_thread_fence(std::memory_order_acquire);
  if (Load(slot.seq) != seq) return DataLoss(what + " changed while being read");
  if (HashSlot(v.meta, table.data(), snap.bytes.data()) != v.checksum)
    return DataLoss(what + " (step " + std::to_string(v.meta.step) + ") fails its checksum");
  ZT_ASSIGN_OR_RETURN(snap.sections, DecodeTable(table.data(), table.size(), v.meta.data_bytes, what));
  snap.step = v.meta.step;
  snap.rank = static_cast<int>(v.meta.rank);
  snap.world_size = static_cast<int>(v.meta.world_size);
  return snap;
}

StatusOr<RankSnapshot> HostStore::Get(HostSnapshotAge which) const {
  std::vector<std::string> problems;
  auto held = List(&problems);
  const size_t want = which == HostSnapshotAge::kNewest ? 0 : 1;
  if (held.size() <= want) {
    std::string msg = name_ + " holds no " + (want ? "previous " : "") + "verified snapshot";
    for (const auto& p : problems) msg += "; " + p;
    return NotFound(msg);
  }
  return ReadSlot(held[want].slot);
}

StatusOr<std::unique_ptr<HostStore>> OpenJobHostStore(int rank) {
  if (!settings::IsSet("ZT_SHM_PREFIX")) return std::unique_ptr<HostStore>();
  return HostStore::Open(settings::GetString("ZT_SHM_PREFIX"), rank);
}

StatusOr<std::vector<std::string>> RemoveHostSegments(const std::string& prefix) {
  ZT_RETURN_IF_ERROR(HostStore::CheckPrefix(prefix));
  const std::string stem = prefix.substr(1) + "-r";
  std::vector<std::string> removed;
  std::string errors;
  ZT_RETURN_IF_ERROR(ForEachShmEntry([&](const std::string& e) {
    if (e.size() <= stem.size() || e.compare(0, stem.size(), stem) != 0) return;
    for (size_t i = stem.size(); i < e.size(); ++i)
      if (!isdigit(static_cast<unsigned char>(e[i]))) return;
    Unlink("/" + e, &removed, &errors);
  }));
  if (!errors.empty()) return Internal(errors);
  return removed;
}

StatusOr<std::vector<std::string>> RemoveOrphanedHostSegments() {
  std::vector<std::string> removed;
  std::string errors;
  const uid_t me = geteuid();
  ZT_RETURN_IF_ERROR(ForEachShmEntry([&](const std::string& e) {
    const long pid = OrphanCandidatePid(e);
    if (pid <= 0 || pid == static_cast<long>(getpid())) return;
    struct stat st;
    if (stat((std::string(kShmDir) + "/" + e).c_str(), &st) != 0 || st.st_uid != me) return;
    if (kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) return;  // its agent may still run
    Unlink("/" + e, &removed, &errors);
  }));
  if (!errors.empty()) return Internal(errors);
  return removed;
}

}  // namespace zt::ckpt
