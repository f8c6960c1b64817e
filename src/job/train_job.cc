// The training run.
#include "job/train_job.h"

#include <filesystem>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "comm/communicator.h"
#include "core/atomic_file.h"
#include "core/logging.h"
#include "data/sampler.h"
#include "data/token_file.h"
#include "job/checkpointing.h"
#include "job/device.h"
#include "job/step_builder.h"
#include "models/init.h"
#include "models/weights.h"
#include "runtime/engine.h"
#include "runtime/metrics.h"

namespace zt::job {
namespace {

// The loss floor a synthetic data file's sidecar records ("<file>.json"), or -1.
double LossFloorOf(const std::string& data_path) {
  std::ifstream f(data_path + ".json");
  if (!f) return -1;
  try {
    auto j = nlohmann::json::parse(f);
    if (j.contains("loss_floor") && j["loss_floor"].is_number()) return j["loss_floor"].get<double>();
  } catch (const std::exception&) {
  }
  return -1;
}

Status LoadInitialWeights(const config::RunConfig& c, const ModelGraph& mg, Engine& engine) {
  if (c.model.weights.empty()) {
    int64_t layers = mg.model.family == models::ModelFamily::kGpt2 ? mg.model.gpt2.n_layer : mg.model.llama.num_hidden_layers;
    return engine.InitParams([&](const std::string& name, const Tensor& host) {
      models::InitParam(name, host, {.std = 0.02, .n_layer = layers, .seed = c.run.seed});
    });
  }
  std::vector<models::ParamSpec> specs = models::ParamSpecs(mg.built);
  for (auto& s : specs) s.dtype = DType::kF32;  // masters (or f32 params) take the exact values
  std::map<std::string, std::vector<float>> values;
  auto loaded = models::LoadWeights(c.model.weights, specs, [&](const std::string& name, const Tensor& t) {
    values[name].assign(t.as<float>(), t.as<float>() + t.numel());
    return OkStatus();
  });
  if (!loaded.ok()) return loaded.status().WithContext("model.weights");
  for (const auto& w : loaded->warnings) ZT_LOG(WARNING) << "model.weights: " << w;
  return engine.InitParams([&](const std::string& name, const Tensor& host) {
    const auto& v = values.at(name);
    std::copy(v.begin(), v.end(), host.as<float>());
  });
}

// Every rank takes part (ZeRO gathers the shards); rank 0 writes.
Status ExportFinal(const config::RunConfig& c, const ModelGraph& mg, Engine& engine, int rank) {
  std::vector<std::vector<float>> storage;
  std::vector<models::TensorToWrite> tensors;
  std::vector<std::string> names;
  std::vector<Shape> shapes;
  ZT_RETURN_IF_ERROR(engine.ReadParams([&](const std::string& name, const Tensor& t) {
    storage.emplace_back(t.as<float>(), t.as<float>() + t.numel());
    names.push_back(name);
    shapes.push_back(t.shape);
  }));
  if (rank != 0) return OkStatus();
  for (size_t i = 0; i < storage.size(); ++i) tensors.push_back({names[i], Tensor(storage[i].data(), DType::kF32, shapes[i])});
  auto files = models::ExportWeights(c.run.output_dir + "/final", mg.model, tensors);
  return files.ok() ? OkStatus() : files.status().WithContext("exporting the final weights");
}

}  // namespace

StatusOr<TrainResult> RunTraining(const config::RunConfig& c, Backend& backend, const TrainOptions& o) {
  TrainResult result;
  const int rank = o.comm ? o.comm->rank() : 0;
  const int world = o.comm ? o.comm->world_size() : 1;
  if (c.world_size != world) {
    return InvalidArgument("the run config was checked for " + std::to_string(c.world_size) + " ranks, the job has " +
                           std::to_string(world));
  }
  std::error_code ec;
  std::filesystem::create_directories(c.run.output_dir, ec);
  if (ec) return Unavailable("cannot create run.output_dir " + c.run.output_dir + ": " + ec.message());
  if (rank == 0) {
    ZT_RETURN_IF_ERROR(WriteFileAtomically(c.run.output_dir + "/run.json", c.raw.dump(2) + "\n"));
  }

  ZT_ASSIGN_OR_RETURN(ModelGraph mg, BuildModelGraph(c));
  for (const auto& w : mg.warnings) ZT_LOG(WARNING) << c.model.config << ": " << w;
  int64_t vocab = mg.model.family == models::ModelFamily::kGpt2 ? mg.model.gpt2.vocab_size : mg.model.llama.vocab_size;

  auto train_file = data::TokenFile::Open(c.data.train, vocab);
  if (!train_file.ok()) return train_file.status().WithContext("data.train");
  data::SamplerOptions so{c.data.seq_len, c.micro_batch_size, c.gradient_accumulation_steps, world, rank, c.run.seed};
  auto sampler = data::BatchSampler::Create(**train_file, so);
  if (!sampler.ok()) return sampler.status().WithContext("data.train");
  std::unique_ptr<data::TokenFile> eval_file;
  std::optional<data::EvalBatches> eval;
  if (!c.data.eval.empty()) {
    auto f = data::TokenFile::Open(c.data.eval, vocab);
    if (!f.ok()) return f.status().WithContext("data.eval");
    eval_file = std::move(*f);
    auto e = data::EvalBatches::Create(*eval_file, c.data.seq_len, c.micro_batch_size, c.run.eval_batches);
    if (!e.ok()) return e.status().WithContext("data.eval");
    eval = *e;
  }
  result.loss_floor = LossFloorOf(c.data.train);

  EngineOptions eo = EngineOptions::FromConfig(c);
  eo.comm = o.comm;
  ZT_ASSIGN_OR_RETURN(auto engine, Engine::Create(std::move(mg.graph), {mg.built.tokens, mg.built.targets, mg.built.loss},
                                                  eo, backend));
  ZT_RETURN_IF_ERROR(LoadInitialWeights(c, mg, *engine));

  std::unique_ptr<Checkpointer> checkpoints;
  int64_t resumed = 0;
  if (c.checkpoint.enabled()) {
    ZT_ASSIGN_OR_RETURN(checkpoints, Checkpointer::Create(c, *engine, *sampler, o.store, rank, world));
    ZT_ASSIGN_OR_RETURN(ResumePoint from, checkpoints->Resume());
    resumed = from.step;
  }
  result.first_step = resumed + 1;

  MetricsOptions mo;
  mo.jsonl_path = rank == 0 ? c.run.output_dir + "/metrics.jsonl" : "";
  mo.append = resumed > 0;
  mo.steps_per_print = c.steps_per_print;
  mo.total_steps = c.run.steps;
  // The op costs count the head's GEMMs over the padded vocabulary; TFLOP/s and MFU count the
  // model's real vocabulary (as the PyTorch peers do), so the padding's flops are left out.
  mo.flops_per_step = engine->flops_per_step() - static_cast<double>(c.gradient_accumulation_steps) *
                                                     (mg.built.padding_flops_forward + mg.built.padding_flops_backward);
  mo.tokens_per_step = engine->tokens_per_step();
  mo.predicted_peak_bytes = engine->program().plan().arena_total;
  mo.progress_bar = o.progress_bar && rank == 0;
  mo.peak_flops = PeakFlops(backend, c.precision);
  ZT_ASSIGN_OR_RETURN(auto metrics, MetricsLogger::Open(mo));

  auto evaluate = [&](int64_t step) -> Status {
    if (!eval) return OkStatus();
    ZT_ASSIGN_OR_RETURN(double loss, engine->Evaluate([&](int i, std::vector<int32_t>& t, std::vector<int32_t>& y) {
      eval->Fill(i, t, y);
    }, eval->num_batches()));
    result.eval_losses.push_back(loss);
    if (rank == 0) metrics->OnEval(step, loss);
    return OkStatus();
  };

  if (rank == 0 && result.loss_floor >= 0) std::printf("data loss floor: %.4f\n", result.loss_floor);
  for (int64_t step = resumed + 1; step <= c.run.steps; ++step) {
    ZT_ASSIGN_OR_RETURN(StepStats st, engine->TrainStep([&](int m, std::vector<int32_t>& t, std::vector<int32_t>& y) {
      sampler->Fill(m, t, y);
    }));
    sampler->Advance();
    result.losses.push_back(st.loss);
    if (rank == 0) metrics->OnStep(st, backend.stats().peak_total());
    if (checkpoints) ZT_RETURN_IF_ERROR(checkpoints->AfterStep(step, step == c.run.steps));
    if (c.run.eval_interval > 0 && step % c.run.eval_interval == 0 && step != c.run.steps) {
      ZT_RETURN_IF_ERROR(evaluate(step));
    }
  }
  if (checkpoints) ZT_RETURN_IF_ERROR(checkpoints->Finish());
  ZT_RETURN_IF_ERROR(evaluate(c.run.steps));
  metrics->Finish();
  if (rank == 0 && engine->executor().profiler() != nullptr) {
    std::fputs(engine->executor().profiler()->Report().c_str(), stdout);
    std::fflush(stdout);
  }
  if (o.export_final) ZT_RETURN_IF_ERROR(ExportFinal(c, mg, *engine, rank));
  return result;
}

}  // namespace zt::job
