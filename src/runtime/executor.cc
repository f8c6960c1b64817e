// Executor: plan-bound execution of a Program on a Backend (eager, or CUDA graphs on CUDA).
#include "runtime/executor.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <set>

#include "core/logging.h"
#include "core/settings.h"
#include "ir/op_registry.h"
#include "passes/memory_planner.h"
#ifdef ZT_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/cuda_graph.h"
#endif

namespace zt {
namespace {

// Writes up to this size go through a pinned staging buffer of their own (asynchronous, and the
// caller's memory is free again at once); larger ones (parameter initialisation) copy directly.
constexpr size_t kStagedWriteLimit = size_t{4} << 20;

int MaskIndex(PhaseMask p) { return (p.forward ? 1 : 0) | (p.backward ? 2 : 0) | (p.optimizer ? 4 : 0); }

}  // namespace

struct Executor::DeviceState {
  bool graphs = false;
  struct Mask {
    int64_t eager_runs = 0;
    bool eager_only = false;  // capture failed once: never try again
#ifdef ZT_WITH_CUDA
    std::unique_ptr<CudaGraphExec> exec;
#endif
  };
  std::array<Mask, 8> masks;
  bool warned = false;
  struct Staging {
    void* pinned = nullptr;
    std::unique_ptr<Event> done;  // recorded after the copy out of `pinned`
    bool pending = false;
  };
  std::map<const ir::Value*, Staging> staging;
};

bool Executor::IsUncapturable(const std::string& op) {
  // Kernels that must run eagerly (host work per step, unsupported calls under capture). None
  // today: NCCL collectives (2.28) and every built-in kernel are capturable.
  static const std::set<std::string> kDenied = {};
  return kDenied.count(op) > 0;
}

bool Executor::cuda_graphs() const { return device_->graphs; }

bool PhaseMask::Has(ir::Phase p) const {
  switch (p) {
    case ir::Phase::kForward: return forward;
    case ir::Phase::kBackward: return backward;
    case ir::Phase::kOptimizer: return optimizer;
  }
  return false;
}

static StatusOr<ExecMemoryMode> ModeFromSettings() {
  std::string m = settings::GetString("ZT_EXEC_MEMORY");
  if (m == "arena") return ExecMemoryMode::kArena;
  if (m == "dynamic") return ExecMemoryMode::kDynamic;
  return InvalidArgument("ZT_EXEC_MEMORY='" + m + "'; use 'arena' or 'dynamic'");
}

Executor::Executor(Program& program, Backend& backend, ExecMemoryMode mode, comm::Communicator* comm, bool poison)
    : program_(program),
      backend_(backend),
      mode_(mode),
      comm_(comm),
      poison_(poison),
      device_(std::make_unique<DeviceState>()) {}

StatusOr<std::unique_ptr<Executor>> Executor::Create(Program& program, Backend& backend,
                                                     const ExecutorOptions& options) {
  ExecMemoryMode mode;
  if (options.memory) {
    mode = *options.memory;
  } else {
    ZT_ASSIGN_OR_RETURN(mode, ModeFromSettings());
  }
  bool graphs = false;
#ifdef ZT_WITH_CUDA
  if (backend.kind() == DeviceKind::kCUDA && mode == ExecMemoryMode::kArena) {
    if (options.cuda_graphs) {
      graphs = *options.cuda_graphs;
    } else {
      ZT_ASSIGN_OR_RETURN(graphs, settings::GetBool("ZT_CUDA_GRAPHS"));
    }
  }
#endif
  if (program.target() == ir::Target::kCuda && backend.kind() != DeviceKind::kCUDA) {
    return InvalidArgument("the program of " + program.graph().name() + " was planned for CUDA (its workspaces are "
                           "sized for the CUDA kernels) and cannot run on " + backend.Describe() +
                           "; compile it for the CPU");
  }
  ZT_ASSIGN_OR_RETURN(bool profile, settings::GetBool("ZT_PROFILE"));
  if (profile) graphs = false;  // the profiler times nodes one by one
  auto e = std::unique_ptr<Executor>(new Executor(program, backend, mode, options.comm, options.poison));
  e->device_->graphs = graphs;
  if (profile) e->profiler_ = std::make_unique<OpProfiler>();
  ZT_RETURN_IF_ERROR(e->Prepare());
  return e;
}

Executor::~Executor() {
  backend_.Synchronize();
#ifdef ZT_WITH_CUDA
  if (backend_.kind() == DeviceKind::kCUDA) {
    auto& cuda = static_cast<CudaBackend&>(backend_);
    for (auto& [v, st] : device_->staging) cuda.FreePinned(st.pinned);
  }
#endif
  device_.reset();
  for (Buffer& b : arenas_) backend_.Free(b);
  for (auto& [v, b] : dynamic_) backend_.Free(b);
}

bool Executor::AddWait(NodeExec& s, const ir::Node* p) {
  if (p == nullptr || p->stream == s.node->stream) return false;
  if (std::find(s.waits.begin(), s.waits.end(), p) != s.waits.end()) return false;
  s.waits.push_back(p);
  return true;
}

// The plan reuses an intermediate's bytes once its live range has ended; with several streams
// that is only safe once every node that touched the old value has finished, so a node whose
// output (or workspace) takes memory last touched on another stream waits for that stream's last
// such node. (One stream is in order, so its own earlier nodes need no event.)
void Executor::AddMemoryReuseWaits() {
  const ir::Graph& g = program_.graph();
  const int n = static_cast<int>(steps_.size());
  struct Extent {
    const ir::Value* root;
    int category;
    int64_t begin, end;
    int def, last;  // schedule indices
    std::map<int, int> last_touch;  // stream -> last node index touching it
  };
  std::vector<Extent> extents;
  std::map<const ir::Value*, size_t> at;
  for (const auto& [root, lr] : ranges_) {
    if (lr.def < 0 || !root->offset.has_value() || root->nbytes() == 0) continue;
    at[root] = extents.size();
    extents.push_back({root, static_cast<int>(passes::ArenaCategory(root)), *root->offset,
                       *root->offset + static_cast<int64_t>(root->nbytes()), lr.def, lr.end, {}});
  }
  for (int i = 0; i < n; ++i) {
    const ir::Node* node = g.nodes()[i].get();
    auto touch = [&](const ir::Value* v) {
      auto it = at.find(passes::AliasRoot(v));
      if (it == at.end()) return;
      int& last = extents[it->second].last_touch[node->stream];
      last = std::max(last, i);
    };
    for (const ir::Value* v : node->inputs) touch(v);
    for (const ir::Value* v : node->outputs) touch(v);
  }
  int last_ws[8];
  std::fill(std::begin(last_ws), std::end(last_ws), -1);
  for (int i = 0; i < n; ++i) {
    NodeExec& s = steps_[i];
    const ir::Node* node = s.node;
    auto wait_for = [&](int j) {
      if (AddWait(s, g.nodes()[j].get())) ++stats_.memory_reuse_waits;
    };
    for (const ir::Value* o : node->outputs) {
      auto it = at.find(passes::AliasRoot(o));
      if (it == at.end() || extents[it->second].def != i) continue;
      const Extent& mine = extents[it->second];
      for (const Extent& e : extents) {
        if (e.category != mine.category || e.last >= i || e.end <= mine.begin || mine.end <= e.begin) continue;
        for (const auto& [stream, j] : e.last_touch)
          if (j < i) wait_for(j);
      }
    }
    if (s.workspace_bytes > 0) {  // one workspace region serves every node
      for (int k = 0; k < 8; ++k)
        if (k != node->stream && last_ws[k] >= 0) wait_for(last_ws[k]);
      if (node->stream >= 0 && node->stream < 8) last_ws[node->stream] = i;
    }
  }
}

Status Executor::Prepare() {
  const ir::Graph& g = program_.graph();
  ranges_ = passes::ComputeLiveRanges(g);
  int n = static_cast<int>(g.nodes().size());
  std::map<const ir::Node*, int> index;
  for (int i = 0; i < n; ++i) index[g.nodes()[i].get()] = i;
  for (int i = 0; i < n; ++i) {
    const ir::Node* node = g.nodes()[i].get();
    NodeExec s{node, KernelRegistry::Global().Find(node->op->name, backend_.kind()),
               ir::NodeWorkspace(*node, program_.target()), {}, {}};
    if (s.kernel == nullptr) {
      return Unimplemented(g.Describe(node) + ": no " + DeviceKindName(backend_.kind()) + " kernel for op '" +
                           node->op->name + "'");
    }
    for (const ir::Value* in : node->inputs) AddWait(s, in->producer);
    for (const ir::Node* d : node->deps) AddWait(s, d);
    steps_.push_back(std::move(s));
  }
  if (mode_ == ExecMemoryMode::kArena) AddMemoryReuseWaits();
  for (auto& s : steps_)
    for (const ir::Node* w : s.waits) steps_[index[w]].record_event = true;
  for (auto& s : steps_)
    if (s.record_event) events_[s.node] = backend_.CreateEvent();
  for (const auto& s : steps_) {
    auto k = static_cast<StreamKind>(s.node->stream);
    if (k != StreamKind::kCompute &&
        std::find(side_streams_.begin(), side_streams_.end(), k) == side_streams_.end()) {
      side_streams_.push_back(k);
      join_events_.push_back(backend_.CreateEvent());
    }
    if (device_->graphs && IsUncapturable(s.node->op->name)) {
      ZT_LOG(INFO) << g.Describe(s.node) << ": op '" << s.node->op->name
                   << "' cannot be captured into a CUDA graph; the program runs eagerly";
      device_->graphs = false;
    }
  }
  if (!side_streams_.empty()) fork_event_ = backend_.CreateEvent();
  for (const auto& [root, lr] : ranges_) {
    if (lr.def >= 0 && lr.end < n) steps_[lr.end].frees_after.push_back(root);
  }

  if (mode_ == ExecMemoryMode::kArena) {
    const auto& plan = program_.plan();
    arenas_.resize(kNumMemCategories);
    for (int c = 0; c < kNumMemCategories; ++c) {
      if (plan.arena_bytes[c] == 0) continue;
      ZT_ASSIGN_OR_RETURN(arenas_[c], backend_.Allocate(plan.arena_bytes[c], static_cast<MemCategory>(c)));
      if (poison_) backend_.Memset(arenas_[c].data, 0xFF, arenas_[c].bytes, backend_.stream(StreamKind::kCompute));
    }
  } else {
    for (const auto& [root, lr] : ranges_)
      if (lr.def < 0) ZT_RETURN_IF_ERROR(AllocateRoot(root, backend_.stream(StreamKind::kCompute)));
  }
  return OkStatus();
}

Status Executor::AllocateRoot(const ir::Value* root, Stream& stream) {
  if (root->nbytes() == 0) return OkStatus();
  ZT_ASSIGN_OR_RETURN(Buffer b, backend_.Allocate(root->nbytes(), root->category));
  if (poison_) backend_.Memset(b.data, 0xFF, b.bytes, stream);
  dynamic_[root] = b;
  return OkStatus();
}

void Executor::FreeRoot(const ir::Value* root) {
  auto it = dynamic_.find(root);
  if (it == dynamic_.end()) return;
  backend_.Free(it->second);
  dynamic_.erase(it);
}

void* Executor::Address(const ir::Value* v) const {
  ir::AliasTarget t = ir::ResolveAlias(v);
  const ir::Value* root = t.root;
  if (root->nbytes() == 0) return nullptr;
  if (mode_ == ExecMemoryMode::kArena) {
    ZT_CHECK(root->offset.has_value()) << "%" << root->name << " has no planned offset";
    const Buffer& a = arenas_[static_cast<int>(passes::ArenaCategory(root))];
    return static_cast<char*>(a.data) + *root->offset + t.byte_offset;
  }
  auto it = dynamic_.find(root);
  ZT_CHECK(it != dynamic_.end()) << "%" << v->name << " has no memory now (dynamic mode keeps intermediates only while live)";
  return static_cast<char*>(it->second.data) + t.byte_offset;
}

Tensor Executor::tensor(const ir::Value* v) const { return Tensor(Address(v), v->dtype, v->shape); }

Tensor Executor::tensor(const std::string& name) const {
  const ir::Value* v = program_.graph().FindValue(name);
  ZT_CHECK(v != nullptr) << "no value %" << name;
  return tensor(v);
}

Status Executor::Write(const ir::Value* v, const void* host, size_t bytes) {
  if (bytes != v->nbytes()) {
    return InvalidArgument("writing " + std::to_string(bytes) + " bytes into %" + v->name + ", which has " +
                           std::to_string(v->nbytes()));
  }
  void* dst = Address(v);
  Stream& s = backend_.stream(StreamKind::kCompute);
#ifdef ZT_WITH_CUDA
  if (backend_.kind() == DeviceKind::kCUDA && bytes > 0 && bytes <= kStagedWriteLimit) {
    DeviceState::Staging& st = device_->staging[v];
    if (st.pinned == nullptr) {
      ZT_ASSIGN_OR_RETURN(st.pinned, static_cast<CudaBackend&>(backend_).AllocatePinned(bytes));
      st.done = backend_.CreateEvent();
    } else if (st.pending) {
      st.done->Synchronize();  // the previous Write of this value has left the staging buffer
    }
    std::memcpy(st.pinned, host, bytes);
    backend_.CopyHostToDevice(dst, st.pinned, bytes, s);
    st.done->Record(s);
    st.pending = true;
    return OkStatus();
  }
#endif
  backend_.CopyHostToDevice(dst, host, bytes, s);
  return OkStatus();
}

Status Executor::Read(const ir::Value* v, void* host, size_t bytes) const {
  if (bytes != v->nbytes()) {
    return InvalidArgument("reading " + std::to_string(bytes) + " bytes from %" + v->name + ", which has " +
                           std::to_string(v->nbytes()));
  }
  Stream& s = backend_.stream(StreamKind::kCompute);
  backend_.CopyDeviceToHost(host, Address(v), bytes, s);
  s.Synchronize();
  return OkStatus();
}

Status Executor::ReadAsync(const ir::Value* v, size_t offset, void* host, size_t bytes, Stream& stream) const {
  if (offset > v->nbytes() || bytes > v->nbytes() - offset) {
    return InvalidArgument("reading bytes [" + std::to_string(offset) + ", " + std::to_string(offset + bytes) +
                           ") of %" + v->name + ", which has " + std::to_string(v->nbytes()));
  }
  if (v->kind != ir::ValueKind::kParam && v->kind != ir::ValueKind::kState && v->kind != ir::ValueKind::kInput) {
    return InvalidArgument("%" + v->name + " is not persistent: its bytes are not kept between steps");
  }
  if (bytes > 0) backend_.CopyDeviceToHost(host, static_cast<const char*>(Address(v)) + offset, bytes, stream);
  return OkStatus();
}

void Executor::SetPhaseFence(ir::Phase phase, Event* fence) {
  if (fence == nullptr) {
    phase_fences_.erase(phase);
  } else {
    phase_fences_[phase] = fence;
  }
}

Status Executor::Run(PhaseMask phases) {
  bool all = phases.forward && phases.backward && phases.optimizer;
  if (mode_ == ExecMemoryMode::kDynamic) {
    if (!all) return FailedPrecondition("dynamic memory mode runs whole steps only; use ZT_EXEC_MEMORY=arena");
    for (const ir::Value* r : kept_) FreeRoot(r);
    kept_.clear();
  }
  if (device_->graphs) {
    DeviceState::Mask& m = device_->masks[MaskIndex(phases)];
#ifdef ZT_WITH_CUDA
    if (m.exec) {
      ZT_RETURN_IF_ERROR(m.exec->Launch(backend_.stream(StreamKind::kCompute)));
      ++stats_.graph_launches;
      return OkStatus();
    }
    if (!m.eager_only && m.eager_runs >= 1) return CaptureAndLaunch(phases);
#endif
    ++m.eager_runs;
  }
  ++stats_.eager_runs;
  return RunNodes(phases);
}

Status Executor::CaptureAndLaunch(PhaseMask phases) {
#ifdef ZT_WITH_CUDA
  DeviceState::Mask& m = device_->masks[MaskIndex(phases)];
  Stream& compute = backend_.stream(StreamKind::kCompute);
  auto eager_instead = [&](const Status& why) {
    ++stats_.capture_failures;
    m.eager_only = true;
    if (!device_->warned) {
      ZT_LOG(WARNING) << "capturing the step of " << program_.graph().name() << " into a CUDA graph failed ("
                      << why.message() << "); running it eagerly (set ZT_CUDA_GRAPHS=0 to skip the attempt)";
      device_->warned = true;
    }
    ++m.eager_runs;
    ++stats_.eager_runs;
    return RunNodes(phases);
  };
  Status begun = BeginGraphCapture(compute);
  if (!begun.ok()) return eager_instead(begun);
  Status ran = RunNodes(phases);  // queues (captures) the kernels; nothing executes yet
  auto exec = EndGraphCapture(compute);
  if (!ran.ok()) return eager_instead(ran);
  if (!exec.ok()) return eager_instead(exec.status());
  m.exec = std::move(*exec);
  ++stats_.graph_captures;
  ZT_RETURN_IF_ERROR(m.exec->Launch(compute));
  ++stats_.graph_launches;
  return OkStatus();
#else
  (void)phases;
  return Internal("CUDA graphs need a CUDA build");
#endif
}

Status Executor::RunNodes(PhaseMask phases) {
  const ir::Graph& g = program_.graph();
  Stream& compute = backend_.stream(StreamKind::kCompute);
  // Fork: side streams start after everything queued on compute (Writes, earlier Runs).
  if (fork_event_) {
    fork_event_->Record(compute);
    for (StreamKind k : side_streams_) fork_event_->StreamWait(backend_.stream(k));
  }
  int n = static_cast<int>(steps_.size());
  std::vector<Tensor> ins, outs;
  Status status = OkStatus();
  const bool timed = profiler_ && profiler_->BeginRun();
  // [phase][stream]: that stream already waited for the phase's fence in this Run.
  bool fenced[3][kNumStreamKinds] = {};
  for (int i = 0; i < n && status.ok(); ++i) {
    NodeExec& s = steps_[i];
    const ir::Node* node = s.node;
    if (!phases.Has(node->phase)) continue;
    Stream& stream = backend_.stream(static_cast<StreamKind>(node->stream));
    if (auto f = phase_fences_.find(node->phase); f != phase_fences_.end()) {
      bool& done = fenced[static_cast<int>(node->phase)][node->stream];
      if (!done) f->second->StreamWaitExternal(stream);
      done = true;
    }
    Buffer ws_buf;
    Tensor workspace;
    if (mode_ == ExecMemoryMode::kDynamic) {
      for (const ir::Value* o : node->outputs) {
        const ir::Value* r = passes::AliasRoot(o);
        if (r == o) {
          status = AllocateRoot(r, stream);
          if (!status.ok()) break;
          if (ranges_[r].end >= n) kept_.push_back(r);
        }
      }
      if (!status.ok()) break;
      if (s.workspace_bytes) {
        auto wb = backend_.Allocate(s.workspace_bytes, MemCategory::kWorkspace);
        if (!wb.ok()) {
          status = wb.status();
          break;
        }
        ws_buf = *wb;
        workspace = Tensor(ws_buf.data, DType::kU8, Shape{static_cast<int64_t>(s.workspace_bytes)});
      }
    } else if (s.workspace_bytes) {
      const auto& plan = program_.plan();
      // The workspace region ends the transient arena (under activations).
      const int act = static_cast<int>(MemCategory::kActivations);
      char* base = static_cast<char*>(arenas_[act].data) + (plan.arena_bytes[act] - plan.workspace_bytes);
      workspace = Tensor(base, DType::kU8, Shape{static_cast<int64_t>(s.workspace_bytes)});
    }
    for (const ir::Node* w : s.waits) events_.at(w)->StreamWait(stream);
    ins.clear();
    outs.clear();
    for (const ir::Value* v : node->inputs) ins.push_back(tensor(v));
    for (const ir::Value* v : node->outputs) outs.push_back(tensor(v));
    KernelContext ctx{node->attrs, ins, outs, workspace, backend_, stream, comm_};
    auto t0 = std::chrono::steady_clock::now();
    Status st = s.kernel(ctx);
    if (!st.ok()) status = st.WithContext(g.Describe(node));
    if (s.record_event) events_.at(node)->Record(stream);
    if (timed) {
      backend_.Synchronize();
      profiler_->Add(*node, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    if (mode_ == ExecMemoryMode::kDynamic) {
      backend_.Free(ws_buf);
      for (const ir::Value* r : s.frees_after) FreeRoot(r);
    }
  }
  // Join: compute waits for the side streams, so Reads and the next Run see their work. (Under
  // capture every forked stream must be joined back before the capture ends, errors included.)
  for (size_t k = 0; k < side_streams_.size(); ++k) {
    join_events_[k]->Record(backend_.stream(side_streams_[k]));
    join_events_[k]->StreamWait(compute);
  }
  return status;
}

}  // namespace zt
