// ZeRO as a rewrite of the training-step graph (stages 1-3; stage 0 is data_parallel.h).
//
// The pass takes the single-process step (forward, backward, AppendOptimizerStep's optimizer)
// and shards it over world_size ranks:
//   stage 1: AdamW moments and f32 master weights live only as this rank's shard of each unit;
//            at the accumulation boundary the unit's gradients are packed, reduce-scattered
//            (avg) to the shard, the shard is updated, and the updated parameters all-gathered
//            back into every rank's full copy;
//   stage 2: also gradients: each unit's gradients are packed and reduce-scattered as soon as the
//            backward has produced them (the full gradients then die), and accumulated as shards;
//   stage 3: also parameters: each rank keeps only its shard of each unit; before a unit's first
//            use in the forward it is all-gathered into a transient buffer whose views replace the
//            parameters, released after their last use (the memory plan frees it), gathered again
//            for the backward; AdamW updates the shard in place.
// Communication nodes run on the comm stream (1) and carry the dependencies of their inputs.
// With one rank the unit collectives are identities and are left out: the packed gradients are
// the shard, and stage 3's parameters are views of the (whole) shard; no copies are made.
//
// Layout (also the checkpoint layout, docs/zero.md): parameters, in creation order, are grouped
// into units: consecutive parameters of one block ("transformer.h.3", "model.layers.7", or the
// name minus its last component) with the same dtype and weight decay, split so that no unit
// exceeds bucket_elements unless a single parameter does; or one unit per parameter. A unit's
// flat buffer holds its parameters back to back, zero-padded to a multiple of world_size; rank r
// owns elements [r * shard, (r + 1) * shard).
#pragma once

#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/shape.h"
#include "passes/pass.h"

namespace zt::passes {

enum class GatherUnit { kParam, kBlock };

struct ZeroOptions {
  int stage = 0;
  int64_t world_size = 1;
  GatherUnit unit = GatherUnit::kBlock;
  int64_t bucket_elements = 500'000'000;  // DeepSpeed's reduce_bucket_size default
};

struct ZeroParam {
  std::string name;
  DType dtype = DType::kF32;
  Shape shape;
  int64_t offset = 0;  // element offset in the unit's flat buffer
};

struct ZeroUnit {
  std::string name;  // value names of its states start with "zero.<name>."
  std::vector<ZeroParam> params;
  DType dtype = DType::kF32;
  int64_t numel = 0;   // elements of its parameters
  int64_t padded = 0;  // numel rounded up to a multiple of world_size
  int64_t shard = 0;   // padded / world_size: the elements each rank owns
  double weight_decay = 0;
};

struct ZeroLayout {
  int stage = 0;
  int64_t world_size = 1;
  std::vector<ZeroUnit> units;
  std::string ToString() const;
};

// "transformer.h.3.attn.c_attn.weight" -> "transformer.h.3"; "transformer.wte.weight" ->
// "transformer.wte".
std::string BlockKey(const std::string& param_name);

struct ParamForLayout {
  const ir::Value* param;
  double weight_decay;
};
StatusOr<ZeroLayout> PlanZeroLayout(const std::vector<ParamForLayout>& params, const ZeroOptions& o);

class ZeroPass final : public Pass {
 public:
  explicit ZeroPass(ZeroOptions o) : o_(o) {}
  std::string name() const override { return "zero"; }
  StatusOr<bool> Run(ir::Graph& g) override;
  const ZeroLayout& layout() const { return layout_; }

 private:
  ZeroOptions o_;
  ZeroLayout layout_;
};

// Names the passes give the values the runtime reads and writes.
inline constexpr const char* kGlobalLoss = "loss.global";  // the loss averaged over ranks
std::string ZeroStateName(const ZeroUnit& u, const char* what);  // "zero.<unit>.<what>"

// Appends loss.global = all_reduce(loss, avg) (forward phase) and makes it a graph output.
void AppendGlobalLoss(ir::Graph& g);

}  // namespace zt::passes
