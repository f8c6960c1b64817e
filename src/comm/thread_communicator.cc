// Shared-memory collectives for ranks that are threads.
#include "comm/thread_communicator.h"

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "core/dtype.h"

namespace zt::comm {

struct ThreadGroupState {
  explicit ThreadGroupState(int n) : world(n), slots(static_cast<size_t>(n)) {}
  int world;
  std::mutex mu;
  std::condition_variable cv;
  int64_t generation = 0;
  int arrived = 0;
  std::vector<const Tensor*> slots;  // each rank's input of the current collective
  bool broken = false;

  // Waits for every rank; returns false after the timeout (the group is then broken).
  bool Barrier(std::chrono::milliseconds timeout) {
    std::unique_lock<std::mutex> l(mu);
    if (broken) return false;
    int64_t gen = generation;
    if (++arrived == world) {
      arrived = 0;
      ++generation;
      cv.notify_all();
      return true;
    }
    if (!cv.wait_for(l, timeout, [&] { return generation != gen || broken; }) || broken) {
      broken = true;
      cv.notify_all();
      return false;
    }
    return true;
  }
};

namespace {

class DoneWork final : public Work {
 public:
  explicit DoneWork(Status s) : s_(std::move(s)) {}
  Status Wait(std::chrono::milliseconds) override { return s_; }

 private:
  Status s_;
};

float Load(const Tensor& t, int64_t i) {
  switch (t.dtype) {
    case DType::kF32: return static_cast<const float*>(t.data)[i];
    case DType::kBF16: return BF16ToFloat(static_cast<const BFloat16*>(t.data)[i]);
    case DType::kF16: return HalfToFloat(static_cast<const Half*>(t.data)[i]);
    default: ZT_CHECK(false) << "reductions need a floating dtype";
  }
  return 0;
}

void Store(const Tensor& t, int64_t i, float v) {
  switch (t.dtype) {
    case DType::kF32: static_cast<float*>(t.data)[i] = v; break;
    case DType::kBF16: static_cast<BFloat16*>(t.data)[i] = FloatToBF16(v); break;
    case DType::kF16: static_cast<Half*>(t.data)[i] = FloatToHalf(v); break;
    default: ZT_CHECK(false) << "reductions need a floating dtype";
  }
}

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<ThreadGroupState> g, int rank, std::chrono::milliseconds timeout)
      : g_(std::move(g)), rank_(rank) {
    timeout_ = timeout;
  }
  int rank() const override { return rank_; }
  int world_size() const override { return g_->world; }
  std::string Describe() const override {
    return "threads rank " + std::to_string(rank_) + "/" + std::to_string(g_->world);
  }

  std::unique_ptr<Work> AllGather(const Tensor& in, const Tensor& out) override {
    return Collective(in, [&] {
      size_t n = in.nbytes();
      for (int r = 0; r < g_->world; ++r) std::memcpy(static_cast<char*>(out.data) + r * n, g_->slots[r]->data, n);
    });
  }
  std::unique_ptr<Work> ReduceScatter(const Tensor& in, const Tensor& out, ReduceOp op) override {
    return Collective(in, [&] {
      int64_t s = out.numel();
      for (int64_t j = 0; j < s; ++j) Store(out, j, Reduce(rank_ * s + j, op));
    });
  }
  std::unique_ptr<Work> AllReduce(const Tensor& x, ReduceOp op) override {
    // Every rank reads every input before any rank writes: copy the result to scratch first.
    std::vector<float> result(static_cast<size_t>(x.numel()));
    return Collective(x, [&] {
      for (int64_t j = 0; j < x.numel(); ++j) result[j] = Reduce(j, op);
    }, [&] {
      for (int64_t j = 0; j < x.numel(); ++j) Store(x, j, result[j]);
    });
  }
  std::unique_ptr<Work> Broadcast(const Tensor& x, int root) override {
    std::vector<char> copy(x.nbytes());
    return Collective(x, [&] { std::memcpy(copy.data(), g_->slots[root]->data, x.nbytes()); },
                      [&] { std::memcpy(x.data, copy.data(), x.nbytes()); });
  }
  std::unique_ptr<Work> Send(const Tensor&, int, int) override {
    return std::make_unique<DoneWork>(Unimplemented("ThreadCommunicator has no point-to-point operations"));
  }
  std::unique_ptr<Work> Recv(const Tensor&, int, int) override {
    return std::make_unique<DoneWork>(Unimplemented("ThreadCommunicator has no point-to-point operations"));
  }
  std::unique_ptr<Work> Barrier() override {
    Tensor none;
    return Collective(none, [] {});
  }

 private:
  float Reduce(int64_t j, ReduceOp op) const {
    float acc = 0;
    for (int r = 0; r < g_->world; ++r) acc += Load(*g_->slots[r], j);
    return op == ReduceOp::kAvg ? acc / static_cast<float>(g_->world) : acc;
  }

  // Publish input, wait for all; read (everyone); wait for all; write own result.
  template <typename Read, typename Write = void (*)()>
  std::unique_ptr<Work> Collective(const Tensor& in, Read read, Write write = [] {}) {
    g_->slots[rank_] = &in;
    if (!g_->Barrier(timeout_)) return Broken();
    read();
    if (!g_->Barrier(timeout_)) return Broken();
    write();
    return std::make_unique<DoneWork>(OkStatus());
  }
  std::unique_ptr<Work> Broken() {
    return std::make_unique<DoneWork>(DeadlineExceeded(
        "rank " + std::to_string(rank_) + ": a thread-group collective timed out after " +
        std::to_string(timeout_.count()) + " ms waiting for the other ranks; the group cannot continue"));
  }

  std::shared_ptr<ThreadGroupState> g_;
  int rank_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> CreateThreadGroup(int world_size, std::chrono::milliseconds timeout) {
  ZT_CHECK_GE(world_size, 1);
  auto state = std::make_shared<ThreadGroupState>(world_size);
  std::vector<std::unique_ptr<Communicator>> out;
  for (int r = 0; r < world_size; ++r) out.push_back(std::make_unique<ThreadCommunicator>(state, r, timeout));
  return out;
}

}  // namespace zt::comm
