// Engine <-> checkpoint state: this rank's slices of each unit's master weights and AdamW moments
// (TakeSnapshot), and setting them from any checkpoint layout (RestoreState). The per-stage
// storage (per-parameter values at stage 0, unit shards at stages 1-3) is mapped onto the one
// canonical form: f32 unit flat buffers sliced by rank. Snapshots are device-to-host copies queued
// on the copy stream (StartSnapshot); the optimizer phase is fenced behind them, so training never
// changes the bytes being copied and the host waits only where the bytes are used.
#include <algorithm>
#include <cstring>

#include "ir/optimizer.h"
#include "runtime/engine.h"
#include "runtime/host_convert.h"

namespace zt {
namespace {

// The graph value holding (kind, param) at stage 0: "<p>.master" (or the f32 parameter itself),
// "<p>.exp_avg", "<p>.exp_avg_sq".
const ir::Value* Stage0Value(const ir::Graph& g, const std::string& kind, const std::string& param) {
  if (kind == "master") {
    const ir::Value* m = g.FindValue(ir::MasterName(param));
    return m ? m : g.FindValue(param);
  }
  return g.FindValue(param + "." + kind);
}

// The graph value holding (kind, unit) at stages 1-3 (a shard of S elements).
const ir::Value* ShardValue(const ir::Graph& g, const std::string& kind, const passes::ZeroUnit& u) {
  if (kind == "master") {
    const ir::Value* m = g.FindValue(passes::ZeroStateName(u, "master"));
    return m ? m : g.FindValue(passes::ZeroStateName(u, "shard"));  // stage 3, f32: the shard is the master
  }
  return g.FindValue(passes::ZeroStateName(u, kind.c_str()));
}

}  // namespace

namespace {

// Snapshot buffers from the backend's host staging memory (pinned on CUDA).
class BackendHostAllocator final : public ckpt::HostAllocator {
 public:
  explicit BackendHostAllocator(Backend& b) : backend_(b) {}
  void* Allocate(size_t bytes) override { return backend_.AllocateHost(bytes); }
  void Free(void* p) override { backend_.FreeHost(p); }

