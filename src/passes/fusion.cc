// The list of fusion passes and the ZT_FUSION selection.
#include "passes/fusion.h"

#include <cstdio>
#include <cstdlib>

#include "core/settings.h"
#include "passes/fuse_adamw.h"
#include "passes/fuse_add_norm.h"
#include "passes/fuse_matmul_epilogue.h"

namespace zt::passes {

StatusOr<FusionSet> ParseFusionSet(const std::string& text) {
  FusionSet none{false, false, false, false};
  if (text == "1" || text == "default") return FusionSet{};
  if (text == "0" || text == "none") return none;
  if (text == "all") return FusionSet{true, true, true, true};
  FusionSet set = none;
  size_t from = 0;
  while (from <= text.size()) {
    size_t to = text.find(',', from);
    if (to == std::string::npos) to = text.size();
    const std::string item = text.substr(from, to - from);
    if (item == "add_norm") {
      set.add_norm = true;
    } else if (item == "matmul_gelu") {
      set.matmul_gelu = true;
    } else if (item == "matmul_bgrad") {
      set.matmul_bgrad = true;
    } else if (item == "adamw") {
      set.adamw = true;
    } else {
      return InvalidArgument("ZT_FUSION: unknown fusion '" + item + "' in '" + text +
                             "'; use 1 (default), all, 0, or a comma-separated list of add_norm, matmul_gelu, "
                             "matmul_bgrad, adamw");
    }
    from = to + 1;
  }
  return set;
}

FusionSet FusionFromSettings() {
  auto set = ParseFusionSet(settings::GetString("ZT_FUSION"));
  if (!set.ok()) {
    std::fprintf(stderr, "ztrain: error: %s\n", set.status().message().c_str());
    std::exit(2);
  }
  return *set;
}

std::vector<std::shared_ptr<Pass>> FusionPasses(const FusionSet& set) {
  std::vector<std::shared_ptr<Pass>> out;
  // In the order they run.
  if (set.add_norm) out.push_back(std::make_shared<FuseAddNorm>());
  if (set.matmul_gelu || set.matmul_bgrad)
    out.push_back(std::make_shared<FuseMatmulEpilogue>(FuseMatmulEpilogue::Options{set.matmul_gelu, set.matmul_bgrad}));
  if (set.adamw) out.push_back(std::make_shared<FuseAdamW>());  // multi-tensor AdamW (independent of the others)
  return out;
}

std::vector<std::shared_ptr<Pass>> FusionPasses() { return FusionPasses(FusionFromSettings()); }

}  // namespace zt::passes
