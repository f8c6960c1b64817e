// Reading a checkpoint's state for a job of any world size. A checkpoint written by N ranks holds,
// for each (kind, unit), N slices of the unit's flat buffer: rank k owns [k * S, (k + 1) * S) with
// S = ceil(numel / N). A reader asks for any element range of the flat buffer; the pieces come
// from the source ranks whose slices overlap it (padding beyond numel reads as zeros).
// Invariant: the unit grouping and parameter offsets do not depend on the world size (see
// passes/zero.h), so any range of the same unit means the same elements under any N; mismatched
// units are an error naming the unit.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "core/status.h"
#include "passes/zero.h"

namespace zt::ckpt {

// Reads `count` f32 elements starting at element `first` of section "<kind>/<unit>" of the shard
// of source rank `rank`.
using SectionReader =
    std::function<Status(int rank, const std::string& section, int64_t first, int64_t count, float* out)>;

// Fills out[0, end - begin) with elements [begin, end) of (kind, unit)'s flat buffer as the
// source layout (world size `source.world_size`) stored it.
Status ReadUnitRange(const passes::ZeroLayout& source, const SectionReader& read, const std::string& kind,
                     const passes::ZeroUnit& unit, int64_t begin, int64_t end, float* out);

// Checks that two layouts group the same parameters into the same units at the same offsets.
Status CheckSameUnits(const passes::ZeroLayout& a, const passes::ZeroLayout& b);

inline constexpr const char* kStateKinds[] = {"master", "exp_avg", "exp_avg_sq"};
inline std::string SectionName(const std::string& kind, const std::string& unit) { return kind + "/" + unit; }

}  // namespace zt::ckpt
