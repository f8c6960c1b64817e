// Trainer: the training step of a model graph on one backend. From a forward graph with token,
// target and loss values it appends the backward pass and the AdamW step, compiles the Program and
// runs steps: copy a batch in, set the step's optimizer scalars, run, read the loss.
// Invariant: step k (from 1) uses AdamW bias corrections for step k; nothing else carries hidden
// state between steps besides parameters and optimizer states in the graph.
#pragma once

#include <functional>
#include <memory>

#include "backend/backend.h"
#include "ir/optimizer.h"
#include "runtime/executor.h"
#include "runtime/program.h"

namespace zt {

struct TrainerSpec {
  ir::Value* tokens = nullptr;   // i32 [B, T]
  ir::Value* targets = nullptr;  // i32 [B, T]
  ir::Value* loss = nullptr;     // f32 []
  ir::AdamWOptions adamw;
};

class Trainer {
 public:
  static StatusOr<std::unique_ptr<Trainer>> Create(std::unique_ptr<ir::Graph> forward, const TrainerSpec& spec,
                                                   Backend& backend, const CompileOptions& compile = {},
                                                   const ExecutorOptions& exec = {});

  // Fills every parameter through `init` (given a host tensor of the parameter's type) and zeroes
  // the optimizer states.
  Status InitParams(const std::function<void(const ir::Value& param, const Tensor& host)>& init);

  // One optimizer step on one batch (tokens and targets hold B*T ids). Returns the loss.
  StatusOr<float> Step(const std::vector<int32_t>& tokens, const std::vector<int32_t>& targets, double lr);

  int64_t steps_done() const { return step_; }
  Program& program() { return *program_; }
  Executor& executor() { return *executor_; }

 private:
  Trainer() = default;
  std::unique_ptr<Program> program_;
  std::unique_ptr<Executor> executor_;
  const ir::Value* tokens_ = nullptr;
  const ir::Value* targets_ = nullptr;
  const ir::Value* loss_ = nullptr;
  const ir::Value* scalars_ = nullptr;
  ir::AdamWOptions adamw_;
  int64_t step_ = 0;
};

}  // namespace zt
