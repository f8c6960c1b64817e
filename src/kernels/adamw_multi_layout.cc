// The checked adamw_multi layout of kernels/adamw_multi_layout.h.
#include "kernels/adamw_multi_layout.h"

#include "core/check.h"

namespace zt {

ir::AdamWMultiLayout AdamWMultiLayoutOf(const KernelContext& c) {
  const int64_t k = c.attrs.GetInt("tensors");
  const auto l = ir::AdamWMultiLayout::Of(k, c.inputs.size());
  ZT_CHECK_EQ(static_cast<int64_t>(c.inputs.size()), l.inputs());
  ZT_CHECK_EQ(static_cast<int64_t>(c.outputs.size()), l.outputs());
  // Outputs alias inputs (in place): kernels write through the outputs, read through the inputs.
  for (size_t o = 0; o < c.outputs.size(); ++o)
    ZT_CHECK(c.outputs[o].data == c.inputs[o + ir::kAdamWMultiShift].data) << "adamw_multi must run in place";
  return l;
}

}  // namespace zt
