// Engine <-> checkpoint state: this rank's slices of each unit's master weights and AdamW moments
// (TakeSnapshot), and setting them from any checkpoint layout (RestoreState). The per-stage
// storage (per-parameter values at stage 0, unit shards at stages 1-3) is mapped onto the one
// canonical form: f32 unit flat buffers sliced by rank.
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

Status Engine::TakeSnapshot(ckpt::RankSnapshot* s) {
  const ir::Graph& g = program_->graph();
  const int r = rank();
  s->step = global_step_;
  s->rank = r;
  s->world_size = world_size();
  std::vector<float> full;
  std::vector<char> raw;
  for (const passes::ZeroUnit& u : ckpt_layout_.units) {
    for (const char* kind : ckpt::kStateKinds) {
      float* out = reinterpret_cast<float*>(s->AddSection(ckpt::SectionName(kind, u.name), DType::kF32, u.shard));
      if (!layout_.units.empty()) {
        const ir::Value* v = ShardValue(g, kind, u);
        if (v == nullptr) return Internal("no graph value for " + std::string(kind) + " of unit " + u.name);
        if (v->dtype == DType::kF32) {  // straight into the snapshot: no staging copy
          ZT_RETURN_IF_ERROR(executor_->Read(v, out, v->nbytes()));
          continue;
        }
        raw.resize(v->nbytes());
        ZT_RETURN_IF_ERROR(executor_->Read(v, raw.data(), raw.size()));
        ToF32Buffer(raw.data(), v->dtype, u.shard, out);
        continue;
      }
      // Stage 0: cut this rank's slice out of the unit's parameters.
      std::fill(out, out + u.shard, 0.0f);
      const int64_t begin = r * u.shard, end = begin + u.shard;
      for (const passes::ZeroParam& zp : u.params) {
        int64_t p0 = zp.offset, p1 = zp.offset + zp.shape.numel();
        int64_t a = std::max(begin, p0), b = std::min(end, p1);
        if (a >= b) continue;
        const ir::Value* v = Stage0Value(g, kind, zp.name);
        if (v == nullptr) return Internal("no graph value for " + std::string(kind) + " of " + zp.name);
        full.resize(static_cast<size_t>(zp.shape.numel()));
        if (v->dtype == DType::kF32) {
          ZT_RETURN_IF_ERROR(executor_->Read(v, full.data(), v->nbytes()));
        } else {
          raw.resize(v->nbytes());
          ZT_RETURN_IF_ERROR(executor_->Read(v, raw.data(), raw.size()));
          ToF32Buffer(raw.data(), v->dtype, zp.shape.numel(), full.data());
        }
        std::copy(full.begin() + (a - p0), full.begin() + (b - p0), out + (a - begin));
      }
    }
  }
  return OkStatus();
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
