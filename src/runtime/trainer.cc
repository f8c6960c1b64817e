// Trainer: backward + AdamW + compile + step loop.
#include "runtime/trainer.h"

#include <vector>

#include "ir/autodiff.h"
#include "runtime/adamw_scalars.h"

namespace zt {

StatusOr<std::unique_ptr<Trainer>> Trainer::Create(std::unique_ptr<ir::Graph> g, const TrainerSpec& spec,
                                                   Backend& backend, const CompileOptions& compile,
                                                   const ExecutorOptions& exec) {
  if (!spec.tokens || !spec.targets || !spec.loss) return InvalidArgument("Trainer needs tokens, targets and loss values");
  ZT_RETURN_IF_ERROR(ir::AppendBackward(*g, spec.loss, ir::ParamsOf(*g)));
  ZT_RETURN_IF_ERROR(ir::AppendAdamW(*g, spec.adamw));
  auto t = std::unique_ptr<Trainer>(new Trainer());
  t->adamw_ = spec.adamw;
  ZT_ASSIGN_OR_RETURN(t->program_, Program::Compile(std::move(g), compile));
  const ir::Graph& pg = t->program_->graph();
  t->tokens_ = spec.tokens;
  t->targets_ = spec.targets;
  t->loss_ = spec.loss;
  t->scalars_ = pg.FindValue(ir::kAdamWScalarsInput);
  ZT_ASSIGN_OR_RETURN(t->executor_, Executor::Create(*t->program_, backend, exec));
  return t;
}

Status Trainer::InitParams(const std::function<void(const ir::Value&, const Tensor&)>& init) {
  const ir::Graph& g = program_->graph();
  std::vector<char> host;
  for (const auto& v : g.values()) {
    if (v->kind != ir::ValueKind::kParam && v->kind != ir::ValueKind::kState) continue;
    host.assign(v->nbytes(), 0);
    if (v->kind == ir::ValueKind::kParam) init(*v, Tensor(host.data(), v->dtype, v->shape));
    ZT_RETURN_IF_ERROR(executor_->Write(v.get(), host.data(), host.size()));
  }
  step_ = 0;
  return OkStatus();
}

StatusOr<float> Trainer::Step(const std::vector<int32_t>& tokens, const std::vector<int32_t>& targets, double lr) {
  ZT_RETURN_IF_ERROR(executor_->Write(tokens_, tokens.data(), tokens.size() * sizeof(int32_t)));
  ZT_RETURN_IF_ERROR(executor_->Write(targets_, targets.data(), targets.size() * sizeof(int32_t)));
  auto sc = AdamWStepScalars(step_ + 1, lr, adamw_.beta1, adamw_.beta2);
  ZT_RETURN_IF_ERROR(executor_->Write(scalars_, sc.data(), sizeof(sc)));
  ZT_RETURN_IF_ERROR(executor_->Run());
  ++step_;
  float loss = 0;
  ZT_RETURN_IF_ERROR(executor_->Read(loss_, &loss, sizeof(loss)));
  return loss;
}

}  // namespace zt
