// Test support: compile a graph, run it on the CPU backend, and move data in and out as f32 or
// integer vectors (converted to each value's dtype).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "ir/graph.h"
#include "runtime/executor.h"
#include "runtime/program.h"

namespace zt::testing {

class GraphRunner {
 public:
  explicit GraphRunner(std::unique_ptr<ir::Graph> g, ExecMemoryMode mode = ExecMemoryMode::kArena,
                       bool dce = true);

  void Set(const std::string& name, const std::vector<float>& data);
  void SetInts(const std::string& name, const std::vector<int64_t>& data);
  std::vector<float> Get(const std::string& name) const;
  std::vector<float> Get(const ir::Value* v) const;
  void Run(PhaseMask phases = PhaseMask::All());

  ir::Value* value(const std::string& name) const;
  const ir::Graph& graph() const { return program_->graph(); }
  Program& program() { return *program_; }
  Executor& executor() { return *exec_; }
  CpuBackend& backend() { return backend_; }

 private:
  CpuBackend backend_;
  std::unique_ptr<Program> program_;
  std::unique_ptr<Executor> exec_;
};

// Deterministic pseudo-random data.
std::vector<float> RandomUniform(int64_t n, uint64_t seed, float lo = -1.0f, float hi = 1.0f);
std::vector<int64_t> RandomInts(int64_t n, uint64_t seed, int64_t lo, int64_t hi);  // [lo, hi)

// Converts f32 values to `dtype` storage and back (what a bf16/f16 tensor would hold).
std::vector<float> RoundTo(DType dtype, const std::vector<float>& v);

}  // namespace zt::testing
