// Element ranges of unit flat buffers from N-rank slices.
#include "ckpt/reshard.h"

#include <algorithm>

namespace zt::ckpt {

Status ReadUnitRange(const passes::ZeroLayout& source, const SectionReader& read, const std::string& kind,
                     const passes::ZeroUnit& unit, int64_t begin, int64_t end, float* out) {
  const passes::ZeroUnit* src = nullptr;
  for (const auto& u : source.units)
    if (u.name == unit.name) src = &u;
  if (src == nullptr) return DataLoss("the checkpoint has no unit '" + unit.name + "'");
  if (src->numel != unit.numel) {
    return DataLoss("unit '" + unit.name + "' has " + std::to_string(src->numel) + " elements in the checkpoint, " +
                    std::to_string(unit.numel) + " in this model");
  }
  std::fill(out, out + (end - begin), 0.0f);
  int64_t real_end = std::min(end, src->numel);  // beyond numel: padding, zeros
  for (int64_t k = 0; k < source.world_size && begin < real_end; ++k) {
    int64_t s0 = k * src->shard, s1 = s0 + src->shard;
    int64_t a = std::max(begin, s0), b = std::min(real_end, s1);
    if (a >= b) continue;
    ZT_RETURN_IF_ERROR(read(static_cast<int>(k), SectionName(kind, unit.name), a - s0, b - a, out + (a - begin)));
  }
  return OkStatus();
}

Status CheckSameUnits(const passes::ZeroLayout& a, const passes::ZeroLayout& b) {
  if (a.units.size() != b.units.size()) {
    return DataLoss("the checkpoint groups parameters into " + std::to_string(a.units.size()) + " units, this model into " +
                    std::to_string(b.units.size()) + " (same model config, gather_unit and reduce_bucket_size?)");
  }
  for (size_t i = 0; i < a.units.size(); ++i) {
    const auto& x = a.units[i];
    const auto& y = b.units[i];
    bool same = x.name == y.name && x.numel == y.numel && x.params.size() == y.params.size();
    for (size_t k = 0; same && k < x.params.size(); ++k)
      same = x.params[k].name == y.params[k].name && x.params[k].offset == y.params[k].offset &&
             x.params[k].shape == y.params[k].shape;
    if (!same) return DataLoss("unit " + std::to_string(i) + " ('" + x.name + "' vs '" + y.name + "') differs between the checkpoint and this model");
  }
  return OkStatus();
}

}  // namespace zt::ckpt
