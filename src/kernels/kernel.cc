// Kernel registry.
#include "kernels/kernel.h"

#ifdef ZT_WITH_CUDA
#include "kernels/cuda/registry.h"
#endif

namespace zt {

KernelRegistry& KernelRegistry::Global() {
  static KernelRegistry* r = [] {
    auto* reg = new KernelRegistry();
    RegisterCpuKernels(*reg);
#ifdef ZT_WITH_CUDA
    RegisterCudaKernels(*reg);
#endif
    return reg;
  }();
  return *r;
}

void KernelRegistry::Register(const std::string& op, DeviceKind device, KernelFn fn) {
  ZT_CHECK(fn != nullptr);
  bool inserted = kernels_.emplace(std::make_pair(op, device), fn).second;
  ZT_CHECK(inserted) << "kernel for '" << op << "' on " << DeviceKindName(device) << " registered twice";
}

KernelFn KernelRegistry::Find(const std::string& op, DeviceKind device) const {
  auto it = kernels_.find({op, device});
  return it == kernels_.end() ? nullptr : it->second;
}

}  // namespace zt
