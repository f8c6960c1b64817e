// CPU kernels of the collective ops: they call the executor's Communicator (Gloo for CPU jobs)
// and wait for completion with its timeout, so a dead peer is an error naming it, not a hang.
#pragma once

namespace zt {
class KernelRegistry;
void RegisterCollectiveCpuKernels(KernelRegistry& r);
}  // namespace zt
