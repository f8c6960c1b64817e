// The compile report.
#include "job/plan_report.h"

#include <cstdio>

#include "job/step_builder.h"
#include "runtime/program.h"

namespace zt::job {
namespace {

std::string Bytes(int64_t b) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%14lld B  (%9.2f MiB)", static_cast<long long>(b), static_cast<double>(b) / 1048576.0);
  return buf;
}

}  // namespace

StatusOr<std::string> CompileReport(const config::RunConfig& c, const CompileRequest& r) {
  ZT_ASSIGN_OR_RETURN(ModelGraph mg, BuildModelGraph(c));
  EngineOptions eo = EngineOptions::FromConfig(c);
  ZT_RETURN_IF_ERROR(Engine::BuildStepGraph(*mg.graph, {mg.built.tokens, mg.built.targets, mg.built.loss}, eo));
  int64_t params = 0;
  for (const ir::Value* p : mg.built.params) params += p->shape.numel();
  std::vector<std::pair<std::string, std::string>> dumps;
  CompileOptions co;
  co.dump_after = r.dump_after;
  co.dump_sink = &dumps;
  std::shared_ptr<passes::ZeroPass> zero;
  co.passes = Engine::StepPasses(eo, r.world_size, &zero);
  co.target = r.target;
  ZT_ASSIGN_OR_RETURN(auto program, Program::Compile(std::move(mg.graph), co));

  std::string out;
  for (auto& [pass, text] : dumps) out += "// IR after pass '" + pass + "'\n" + text + "\n";
  char line[256];
  std::snprintf(line, sizeof(line), "model: %s, %lld parameters; micro-batch %lld x %lld tokens, %s, %lld micro-batch(es) per step\n",
                models::ModelFamilyName(mg.model.family), static_cast<long long>(params),
                static_cast<long long>(c.micro_batch_size), static_cast<long long>(c.data.seq_len),
                config::PrecisionName(c.precision), static_cast<long long>(c.gradient_accumulation_steps));
  out += line;
  std::snprintf(line, sizeof(line), "data parallel: %d rank(s), ZeRO stage %d%s\n", r.world_size, c.zero_stage,
                zero ? (", " + std::to_string(zero->layout().units.size()) + " units").c_str() : "");
  out += line;
  const ir::Graph& g = program->graph();
  double flops[3];
  int nodes[3] = {0, 0, 0};
  for (const auto& n : g.nodes()) ++nodes[static_cast<int>(n->phase)];
  for (ir::Phase ph : {ir::Phase::kForward, ir::Phase::kBackward, ir::Phase::kOptimizer})
    flops[static_cast<int>(ph)] = program->flops(ph);
  // As in the run's metrics: the model's real vocabulary, not the head's padding (op costs count it).
  flops[0] -= mg.built.padding_flops_forward;
  flops[1] -= mg.built.padding_flops_backward;
  const double k = static_cast<double>(c.gradient_accumulation_steps);
  double step_flops = k * (flops[0] + flops[1]) + flops[2];
  std::snprintf(line, sizeof(line), "graph: %zu nodes (forward %d, backward %d, optimizer %d), %zu values\n",
                g.nodes().size(), nodes[0], nodes[1], nodes[2], g.values().size());
  out += line;
  std::snprintf(line, sizeof(line),
                "flops per step: %.4g (forward %.4g and backward %.4g per micro-batch, optimizer %.4g)\n", step_flops,
                flops[0], flops[1], flops[2]);
  out += line;
  if (mg.built.padded_vocab != mg.built.vocab) {
    std::snprintf(line, sizeof(line),
                  "LM head: vocabulary %lld padded to %lld for the GEMMs (its %.4g flops per micro-batch are "
                  "not counted above)\n",
                  static_cast<long long>(mg.built.vocab), static_cast<long long>(mg.built.padded_vocab),
                  mg.built.padding_flops_forward + mg.built.padding_flops_backward);
    out += line;
  }
  const auto& plan = program->plan();
  out += std::string("predicted memory per rank on ") + (r.target == ir::Target::kCuda ? "cuda" : "cpu") +
         " (static plan: persistent values per category and one transient arena; live: the peak if\n"
         "each value were allocated at its definition and freed after its last use):\n";
  for (int cat = 0; cat < kNumMemCategories; ++cat) {
    out += "  " + std::string(MemCategoryName(static_cast<MemCategory>(cat)));
    out.append(18 - std::string(MemCategoryName(static_cast<MemCategory>(cat))).size(), ' ');
    out += Bytes(plan.persistent_bytes[cat]) + "   live " + Bytes(plan.live_peak[cat]) + "\n";
  }
  out += "  transient arena   " + Bytes(plan.transient_bytes) + "   (workspace region " +
         Bytes(plan.workspace_bytes) + ")\n";
  out += "  total             " + Bytes(plan.arena_total) + "   live " + Bytes(plan.live_peak_total) + "\n";
  if (r.world_size > 1 || c.zero_stage > 0) {
    // The ZeRO paper's model-state bytes for comparison (mixed precision: 2-byte parameters and
    // gradients; f32 training: 4-byte; K = 12 bytes of optimizer state per parameter).
    double psi = static_cast<double>(params), n = r.world_size;
    double pb = c.precision == config::Precision::kF32 ? 4 : 2;
    double p_formula = c.zero_stage == 3 ? pb * psi / n : pb * psi;
    double g_formula = c.zero_stage >= 2 ? pb * psi / n : pb * psi;
    double o_formula = c.zero_stage >= 1 ? 12 * psi / n : (c.precision == config::Precision::kF32 ? 8 : 12) * psi;
    std::snprintf(line, sizeof(line),
                  "ZeRO paper per rank (no padding): parameters %.0f B, gradients %.0f B, optimizer %.0f B\n",
                  p_formula, g_formula, o_formula);
    out += line;
  }
  for (const auto& w : mg.warnings) out += "warning: " + w + "\n";
  return out;
}

}  // namespace zt::job
