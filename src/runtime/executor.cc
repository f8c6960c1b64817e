// Executor: plan-bound execution of a Program on a Backend.
#include "runtime/executor.h"

#include "core/settings.h"
#include "ir/op_registry.h"
#include "passes/memory_planner.h"

namespace zt {

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
    : program_(program), backend_(backend), mode_(mode), comm_(comm), poison_(poison) {}

StatusOr<std::unique_ptr<Executor>> Executor::Create(Program& program, Backend& backend,
                                                     const ExecutorOptions& options) {
  ExecMemoryMode mode;
  if (options.memory) {
    mode = *options.memory;
  } else {
    ZT_ASSIGN_OR_RETURN(mode, ModeFromSettings());
  }
  auto e = std::unique_ptr<Executor>(new Executor(program, backend, mode, options.comm, options.poison));
  ZT_RETURN_IF_ERROR(e->Prepare());
  return e;
}

Executor::~Executor() {
  backend_.Synchronize();
  for (Buffer& b : arenas_) backend_.Free(b);
  for (auto& [v, b] : dynamic_) backend_.Free(b);
}

Status Executor::Prepare() {
  const ir::Graph& g = program_.graph();
  ranges_ = passes::ComputeLiveRanges(g);
  int n = static_cast<int>(g.nodes().size());
  std::map<const ir::Node*, int> index;
  for (int i = 0; i < n; ++i) index[g.nodes()[i].get()] = i;
  for (int i = 0; i < n; ++i) {
    const ir::Node* node = g.nodes()[i].get();
    NodeExec s{node, KernelRegistry::Global().Find(node->op->name, backend_.kind()), ir::NodeWorkspace(*node), {}, {}};
    if (s.kernel == nullptr) {
      return Unimplemented(g.Describe(node) + ": no " + DeviceKindName(backend_.kind()) + " kernel for op '" +
                           node->op->name + "'");
    }
    auto wait_for = [&](const ir::Node* p) {
      if (p == nullptr || p->stream == node->stream) return;
      for (const ir::Node* w : s.waits)
        if (w == p) return;
      s.waits.push_back(p);
    };
    for (const ir::Value* in : node->inputs) wait_for(in->producer);
    for (const ir::Node* d : node->deps) wait_for(d);
    steps_.push_back(std::move(s));
  }
  for (auto& s : steps_)
    for (const ir::Node* w : s.waits) steps_[index[w]].record_event = true;
  for (auto& s : steps_)
    if (s.record_event) events_[s.node] = backend_.CreateEvent();
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
      if (lr.def < 0) ZT_RETURN_IF_ERROR(AllocateRoot(root));
  }
  return OkStatus();
}

Status Executor::AllocateRoot(const ir::Value* root) {
  if (root->nbytes() == 0) return OkStatus();
  ZT_ASSIGN_OR_RETURN(Buffer b, backend_.Allocate(root->nbytes(), root->category));
  if (poison_) backend_.Memset(b.data, 0xFF, b.bytes, backend_.stream(StreamKind::kCompute));
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
    const Buffer& a = arenas_[static_cast<int>(root->category)];
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
  backend_.CopyHostToDevice(Address(v), host, bytes, backend_.stream(StreamKind::kCompute));
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

Status Executor::Run(PhaseMask phases) {
  const ir::Graph& g = program_.graph();
  bool all = phases.forward && phases.backward && phases.optimizer;
  if (mode_ == ExecMemoryMode::kDynamic) {
    if (!all) return FailedPrecondition("dynamic memory mode runs whole steps only; use ZT_EXEC_MEMORY=arena");
    for (const ir::Value* r : kept_) FreeRoot(r);
    kept_.clear();
  }
  int n = static_cast<int>(steps_.size());
  std::vector<Tensor> ins, outs;
  for (int i = 0; i < n; ++i) {
    NodeExec& s = steps_[i];
    const ir::Node* node = s.node;
    if (!phases.Has(node->phase)) continue;
    Buffer ws_buf;
    Tensor workspace;
    if (mode_ == ExecMemoryMode::kDynamic) {
      for (const ir::Value* o : node->outputs) {
        const ir::Value* r = passes::AliasRoot(o);
        if (r == o) {
          ZT_RETURN_IF_ERROR(AllocateRoot(r));
          if (ranges_[r].end >= n) kept_.push_back(r);
        }
      }
      if (s.workspace_bytes) {
        ZT_ASSIGN_OR_RETURN(ws_buf, backend_.Allocate(s.workspace_bytes, MemCategory::kWorkspace));
        workspace = Tensor(ws_buf.data, DType::kU8, Shape{static_cast<int64_t>(s.workspace_bytes)});
      }
    } else if (s.workspace_bytes) {
      const auto& plan = program_.plan();
      const Buffer& a = arenas_[static_cast<int>(MemCategory::kWorkspace)];
      char* base = static_cast<char*>(a.data) + (plan.arena_bytes[static_cast<int>(MemCategory::kWorkspace)] - plan.workspace_bytes);
      workspace = Tensor(base, DType::kU8, Shape{static_cast<int64_t>(s.workspace_bytes)});
    }
    Stream& stream = backend_.stream(static_cast<StreamKind>(node->stream));
    for (const ir::Node* w : s.waits) events_.at(w)->StreamWait(stream);
    ins.clear();
    outs.clear();
    for (const ir::Value* v : node->inputs) ins.push_back(tensor(v));
    for (const ir::Value* v : node->outputs) outs.push_back(tensor(v));
    KernelContext ctx{node->attrs, ins, outs, workspace, backend_, stream, comm_};
    Status st = s.kernel(ctx);
    if (!st.ok()) return st.WithContext(g.Describe(node));
    if (s.record_event) events_.at(node)->Record(stream);
    if (mode_ == ExecMemoryMode::kDynamic) {
      backend_.Free(ws_buf);
      for (const ir::Value* r : s.frees_after) FreeRoot(r);
    }
  }
  return OkStatus();
}

}  // namespace zt
