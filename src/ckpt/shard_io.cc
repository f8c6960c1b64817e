// WriteShard: header block, chunked parallel pwrite, streaming checksum, fsync, rename, dir fsync.
#include "ckpt/shard_io.h"

#include <cstdlib>
#include <cstring>
#include <memory>

#include "ckpt/checksum.h"
#include "ckpt/format.h"
#include "core/logging.h"

namespace zt::ckpt {
namespace {

struct FreeDeleter {
  void operator()(char* p) const { std::free(p); }
};
using AlignedBuffer = std::unique_ptr<char, FreeDeleter>;

AlignedBuffer AllocateAligned(size_t n) {
  return AlignedBuffer(static_cast<char*>(std::aligned_alloc(kDirectIoAlignment, AlignUp(n, kDirectIoAlignment))));
}

// One bounce buffer per I/O thread, grown to the largest chunk it has written.
char* ThreadBounce(size_t n) {
  thread_local AlignedBuffer buf;
  thread_local size_t cap = 0;
  if (cap < n) {
    buf = AllocateAligned(n);
    ZT_CHECK(buf != nullptr) << "cannot allocate a " << n << "-byte I/O buffer";
    cap = n;
  }
  return buf.get();
}

// Writes data bytes [off, off + len) of the padded data region (zeros past `size`).
Status WriteChunk(WritableFile& f, const char* data, uint64_t size, uint64_t off, uint64_t len) {
  bool aligned_src = reinterpret_cast<uintptr_t>(data + off) % kDirectIoAlignment == 0;
  bool needs_bounce = off + len > size || (f.direct() && !aligned_src);
  if (!needs_bounce) return f.PWrite(kShardDataOffset + off, data + off, len);
  char* b = ThreadBounce(len);
  uint64_t have = off < size ? std::min<uint64_t>(len, size - off) : 0;
  if (have > 0) std::memcpy(b, data + off, have);
  std::memset(b + have, 0, len - have);
  return f.PWrite(kShardDataOffset + off, b, len);
}

Status CheckSnapshot(const RankSnapshot& snap) {
  if (snap.world_size < 1 || snap.rank < 0 || snap.rank >= snap.world_size || snap.world_size > kMaxRanks)
    return InvalidArgument("snapshot of rank " + std::to_string(snap.rank) + " in a world of " +
                           std::to_string(snap.world_size) + " ranks is impossible");
  if (snap.step < 0) return InvalidArgument("snapshot step " + std::to_string(snap.step) + " is negative");
  for (const auto& s : snap.sections)
    if (s.offset > snap.bytes.size() || s.nbytes() > snap.bytes.size() - s.offset)
      return InvalidArgument("snapshot section '" + s.name + "' lies outside the snapshot's " +
                             std::to_string(snap.bytes.size()) + " bytes");
  return OkStatus();
}

}  // namespace

StatusOr<ShardWriteResult> WriteShard(FileSystem& fs, const std::string& step_dir, const RankSnapshot& snap,
                                      const ShardWriteOptions& o) {
  ZT_RETURN_IF_ERROR(CheckSnapshot(snap));
  const std::string name = ShardFileName(snap.rank);
  const std::string final_path = JoinPath(step_dir, name);
  const std::string tmp_path = final_path + kTmpSuffix;
  const uint64_t size = snap.bytes.size();
  const uint64_t padded = AlignUp(size, kShardAlignment);
  const uint64_t chunk = AlignUp(std::max<size_t>(o.chunk_bytes, 1), kShardAlignment);

  // Everything taken from the snapshot after on_bytes_written must be copied before it.
  ShardWriteResult result;
  result.info.rank = snap.rank;
  result.info.file = name;
  result.info.bytes = kShardDataOffset + padded;
  for (SnapshotSection sec : snap.sections) {
    sec.offset += kShardDataOffset;
    result.info.sections.push_back(std::move(sec));
  }
  auto created = fs.Create(tmp_path, CreateOptions{o.direct_io});
  if (!created.ok() && o.direct_io && created.status().code() == StatusCode::kInvalidArgument) {
    ZT_LOG(WARNING) << created.status().message() << "; writing " << tmp_path << " without direct I/O";
    created = fs.Create(tmp_path, CreateOptions{false});
  }
  if (!created.ok()) return created.status();
  std::unique_ptr<WritableFile> f = std::move(created).value();
  result.used_direct = f->direct();

  auto fail = [&](const Status& s) -> Status {
    (void)f->Close();
    (void)fs.Unlink(tmp_path);
    return s;
  };

  // Header block: 64 header bytes, zeros to 4096.
  ShardHeader h;
  h.step = snap.step;
  h.rank = snap.rank;
  h.world_size = snap.world_size;
  h.data_bytes = size;
  h.num_sections = static_cast<uint32_t>(snap.sections.size());
  AlignedBuffer head = AllocateAligned(kShardDataOffset);
  ZT_CHECK(head != nullptr) << "cannot allocate the shard header block";
  std::memset(head.get(), 0, kShardDataOffset);
  auto hb = EncodeShardHeader(h);
  std::memcpy(head.get(), hb.data(), hb.size());

  Xxh64 hash;
  hash.Update(head.get(), kShardDataOffset);
  Status written = f->PWrite(0, head.get(), kShardDataOffset);
  if (written.ok()) {
    const char* data = snap.bytes.data();
    if (o.pool == nullptr || o.pool->threads() == 0) {
      for (uint64_t off = 0; off < padded && written.ok(); off += chunk) {
        uint64_t len = std::min(chunk, padded - off);
        written = WriteChunk(*f, data, size, off, len);
      }
      hash.Update(data, size);
    } else {
      TaskGroup group;
      WritableFile* file = f.get();
      for (uint64_t off = 0; off < padded; off += chunk) {
        uint64_t len = std::min(chunk, padded - off);
        group.Add();
        o.pool->Run([&group, file, data, size, off, len] {
          group.Done(group.failed() ? OkStatus() : WriteChunk(*file, data, size, off, len));
        });
      }
      // Hash on this thread while the pool writes, chunk by chunk.
      for (uint64_t off = 0; off < size; off += chunk) hash.Update(data + off, std::min(chunk, size - off));
      written = group.Wait();
    }
  }
  if (written.ok() && padded > size) {
    std::vector<char> zeros(padded - size, 0);
    hash.Update(zeros.data(), zeros.size());
  }
  if (o.on_bytes_written) o.on_bytes_written();
  if (!written.ok()) return fail(written);
  Status s = f->Sync();
  if (!s.ok()) return fail(s);
  s = f->Close();
  if (!s.ok()) {
    (void)fs.Unlink(tmp_path);
    return s;
  }
  s = fs.Rename(tmp_path, final_path);
  if (!s.ok()) {
    (void)fs.Unlink(tmp_path);
    return s;
  }
  ZT_RETURN_IF_ERROR(fs.SyncDir(step_dir));

  result.info.checksum = FormatChecksum(hash.Digest());
  return result;
}

}  // namespace zt::ckpt
