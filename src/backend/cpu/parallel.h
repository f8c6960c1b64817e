// ParallelFor: splits [0, n) into contiguous chunks of at least `grain` items over OpenMP threads.
// Invariant: the partition of [0, n) into chunks depends only on n, grain and the thread count, so
// a kernel that reduces within a chunk is deterministic for a fixed ZT_NUM_THREADS (and a team of
// the size asked for).
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>

namespace zt {

template <typename F>
void ParallelFor(int64_t n, int64_t grain, F&& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  // At most n / grain chunks, so that every chunk has at least `grain` items.
  int64_t max_chunks = n / grain;
  int threads = static_cast<int>(std::min<int64_t>(omp_get_max_threads(), max_chunks));
  if (threads <= 1 || omp_in_parallel()) {
    fn(int64_t{0}, n);
    return;
  }
#pragma omp parallel num_threads(threads)
  {
    // OpenMP may grant fewer threads than asked (dynamic adjustment, thread limits): split over
    // the team actually running, or the chunks of the missing threads would be skipped.
    int team = omp_get_num_threads();
    int t = omp_get_thread_num();
    int64_t begin = n * t / team;
    int64_t end = n * (t + 1) / team;
    if (begin < end) fn(begin, end);
  }
}

}  // namespace zt
