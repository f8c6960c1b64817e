// Ring reduce-scatter and ring all-gather over gloo's unbound-buffer transport, the two halves
// of every reduction of the Gloo communicator. Invariant (what makes reductions deterministic
// and rank-independent): chunk c is summed in f32 along the ring in the fixed order c+1, c+2,
// ..., c (mod N), each partial sum travelling once to the next rank; nothing depends on timing.
// The all-gather only copies, so every rank ends with the same bits. Every wait is bounded by
// the operation's deadline; a gloo exception becomes Fail() naming the ring neighbour involved.
#include <cstring>
#include <exception>

#include "comm/gloo_communicator_impl.h"

namespace zt::comm {
namespace {

int Mod(int64_t a, int n) { return static_cast<int>(((a % n) + n) % n); }

// dst[i] = src chunk elements [begin, begin + n_valid) as f32, then zeros up to `chunk`.
template <typename T>
void LoadF32(const T* src, int64_t begin, int64_t n_valid, int64_t chunk, float* dst) {
  for (int64_t i = 0; i < n_valid; ++i) dst[i] = ToF32(src[begin + i]);
  for (int64_t i = n_valid; i < chunk; ++i) dst[i] = 0.0f;
}

// acc[i] = partial[i] + own[i]: the partial sum from the left neighbour plus this rank's value.
template <typename T>
void AddOwn(const float* partial, const T* src, int64_t begin, int64_t n_valid, int64_t chunk, float* acc) {
  for (int64_t i = 0; i < n_valid; ++i) acc[i] = partial[i] + ToF32(src[begin + i]);
  for (int64_t i = n_valid; i < chunk; ++i) acc[i] = partial[i];
}

template <typename Fn>
void Dispatch(DType dtype, const void* p, Fn&& fn) {
  switch (dtype) {
    case DType::kF32: return fn(static_cast<const float*>(p));
    case DType::kBF16: return fn(static_cast<const BFloat16*>(p));
    case DType::kF16: return fn(static_cast<const Half*>(p));
    default: ZT_CHECK(false) << "ring reduction of " << DTypeName(dtype) << " (callers check the dtype)";
  }
}

int64_t ValidIn(int64_t chunk_index, int64_t chunk, int64_t total) {
  int64_t n = total - chunk_index * chunk;
  return n < 0 ? 0 : (n > chunk ? chunk : n);
}

}  // namespace

Status GlooCommunicator::RingReduceScatter(const std::string& op, const void* in, DType dtype, int64_t valid,
                                           int64_t chunk, float* acc, float* tmp, uint64_t slot,
                                           Clock::time_point deadline) {
  const int n = world_size_;
  const int left = Mod(rank_ - 1, n), right = Mod(rank_ + 1, n);
  const size_t chunk_bytes = static_cast<size_t>(chunk) * sizeof(float);
  // Step s sends the partial sum of chunk rank-1-s (held in acc) to the right and receives the
  // partial sum of chunk rank-2-s from the left; after n-1 steps acc holds chunk `rank` in full.
  int first = Mod(rank_ - 1, n);
  Dispatch(dtype, in, [&](auto* src) { LoadF32(src, first * chunk, ValidIn(first, chunk, valid), chunk, acc); });
  // Declared outside the try: they must outlive Fail(), which closes the connections.
  std::unique_ptr<gloo::transport::UnboundBuffer> send_buf, recv_buf;
  int peer = -1;
  try {
    send_buf = context_->createUnboundBuffer(acc, chunk_bytes);
    recv_buf = context_->createUnboundBuffer(tmp, chunk_bytes);
    for (int s = 0; s < n - 1; ++s) {
      const int cr = Mod(rank_ - 2 - s, n);
      peer = right;
      send_buf->send(right, slot);
      peer = left;
      recv_buf->recv(left, slot);
      if (!recv_buf->waitRecv(Remaining(deadline))) throw std::runtime_error("receive was aborted");
      peer = right;
      if (!send_buf->waitSend(Remaining(deadline))) throw std::runtime_error("send was aborted");
      Dispatch(dtype, in, [&](auto* src) { AddOwn(tmp, src, cr * chunk, ValidIn(cr, chunk, valid), chunk, acc); });
    }
  } catch (const std::exception& e) {
    return Fail(op, peer, e.what());
  } catch (...) {
    return Fail(op, peer, "unknown exception from gloo");
  }
  return OkStatus();
}

Status GlooCommunicator::RingAllGather(const std::string& op, void* base, size_t elem_size, int64_t total,
                                       int64_t chunk, uint64_t slot, Clock::time_point deadline) {
  const int n = world_size_;
  const int left = Mod(rank_ - 1, n), right = Mod(rank_ + 1, n);
  const size_t bytes = static_cast<size_t>(total) * elem_size;
  // Two buffers over the same memory: gloo allows one pending operation per buffer, and each
  // step sends one chunk while receiving another. Declared outside the try (see above).
  std::unique_ptr<gloo::transport::UnboundBuffer> send_buf, recv_buf;
  int peer = -1;
  try {
    send_buf = context_->createUnboundBuffer(base, bytes);
    recv_buf = context_->createUnboundBuffer(base, bytes);
    for (int s = 0; s < n - 1; ++s) {
      // Step s forwards chunk rank-s (own at s=0, received at s-1) and receives chunk rank-1-s.
      const int cs = Mod(rank_ - s, n), cr = Mod(rank_ - 1 - s, n);
      const size_t send_len = static_cast<size_t>(ValidIn(cs, chunk, total)) * elem_size;
      const size_t recv_len = static_cast<size_t>(ValidIn(cr, chunk, total)) * elem_size;
      const size_t unit = static_cast<size_t>(chunk) * elem_size;
      peer = right;
      if (send_len > 0) send_buf->send(right, slot, cs * unit, send_len);
      peer = left;
      if (recv_len > 0) {
        recv_buf->recv(left, slot, cr * unit, recv_len);
        if (!recv_buf->waitRecv(Remaining(deadline))) throw std::runtime_error("receive was aborted");
      }
      peer = right;
      if (send_len > 0 && !send_buf->waitSend(Remaining(deadline))) throw std::runtime_error("send was aborted");
    }
  } catch (const std::exception& e) {
    return Fail(op, peer, e.what());
  } catch (...) {
    return Fail(op, peer, "unknown exception from gloo");
  }
  return OkStatus();
}

}  // namespace zt::comm