 private:
  Backend& backend_;
};

}  // namespace

Status PendingSnapshot::Wait() {
  if (waited_) return OkStatus();
  done_->Synchronize();
  for (Conversion& c : conversions_) ToF32Buffer(c.raw.data(), c.dtype, c.count, c.out);
  conversions_.clear();
  waited_ = true;
  return OkStatus();
}

void Engine::InitSnapshotting() {
  Backend& b = executor_->backend();
  snapshot_allocator_ = std::make_unique<BackendHostAllocator>(b);
  snapshot_fence_ = b.CreateEvent();
  snapshot_fence_->Record(b.stream(StreamKind::kCopy));  // a completed point until the first snapshot
  executor_->SetPhaseFence(ir::Phase::kOptimizer, snapshot_fence_.get());
}

StatusOr<std::unique_ptr<PendingSnapshot>> Engine::StartSnapshot(ckpt::RankSnapshot* s) {
  const ir::Graph& g = program_->graph();
  Backend& backend = executor_->backend();
  Stream& copy = backend.stream(StreamKind::kCopy);
  const int r = rank();
  s->step = global_step_;
  s->rank = r;
  s->world_size = world_size();
  // Reserve every section first: the queued copies write into the bytes, which must not move.
  s->bytes.reserve(s->bytes.size() + s->BytesToAdd(SnapshotSectionBytes()));
  const char* storage = s->bytes.data();

  // The copies start after everything queued on the compute stream (the last optimizer phase).
  auto start = backend.CreateEvent();
  start->Record(backend.stream(StreamKind::kCompute));
  start->StreamWait(copy);
  std::vector<PendingSnapshot::Conversion> conversions;
  // Queues elements [first, first + count) of value v into out (converted later if not f32).
  auto queue = [&](const ir::Value* v, int64_t first, int64_t count, float* out) -> Status {
    const size_t esize = DTypeSize(v->dtype);
    if (v->dtype == DType::kF32) {
      return executor_->ReadAsync(v, first * esize, out, count * esize, copy);
    }
    PendingSnapshot::Conversion c;
    c.raw.resize(static_cast<size_t>(count) * esize);
    c.dtype = v->dtype;
    c.count = count;
    c.out = out;
    ZT_RETURN_IF_ERROR(executor_->ReadAsync(v, first * esize, c.raw.data(), c.raw.size(), copy));
    conversions.push_back(std::move(c));
    return OkStatus();
  };
  for (const passes::ZeroUnit& u : ckpt_layout_.units) {
    for (const char* kind : ckpt::kStateKinds) {
      float* out = reinterpret_cast<float*>(s->AddSection(ckpt::SectionName(kind, u.name), DType::kF32, u.shard));
      if (!layout_.units.empty()) {
        const ir::Value* v = ShardValue(g, kind, u);
        if (v == nullptr) return Internal("no graph value for " + std::string(kind) + " of unit " + u.name);
        ZT_RETURN_IF_ERROR(queue(v, 0, u.shard, out));
        continue;
      }
      // Stage 0: this rank's slice of the unit's parameters (in offset order); elements no
      // parameter covers (the tail past the unit) are zero.
      const int64_t begin = r * u.shard, end = begin + u.shard;
      int64_t covered = begin;
      for (const passes::ZeroParam& zp : u.params) {
        int64_t p0 = zp.offset, p1 = zp.offset + zp.shape.numel();
        int64_t a = std::max(begin, p0), b = std::min(end, p1);
        if (a >= b) continue;
        const ir::Value* v = Stage0Value(g, kind, zp.name);
        if (v == nullptr) return Internal("no graph value for " + std::string(kind) + " of " + zp.name);
        ZT_CHECK(a >= covered) << "unit " << u.name << ": parameters overlap or are out of offset order";
        std::fill(out + (covered - begin), out + (a - begin), 0.0f);
        ZT_RETURN_IF_ERROR(queue(v, a - p0, b - a, out + (a - begin)));
        covered = b;
      }
      std::fill(out + (covered - begin), out + u.shard, 0.0f);
    }
  }
  ZT_CHECK(s->bytes.data() == storage) << "snapshot bytes moved while copies were queued";
  auto done = backend.CreateEvent();
  done->Record(copy);
  snapshot_fence_->Record(copy);  // the next optimizer phase waits for the copies
  return std::make_unique<PendingSnapshot>(std::move(done), std::move(conversions));
}

std::vector<size_t> Engine::SnapshotSectionBytes() const {
  std::vector<size_t> sizes;
  for (const passes::ZeroUnit& u : ckpt_layout_.units)
    for (size_t k = 0; k < std::size(ckpt::kStateKinds); ++k) sizes.push_back(static_cast<size_t>(u.shard) * 4);
  return sizes;
}

Status Engine::TakeSnapshot(ckpt::RankSnapshot* s) {
  ZT_ASSIGN_OR_RETURN(std::unique_ptr<PendingSnapshot> pending, StartSnapshot(s));
  return pending->Wait();
}

Status Engine::RestoreState(const passes::ZeroLayout& source, const ckpt::SectionReader& read) {
  ZT_RETURN_IF_ERROR(ckpt::CheckSameUnits(source, ckpt_layout_));
  const ir::Graph& g = program_->graph();
  // Accumulators and anything else not restored below start at zero, as after InitParams.
  std::vector<char> bytes;
  for (const auto& v : g.values()) {
    if (v->kind != ir::ValueKind::kState) continue;
    bytes.assign(v->nbytes(), 0);
    ZT_RETURN_IF_ERROR(executor_->Write(v.get(), bytes.data(), bytes.size()));
  }
  const int r = rank();
  std::vector<float> buf;
  for (const passes::ZeroUnit& u : ckpt_layout_.units) {
    const bool sharded = !layout_.units.empty();
    const int64_t begin = sharded ? r * u.shard : 0;
    const int64_t end = sharded ? begin + u.shard : u.numel;
    for (const char* kind : ckpt::kStateKinds) {
      buf.resize(static_cast<size_t>(end - begin));
      ZT_RETURN_IF_ERROR(ckpt::ReadUnitRange(source, read, kind, u, begin, end, buf.data()));
      const bool master = std::string(kind) == "master";
      if (sharded) {
        const ir::Value* v = ShardValue(g, kind, u);
        if (v == nullptr) return Internal("no graph value for " + std::string(kind) + " of unit " + u.name);
        ZT_RETURN_IF_ERROR(FromF32Buffer(buf.data(), u.shard, v->dtype, &bytes));
        ZT_RETURN_IF_ERROR(executor_->Write(v, bytes.data(), bytes.size()));
        if (master) {
          // Stage 3 keeps the parameter as a shard: its rounding of the master.
          const ir::Value* shard = g.FindValue(passes::ZeroStateName(u, "shard"));
          if (shard && shard != v) {
            ZT_RETURN_IF_ERROR(FromF32Buffer(buf.data(), u.shard, shard->dtype, &bytes));
            ZT_RETURN_IF_ERROR(executor_->Write(shard, bytes.data(), bytes.size()));
          }
        }
      } else {
        for (const passes::ZeroParam& zp : u.params) {
          const ir::Value* v = Stage0Value(g, kind, zp.name);
          if (v == nullptr) return Internal("no graph value for " + std::string(kind) + " of " + zp.name);
          ZT_RETURN_IF_ERROR(FromF32Buffer(buf.data() + zp.offset, zp.shape.numel(), v->dtype, &bytes));
          ZT_RETURN_IF_ERROR(executor_->Write(v, bytes.data(), bytes.size()));
        }
      }
      // Stages 0-2 hold whole parameters too: the masters rounded to the parameter dtype.
      if (master && (!sharded || g.FindValue(u.params[0].name) != nullptr)) {
        std::vector<float> whole(static_cast<size_t>(u.numel));
        if (sharded) {
          ZT_RETURN_IF_ERROR(ckpt::ReadUnitRange(source, read, kind, u, 0, u.numel, whole.data()));
        } else {
          std::copy(buf.begin(), buf.begin() + u.numel, whole.begin());
        }
        for (const passes::ZeroParam& zp : u.params) {
          const ir::Value* p = g.FindValue(zp.name);
          if (p == nullptr || p->kind != ir::ValueKind::kParam) continue;
          ZT_RETURN_IF_ERROR(FromF32Buffer(whole.data() + zp.offset, zp.shape.numel(), p->dtype, &bytes));
          ZT_RETURN_IF_ERROR(executor_->Write(p, bytes.data(), bytes.size()));
        }
      }
    }
  }
  return OkStatus();
}

}  // namespace zt
