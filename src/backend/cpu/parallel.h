// ParallelFor: splits [0, n) into contiguous chunks of at least `grain` items over OpenMP threads.
// Invariant: the partition of [0, n) into chunks depends only on n, grain and the thread count, so
// a kernel that reduces within a chunk is deterministic for a fixed ZT_NUM_THREADS.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace zt {

template <typename F>
void ParallelFor(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t max_chunks = (n + grain - 1) / grain;
  int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), max_chunks));
  if (threads <= 1 || omp_in_parallel()) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    int t = omp_get_thread_num();
    int64_t begin = n * t / threads;
    int64_t end = n * (t + 1) / threads;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace zt
