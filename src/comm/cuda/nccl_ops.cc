// NCCL communicator: the operations (host-waiting Communicator interface and the Enqueue* device
// path) and their Work objects. Invariants: operations reach NCCL in call order (pending
// send/recv are launched before any later operation); a Work never lets NCCL write into memory
// after it returns (unwaited Works wait in their destructor); staging buffers are freed in stream
// order after their operation, and staged outputs are copied back only after it finished.
#include <algorithm>
#include <optional>
#include <thread>

#include "comm/cuda/nccl_communicator_impl.h"

namespace zt::comm {
namespace {

using std::chrono::milliseconds;

class DoneWork final : public Work {
 public:
  explicit DoneWork(Status s) : status_(std::move(s)) {}
  Status Wait(milliseconds) override { return status_; }

 private:
  Status status_;
};

std::unique_ptr<Work> Done(Status s) { return std::make_unique<DoneWork>(std::move(s)); }

// A launched (or pending send/recv) operation, completed in Wait. Must not outlive its communicator.
class NcclWork final : public Work {
 public:
  NcclWork(NcclCommunicatorImpl* comm, std::shared_ptr<NcclOp> op, std::vector<NcclStaged> staged)
      : comm_(comm), op_(std::move(op)), staged_(std::move(staged)) {}
  ~NcclWork() override {
    if (!done_) (void)Wait(comm_->timeout());
  }
  Status Wait(milliseconds timeout) override {
    if (done_) return status_;
    done_ = true;
    if (!op_->launched) comm_->FlushP2P();
    status_ = op_->launch_status.ok() ? comm_->WaitFor(*op_, timeout) : op_->launch_status;
    Status u = comm_->Unstage(staged_, status_.ok());
    if (status_.ok()) status_ = u;
    return status_;
  }

