// Model graph construction for a run.
#include "job/step_builder.h"

namespace zt::job {

DType ComputeDType(config::Precision p) {
  switch (p) {
    case config::Precision::kBF16: return DType::kBF16;
    case config::Precision::kF16: return DType::kF16;
    case config::Precision::kF32: return DType::kF32;
  }
  return DType::kF32;
}

StatusOr<ModelGraph> BuildModelGraph(const config::RunConfig& c) {
  ModelGraph mg;
  auto model = models::LoadHfConfig(c.model.config);
  if (!model.ok()) return model.status().WithContext("model.config");
  mg.model = *model;
  mg.warnings = model->warnings;
  mg.graph = std::make_unique<ir::Graph>(models::ModelFamilyName(mg.model.family));
  ir::Builder b(mg.graph.get());
  auto built = models::BuildModel(
      b, mg.model, {.batch = c.micro_batch_size, .seq = c.data.seq_len, .dtype = ComputeDType(c.precision)});
  if (!built.ok()) return built.status().WithContext("building the model of " + c.model.config);
  mg.built = *built;
  return mg;
}

}  // namespace zt::job
