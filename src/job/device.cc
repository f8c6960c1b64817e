// Device choice for a training process.
#include "job/device.h"

#include "backend/cpu/cpu_backend.h"
#include "core/settings.h"
#ifdef ZT_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#endif

namespace zt::job {

StatusOr<std::unique_ptr<Backend>> CreateBackend(int local_rank) {
  std::string want = settings::GetString("ZT_DEVICE");
  if (want != "auto" && want != "cpu" && want != "cuda") {
    return InvalidArgument("ZT_DEVICE='" + want + "'; use 'auto', 'cpu' or 'cuda'");
  }
  if (want == "cpu") return std::unique_ptr<Backend>(std::make_unique<CpuBackend>());
#ifdef ZT_WITH_CUDA
  if (want == "cuda" || CudaDeviceAvailable()) {
    auto be = CudaBackend::Create(local_rank);
    if (!be.ok()) return be.status().WithContext("ZT_DEVICE=" + want + ", LOCAL_RANK " + std::to_string(local_rank));
    return std::unique_ptr<Backend>(std::move(*be));
  }
  return std::unique_ptr<Backend>(std::make_unique<CpuBackend>());
#else
  if (want == "cuda") {
    return FailedPrecondition("ZT_DEVICE=cuda, but this ztrain was built without CUDA; rebuild with -DZT_CUDA=ON or "
                              "set ZT_DEVICE=cpu");
  }
  (void)local_rank;
  return std::unique_ptr<Backend>(std::make_unique<CpuBackend>());
#endif
}

double PeakFlops(Backend& backend, config::Precision precision) {
#ifdef ZT_WITH_CUDA
  if (backend.kind() == DeviceKind::kCUDA) {
    DType d = precision == config::Precision::kBF16  ? DType::kBF16
              : precision == config::Precision::kF16 ? DType::kF16
                                                     : DType::kF32;
    return static_cast<CudaBackend&>(backend).PeakFlops(d);
  }
#endif
  (void)backend;
  (void)precision;
  return 0;
}

}  // namespace zt::job