 private:
  NcclCommunicatorImpl* comm_;
  std::shared_ptr<NcclOp> op_;
  std::vector<NcclStaged> staged_;
  bool done_ = false;
  Status status_;
};

std::optional<ncclDataType_t> ReduceType(DType t) {
  switch (t) {
    case DType::kF32: return ncclFloat32;
    case DType::kBF16: return ncclBfloat16;
    case DType::kF16: return ncclFloat16;
    default: return std::nullopt;
  }
}

ncclRedOp_t RedOp(ReduceOp op) { return op == ReduceOp::kSum ? ncclSum : ncclAvg; }

std::string Sig(const Tensor& t) { return std::string(DTypeName(t.dtype)) + "[" + std::to_string(t.numel()) + "]"; }

bool Overlap(const void* a, size_t na, const void* b, size_t nb) {
  auto x = reinterpret_cast<uintptr_t>(a), y = reinterpret_cast<uintptr_t>(b);
  return na > 0 && nb > 0 && x < y + nb && y < x + na;
}

Status CheckData(const std::string& op, const char* name, const Tensor& t) {
  if (t.numel() > 0 && t.data == nullptr) {
    return InvalidArgument(op + ": tensor '" + name + "' has " + std::to_string(t.numel()) + " elements but no data");
  }
  return OkStatus();
}

Status CheckGather(const std::string& op, const Tensor& in, const Tensor& out, int world) {
  if (in.dtype != out.dtype || out.numel() != world * in.numel()) {
    return InvalidArgument(op + ": out must be " + std::to_string(world) + " x in (" + Sig(in) + "), got " + Sig(out));
  }
  ZT_RETURN_IF_ERROR(CheckData(op, "in", in));
  return CheckData(op, "out", out);
}

Status CheckScatter(const std::string& op, const Tensor& in, const Tensor& out, int world) {
  if (!ReduceType(in.dtype) || in.dtype != out.dtype || in.numel() != world * out.numel()) {
    return InvalidArgument(op + ": needs f32, bf16 or f16 tensors with in = " + std::to_string(world) +
                           " x out, got in " + Sig(in) + ", out " + Sig(out));
  }
  ZT_RETURN_IF_ERROR(CheckData(op, "in", in));
  return CheckData(op, "out", out);
}

Status CheckReduce(const std::string& op, const Tensor& in, const Tensor& out) {
  if (!ReduceType(in.dtype) || in.dtype != out.dtype || in.numel() != out.numel()) {
    return InvalidArgument(op + ": needs two f32, bf16 or f16 tensors of one size and dtype, got in " + Sig(in) +
                           ", out " + Sig(out));
  }
  ZT_RETURN_IF_ERROR(CheckData(op, "in", in));
  return CheckData(op, "out", out);
}

// NCCL's in-place forms: all_gather with in = out's slice of `rank`, reduce_scatter with out = in's
// slice of `rank`, all_reduce with out = in. Any other overlap is refused.
Status CheckAlias(const std::string& op, const void* small, size_t small_bytes, const void* big, size_t big_bytes,
                  int rank) {
  if (!Overlap(small, small_bytes, big, big_bytes)) return OkStatus();
  if (small == static_cast<const char*>(big) + static_cast<size_t>(rank) * small_bytes) return OkStatus();
  return InvalidArgument(op + ": in and out overlap other than in NCCL's in-place form (the smaller tensor must be "
                              "exactly rank " + std::to_string(rank) + "'s slice of the larger)");
}

Status CheckPeer(const std::string& op, int peer, int tag, int rank, int world) {
  if (peer < 0 || peer >= world || peer == rank) {
    return InvalidArgument(op + ": peer " + std::to_string(peer) + " is not another rank of a world of " +
                           std::to_string(world) + " (this is rank " + std::to_string(rank) + ")");
  }
  if (tag < 0) return InvalidArgument(op + ": tag " + std::to_string(tag) + " is negative");
  return OkStatus();
}

// Issues a host-waiting operation on the communicator's stream; `staged` are its staging buffers.
template <typename F>
std::unique_ptr<Work> Launch(NcclCommunicatorImpl& c, const std::string& name, std::vector<NcclStaged> staged,
                             F&& call) {
  c.FlushP2P();
  Status s = c.Issue(name, std::forward<F>(call));
  if (!s.ok()) {
    (void)c.Unstage(staged, false);
    return Done(s);
  }
  auto op = std::make_shared<NcclOp>();
  op->name = name;
  op->launched = true;
  if (Status r = c.Record(*op, c.stream(), true, op); !r.ok()) {
    // A broken device: the staging buffers (if any) are left allocated rather than freed under a
    // running operation.
    return Done(r);
  }
  return std::make_unique<NcclWork>(&c, std::move(op), std::move(staged));
}

}  // namespace

Status NcclCommunicatorImpl::Failure() {
  std::lock_guard<std::mutex> l(state_mu_);
  return broken_;
}

StatusOr<void*> NcclCommunicatorImpl::Stage(const std::string& op, const Tensor& t, bool input, bool output,
                                            std::vector<NcclStaged>& staged) {
  if (t.nbytes() == 0) return t.data;
  cudaPointerAttributes a{};
  if (cudaPointerGetAttributes(&a, t.data) != cudaSuccess) {
    (void)cudaGetLastError();
    a.type = cudaMemoryTypeUnregistered;
  }
  if (a.type == cudaMemoryTypeDevice || a.type == cudaMemoryTypeManaged) {
    if (a.type == cudaMemoryTypeDevice && a.device != device_) {
      return InvalidArgument(op + ": a tensor is memory of cuda:" + std::to_string(a.device) + ", but " + Describe() +
                             " uses cuda:" + std::to_string(device_));
    }
    return t.data;
  }
  NcclStaged s{t.data, nullptr, t.nbytes(), output};
  ZT_RETURN_IF_ERROR(CudaStatusOf(cudaMallocAsync(&s.dev, s.bytes, stream_), op + ": staging a host tensor"));
  staged.push_back(s);
  if (input) {
    ZT_RETURN_IF_ERROR(CudaStatusOf(cudaMemcpyAsync(s.dev, s.host, s.bytes, cudaMemcpyHostToDevice, stream_),
                                    op + ": copying a host tensor to the device"));
  }
  return s.dev;
}

Status NcclCommunicatorImpl::Unstage(std::vector<NcclStaged>& staged, bool copy) {
  Status first;
  if (copy) {
    // The operation finished (its event completed), so its output can be read from any stream.
    for (const NcclStaged& s : staged) {
      if (!s.copy_back || !first.ok()) continue;
      first = CudaStatusOf(cudaMemcpyAsync(s.host, s.dev, s.bytes, cudaMemcpyDeviceToHost, copy_stream_),
                           "copying a staged result to the host");
    }
    if (first.ok()) first = CudaStatusOf(cudaStreamSynchronize(copy_stream_), "copying staged results to the host");
  }
  for (const NcclStaged& s : staged) (void)cudaFreeAsync(s.dev, stream_);
  staged.clear();
  return first;
}

Status NcclCommunicatorImpl::WaitFor(const NcclOp& done, milliseconds timeout) {
  const auto start = NcclClock::now();
  for (int spins = 0;; ++spins) {
    cudaError_t e = cudaEventQuery(done.event);
    // An aborted operation completes too: it succeeded only if nothing failed meanwhile.
    if (e == cudaSuccess) return Failure();
    if (e != cudaErrorNotReady) {
      (void)cudaGetLastError();
      return CudaStatusOf(e, done.name + " on " + Describe());
    }
    ZT_RETURN_IF_ERROR(PollAsync(done.name));
    ZT_RETURN_IF_ERROR(Failure());  // the watchdog may have failed it
    auto waited = std::chrono::duration_cast<milliseconds>(NcclClock::now() - start);
    if (waited >= timeout) return Fail(done.name, ncclSuccess, waited);
    if (spins < 200) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
}

Status NcclCommunicatorImpl::Track(const std::string& op, cudaStream_t s) {
  cudaStreamCaptureStatus capturing = cudaStreamCaptureStatusNone;
  ZT_RETURN_IF_ERROR(CudaStatusOf(cudaStreamIsCapturing(s, &capturing), op + ": querying the stream"));
  if (capturing != cudaStreamCaptureStatusNone) return OkStatus();  // Watch() after the graph launch
  auto done = std::make_shared<NcclOp>();
  done->name = op;
  done->launched = true;
  return Record(*done, s, true, done);
}

std::shared_ptr<NcclOp> NcclCommunicatorImpl::PendingBatch() {
  if (pending_batch_ == nullptr) pending_batch_ = std::make_shared<NcclOp>();
  return pending_batch_;
}

void NcclCommunicatorImpl::AddPending(bool send, const Tensor& dev, int peer, const std::shared_ptr<NcclOp>& batch) {
  pending_.push_back({send, dev, peer});
  std::string what = (send ? "send to rank " : "recv from rank ") + std::to_string(peer);
  batch->name += (batch->name.empty() ? "" : ", ") + what;
}

void NcclCommunicatorImpl::FlushP2P() {
  if (pending_.empty()) return;
  std::shared_ptr<NcclOp> batch = std::move(pending_batch_);
  std::vector<PendingP2P> items = std::move(pending_);
  pending_batch_.reset();
  pending_.clear();
  batch->launched = true;
  // Both directions of an exchange go in one group, so NCCL progresses them together.
  batch->launch_status = Issue(batch->name, [&](ncclComm_t c) {
    ncclResult_t r = ncclGroupStart();
    if (r != ncclSuccess) return r;
    ncclResult_t first = ncclSuccess;
    for (const PendingP2P& p : items) {
      ncclResult_t q = p.send ? ncclSend(p.x.data, p.x.nbytes(), ncclUint8, p.peer, c, stream_)
                              : ncclRecv(p.x.data, p.x.nbytes(), ncclUint8, p.peer, c, stream_);
      if (q != ncclSuccess && first == ncclSuccess) first = q;
    }
    r = ncclGroupEnd();
    return first != ncclSuccess ? first : r;
  });
  if (batch->launch_status.ok()) batch->launch_status = Record(*batch, stream_, true, batch);
}

// --- host-waiting interface ---

std::unique_ptr<Work> NcclCommunicatorImpl::AllGather(const Tensor& in, const Tensor& out) {
  const std::string name = "all_gather";
  if (Status s = CheckUsable(name); !s.ok()) return Done(s);
  if (Status s = CheckGather(name, in, out, world_size_); !s.ok()) return Done(s);
  if (in.numel() == 0) return Done(OkStatus());
  std::vector<NcclStaged> staged;
  auto din = Stage(name, in, true, false, staged);
  if (!din.ok()) return (void)Unstage(staged, false), Done(din.status());
  auto dout = Stage(name, out, false, true, staged);
  if (!dout.ok()) return (void)Unstage(staged, false), Done(dout.status());
  if (Status s = CheckAlias(name, *din, in.nbytes(), *dout, out.nbytes(), rank_); !s.ok()) {
    return (void)Unstage(staged, false), Done(s);
  }
  const size_t bytes = in.nbytes();
  return Launch(*this, name, std::move(staged), [&](ncclComm_t c) {
    return ncclAllGather(*din, *dout, bytes, ncclUint8, c, stream_);
  });
}

std::unique_ptr<Work> NcclCommunicatorImpl::ReduceScatter(const Tensor& in, const Tensor& out, ReduceOp op) {
  const std::string name = std::string("reduce_scatter(") + ReduceOpName(op) + ")";
  if (Status s = CheckUsable(name); !s.ok()) return Done(s);
  if (Status s = CheckScatter(name, in, out, world_size_); !s.ok()) return Done(s);
  if (out.numel() == 0) return Done(OkStatus());
  std::vector<NcclStaged> staged;
  auto din = Stage(name, in, true, false, staged);
  if (!din.ok()) return (void)Unstage(staged, false), Done(din.status());
  auto dout = Stage(name, out, false, true, staged);
  if (!dout.ok()) return (void)Unstage(staged, false), Done(dout.status());
  if (Status s = CheckAlias(name, *dout, out.nbytes(), *din, in.nbytes(), rank_); !s.ok()) {
    return (void)Unstage(staged, false), Done(s);
  }
  const size_t count = static_cast<size_t>(out.numel());
  const ncclDataType_t type = *ReduceType(in.dtype);
  return Launch(*this, name, std::move(staged), [&](ncclComm_t c) {
    return ncclReduceScatter(*din, *dout, count, type, RedOp(op), c, stream_);
  });
}

std::unique_ptr<Work> NcclCommunicatorImpl::AllReduce(const Tensor& x, ReduceOp op) {
  const std::string name = std::string("all_reduce(") + ReduceOpName(op) + ")";
  if (Status s = CheckUsable(name); !s.ok()) return Done(s);
  if (Status s = CheckReduce(name, x, x); !s.ok()) return Done(s);
  if (x.numel() == 0) return Done(OkStatus());
  std::vector<NcclStaged> staged;
  auto d = Stage(name, x, true, true, staged);
  if (!d.ok()) return (void)Unstage(staged, false), Done(d.status());
  const size_t count = static_cast<size_t>(x.numel());
  const ncclDataType_t type = *ReduceType(x.dtype);
  return Launch(*this, name, std::move(staged), [&](ncclComm_t c) {
    return ncclAllReduce(*d, *d, count, type, RedOp(op), c, stream_);
  });
}

std::unique_ptr<Work> NcclCommunicatorImpl::Broadcast(const Tensor& x, int root) {
  const std::string name = "broadcast from rank " + std::to_string(root);
  if (Status s = CheckUsable(name); !s.ok()) return Done(s);
  if (root < 0 || root >= world_size_) {
    return Done(InvalidArgument("broadcast: root " + std::to_string(root) + " is not a rank of " + Describe()));
  }
  if (Status s = CheckData(name, "x", x); !s.ok()) return Done(s);
  if (x.numel() == 0) return Done(OkStatus());
  std::vector<NcclStaged> staged;
  auto d = Stage(name, x, rank_ == root, rank_ != root, staged);
  if (!d.ok()) return (void)Unstage(staged, false), Done(d.status());
  const size_t bytes = x.nbytes();
  return Launch(*this, name, std::move(staged), [&](ncclComm_t c) {
    return ncclBroadcast(*d, *d, bytes, ncclUint8, root, c, stream_);
  });
}

std::unique_ptr<Work> NcclCommunicatorImpl::Barrier() {
  const std::string name = "barrier";
  if (Status s = CheckUsable(name); !s.ok()) return Done(s);
  return Launch(*this, name, {}, [&](ncclComm_t c) {
    return ncclAllReduce(scratch_, scratch_, 1, ncclFloat32, ncclSum, c, stream_);
  });
}

std::unique_ptr<Work> NcclCommunicatorImpl::Send(const Tensor& x, int dst, int tag) {
  const std::string name = "send to rank " + std::to_string(dst) + " (tag " + std::to_string(tag) + ")";
  if (Status s = CheckUsable(name); !s.ok()) return Done(s);
  if (Status s = CheckPeer(name, dst, tag, rank_, world_size_); !s.ok()) return Done(s);
  if (Status s = CheckData(name, "x", x); !s.ok()) return Done(s);
  if (x.numel() == 0) return Done(OkStatus());
  std::vector<NcclStaged> staged;
  auto d = Stage(name, x, true, false, staged);
  if (!d.ok()) return (void)Unstage(staged, false), Done(d.status());
  auto batch = PendingBatch();
  AddPending(true, Tensor(*d, x.dtype, x.shape), dst, batch);
  return std::make_unique<NcclWork>(this, std::move(batch), std::move(staged));
}

std::unique_ptr<Work> NcclCommunicatorImpl::Recv(const Tensor& x, int src, int tag) {
  const std::string name = "recv from rank " + std::to_string(src) + " (tag " + std::to_string(tag) + ")";
  if (Status s = CheckUsable(name); !s.ok()) return Done(s);
  if (Status s = CheckPeer(name, src, tag, rank_, world_size_); !s.ok()) return Done(s);
  if (Status s = CheckData(name, "x", x); !s.ok()) return Done(s);
  if (x.numel() == 0) return Done(OkStatus());
  std::vector<NcclStaged> staged;
  auto d = Stage(name, x, false, true, staged);
  if (!d.ok()) return (void)Unstage(staged, false), Done(d.status());
  auto batch = PendingBatch();
  AddPending(false, Tensor(*d, x.dtype, x.shape), src, batch);
  return std::make_unique<NcclWork>(this, std::move(batch), std::move(staged));
}

// --- device path ---

Status NcclCommunicatorImpl::EnqueueAllGather(const Tensor& in, const Tensor& out, cudaStream_t s) {
  const std::string name = "all_gather";
  ZT_RETURN_IF_ERROR(CheckUsable(name));
  ZT_RETURN_IF_ERROR(CheckGather(name, in, out, world_size_));
  ZT_RETURN_IF_ERROR(CheckAlias(name, in.data, in.nbytes(), out.data, out.nbytes(), rank_));
  if (in.numel() == 0) return OkStatus();
  FlushP2P();
  ZT_RETURN_IF_ERROR(Issue(name, [&](ncclComm_t c) {
    return ncclAllGather(in.data, out.data, in.nbytes(), ncclUint8, c, s);
  }));
  return Track(name, s);
}

Status NcclCommunicatorImpl::EnqueueReduceScatter(const Tensor& in, const Tensor& out, ReduceOp op, cudaStream_t s) {
  const std::string name = std::string("reduce_scatter(") + ReduceOpName(op) + ")";
  ZT_RETURN_IF_ERROR(CheckUsable(name));
  ZT_RETURN_IF_ERROR(CheckScatter(name, in, out, world_size_));
  ZT_RETURN_IF_ERROR(CheckAlias(name, out.data, out.nbytes(), in.data, in.nbytes(), rank_));
  if (out.numel() == 0) return OkStatus();
  FlushP2P();
  ZT_RETURN_IF_ERROR(Issue(name, [&](ncclComm_t c) {
    return ncclReduceScatter(in.data, out.data, static_cast<size_t>(out.numel()), *ReduceType(in.dtype), RedOp(op),
                             c, s);
  }));
  return Track(name, s);
}

Status NcclCommunicatorImpl::EnqueueAllReduce(const Tensor& in, const Tensor& out, ReduceOp op, cudaStream_t s) {
  const std::string name = std::string("all_reduce(") + ReduceOpName(op) + ")";
  ZT_RETURN_IF_ERROR(CheckUsable(name));
  ZT_RETURN_IF_ERROR(CheckReduce(name, in, out));
  if (in.data != out.data && Overlap(in.data, in.nbytes(), out.data, out.nbytes())) {
    return InvalidArgument(name + ": in and out overlap without being the same tensor");
  }
  if (in.numel() == 0) return OkStatus();
  FlushP2P();
  ZT_RETURN_IF_ERROR(Issue(name, [&](ncclComm_t c) {
    return ncclAllReduce(in.data, out.data, static_cast<size_t>(in.numel()), *ReduceType(in.dtype), RedOp(op), c, s);
  }));
  return Track(name, s);
}

}  // namespace zt::comm
