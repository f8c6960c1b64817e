// The list of fusion passes and the ZT_FUSION switch.
#include "passes/fusion.h"

#include <cstdio>
#include <cstdlib>

#include "core/settings.h"
#include "passes/fuse_adamw.h"
#include "passes/fuse_add_norm.h"
#include "passes/fuse_matmul_epilogue.h"

namespace zt::passes {

bool FusionEnabled() {
  auto on = settings::GetBool("ZT_FUSION");
  if (!on.ok()) {
    std::fprintf(stderr, "ztrain: error: %s\n", on.status().message().c_str());
    std::exit(2);
  }
  return *on;
}

std::vector<std::shared_ptr<Pass>> FusionPasses() {
  std::vector<std::shared_ptr<Pass>> out;
  if (!FusionEnabled()) return out;
  // Each fusion pass adds itself here, in the order it must run.
  out.push_back(std::make_shared<FuseAddNorm>());
  out.push_back(std::make_shared<FuseMatmulEpilogue>());
  out.push_back(std::make_shared<FuseAdamW>());  // multi-tensor AdamW (independent of the others)
  return out;
}

}  // namespace zt::passes
