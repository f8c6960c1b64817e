// `ztrain ckpt ls|verify|inspect|export`: option parsing, reports, and the consolidation of a
// checkpoint's sharded f32 masters into whole parameters for export. Everything about the format
// itself (what LATEST names, states, checksums, slices) comes from src/ckpt/.
// Invariant: DIR is only read (CheckpointReader, ListCheckpoints, Verify); exports go to OUT,
// which may not be DIR or lie inside it.
#include "cli/ckpt_cmd.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>

#include "ckpt/format.h"
#include "ckpt/reader.h"
#include "ckpt/reshard.h"
#include "models/hf_config.h"
#include "models/safetensors.h"
#include "models/weights.h"
#include "runtime/host_convert.h"

namespace zt::cli {
namespace {

using nlohmann::json;

// The kind of section that holds a unit's f32 parameter values. The engine writes it at every
// ZeRO stage and precision (runtime/checkpoint_state.cc: at stage 0 in fp32 the "master" is the
// parameter itself).
constexpr const char* kMasterKind = "master";

int Fail(const Status& s) {
  std::fprintf(stderr, "ztrain: error: %s\n", s.message().c_str());
  return 1;
}

std::string HumanBytes(uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) std::snprintf(buf, sizeof(buf), "%llu B", static_cast<unsigned long long>(n));
  else std::snprintf(buf, sizeof(buf), "%.1f %s", v, units[u]);
  return buf;
}

// Prints rows as left-aligned columns two spaces apart, each line prefixed by `indent`.
void PrintTable(const std::vector<std::vector<std::string>>& rows, const std::string& indent = "") {
  std::vector<size_t> width;
  for (const auto& r : rows)
    for (size_t i = 0; i < r.size(); ++i) {
      if (width.size() <= i) width.push_back(0);
      width[i] = std::max(width[i], r[i].size());
    }
  for (const auto& r : rows) {
    std::string line = indent;
    for (size_t i = 0; i < r.size(); ++i) {
      line += r[i];
      if (i + 1 < r.size()) line += std::string(width[i] - r[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

// Why LATEST cannot be used ("" when it names a valid checkpoint or when there is no LATEST).
std::string LatestProblem(const std::string& dir, const ckpt::CheckpointList& list) {
  if (!list.latest_problem.empty()) return list.latest_problem;
  if (list.latest.empty()) return "";
  for (const auto& e : list.entries) {
    if (e.name != list.latest) continue;
    if (e.state == ckpt::CheckpointState::kLatest) return "";
    return ckpt::JoinPath(dir, ckpt::kLatestName) + " names " + list.latest + ", which is " +
           ckpt::CheckpointStateName(e.state) + ": " + e.problem;
  }
  return ckpt::JoinPath(dir, ckpt::kLatestName) + " names " + list.latest + " but " +
         ckpt::JoinPath(dir, list.latest) + " does not exist";
}

// The newest entry with a valid manifest (nullptr: none).
const ckpt::CheckpointEntry* NewestReadable(const ckpt::CheckpointList& list) {
  const ckpt::CheckpointEntry* best = nullptr;
  for (const auto& e : list.entries)
    if (e.manifest) best = &e;
  return best;
}

// ---- ls ----

struct LsArgs {
  std::string dir;
  bool json = false;
};

int RunLs(const LsArgs& a) {
  auto list = ckpt::ListCheckpoints(a.dir);
  if (!list.ok()) return Fail(list.status());
  const std::string problem = LatestProblem(a.dir, *list);
  if (a.json) {
    json j;
    j["dir"] = a.dir;
    j["latest"] = list->latest.empty() ? json(nullptr) : json(list->latest);
    j["latest_problem"] = problem.empty() ? json(nullptr) : json(problem);
    j["checkpoints"] = json::array();
    for (const auto& e : list->entries) {
      json c = {{"name", e.name}, {"state", ckpt::CheckpointStateName(e.state)}, {"step", e.step}};
      if (e.manifest) {
        c["world_size"] = e.manifest->world_size;
        c["zero_stage"] = e.manifest->zero_stage;
        c["precision"] = e.manifest->precision;
        c["bytes"] = e.bytes;
        c["created"] = e.manifest->created;
      }
      c["problem"] = e.problem.empty() ? json(nullptr) : json(e.problem);
      j["checkpoints"].push_back(std::move(c));
    }
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  if (list->entries.empty()) {
    std::printf("no checkpoints in %s\n", a.dir.c_str());
  } else {
    std::vector<std::vector<std::string>> rows = {
        {"NAME", "STATE", "STEP", "WORLD", "STAGE", "PRECISION", "BYTES", "CREATED"}};
    for (const auto& e : list->entries) {
      if (e.manifest) {
        rows.push_back({e.name, ckpt::CheckpointStateName(e.state), std::to_string(e.step),
                        std::to_string(e.manifest->world_size), std::to_string(e.manifest->zero_stage),
                        e.manifest->precision, std::to_string(e.bytes), e.manifest->created});
      } else {
        rows.push_back({e.name, ckpt::CheckpointStateName(e.state), std::to_string(e.step), "-", "-", "-", "-", "-"});
      }
    }
    PrintTable(rows);
    for (const auto& e : list->entries)
      if (!e.problem.empty()) std::printf("%s: %s\n", e.name.c_str(), e.problem.c_str());
  }
  if (!problem.empty()) {
    std::printf("LATEST is unusable: %s\n", problem.c_str());
    if (const ckpt::CheckpointEntry* e = NewestReadable(*list))
      std::printf("the newest checkpoint with a valid manifest is %s: check it with `ztrain ckpt verify %s --step %lld`\n",
                  e->name.c_str(), a.dir.c_str(), static_cast<long long>(e->step));
  } else if (list->latest.empty()) {
    std::printf("LATEST: none (nothing was committed in %s)\n", a.dir.c_str());
  } else {
    std::printf("LATEST: %s\n", list->latest.c_str());
  }
  return 0;
}

// ---- verify ----

struct VerifyArgs {
  std::string dir;
  int64_t step = ckpt::kLatestStep;
  bool all = false;
};

// Verifies one checkpoint ("" for LATEST's), printing OK on stdout or the problems on stderr.
bool VerifyOne(const std::string& dir, const std::string& name) {
  auto t0 = std::chrono::steady_clock::now();
  auto r = ckpt::Verify(dir, name);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r.ok()) {
    Fail(r.status());
    return false;
  }
  std::printf("OK %s: %d shards, %llu bytes (%s), %.2f GB/s\n", r->path.c_str(), r->shards,
              static_cast<unsigned long long>(r->bytes), HumanBytes(r->bytes).c_str(),
              s > 0 ? static_cast<double>(r->bytes) / s / 1e9 : 0.0);
  return true;
}

int RunVerify(const VerifyArgs& a) {
  if (!a.all) return VerifyOne(a.dir, a.step == ckpt::kLatestStep ? "" : ckpt::StepDirName(a.step)) ? 0 : 1;
  auto list = ckpt::ListCheckpoints(a.dir);
  if (!list.ok()) return Fail(list.status());
  int ok = 0, failed = 0;
  const std::string problem = LatestProblem(a.dir, *list);
  if (!problem.empty()) {
    Fail(Status(StatusCode::kDataLoss, problem));
    ++failed;
  }
  // With a LATEST that cannot be read, a restart still considers every checkpoint with a valid
  // manifest (ckpt::DiskCatalogFor): check those too. (Without any LATEST nothing was committed.)
  const bool no_latest = !list->latest_problem.empty() && !list->entries.empty();
  if (no_latest)
    std::printf("%s has an unreadable LATEST: verifying every checkpoint with a valid manifest\n", a.dir.c_str());
  for (const auto& e : list->entries) {
    const std::string path = ckpt::JoinPath(a.dir, e.name);
    switch (e.state) {
      case ckpt::CheckpointState::kLatest:
      case ckpt::CheckpointState::kCommitted:
        (VerifyOne(a.dir, e.name) ? ok : failed)++;
        break;
      case ckpt::CheckpointState::kInvalid:  // a manifest is renamed into place whole: this is damage
        Fail(Status(StatusCode::kDataLoss, path + " is invalid: " + e.problem));
        ++failed;
        break;
      case ckpt::CheckpointState::kUncommitted:
        if (no_latest) {
          (VerifyOne(a.dir, e.name) ? ok : failed)++;
          break;
        }
        [[fallthrough]];
      case ckpt::CheckpointState::kIncomplete:
        std::printf("skipped %s: %s%s%s\n", path.c_str(), ckpt::CheckpointStateName(e.state),
                    e.problem.empty() ? "" : ", ", e.problem.c_str());
        break;
    }
  }
  if (ok + failed == 0)
    return Fail(NotFound("no committed checkpoint in " + a.dir + " to verify (see `ztrain ckpt ls " + a.dir + "`)"));
  if (failed > 0) {
    std::fprintf(stderr, "ztrain: error: %d of %d checks in %s failed; the checkpoints above marked OK are whole\n",
                 failed, ok + failed, a.dir.c_str());
    return 1;
  }
  std::printf("all %d committed checkpoints in %s verified\n", ok, a.dir.c_str());
  return 0;
}

// ---- inspect ----

struct InspectArgs {
  std::string dir;
  int64_t step = ckpt::kLatestStep;
  bool json = false;
  bool verbose = false;
};

std::string ModelConfigOf(const ckpt::Manifest& m) {
  if (m.config.is_object() && m.config.contains("model") && m.config["model"].is_object() &&
      m.config["model"].contains("config") && m.config["model"]["config"].is_string())
    return m.config["model"]["config"].get<std::string>();
  return "";
}

int RunInspect(const InspectArgs& a) {
  auto r = ckpt::CheckpointReader::Open(a.dir, a.step);
  if (!r.ok()) return Fail(r.status());
  const ckpt::Manifest& m = (*r)->manifest();
  if (a.json) {
    std::printf("%s\n", ckpt::ToJson(m).dump(2).c_str());
    return 0;
  }
  std::printf("checkpoint %s (format version %d)\n", (*r)->path().c_str(), m.format_version);
  std::printf("  step %lld, applied updates %lld\n", static_cast<long long>(m.step),
              static_cast<long long>(m.applied_updates));
  std::printf("  world size %d, ZeRO stage %d, precision %s\n", m.world_size, m.zero_stage, m.precision.c_str());
  std::printf("  loss scaler: scale %g, iter %lld, last overflow iter %lld, hysteresis left %d\n", m.scaler.scale,
              static_cast<long long>(m.scaler.iter), static_cast<long long>(m.scaler.last_overflow_iter),
              m.scaler.hysteresis_left);
  std::printf("  sampler: epoch %lld, position %lld\n", static_cast<long long>(m.sampler_epoch),
              static_cast<long long>(m.sampler_position));
  std::printf("  seed %llu\n", static_cast<unsigned long long>(m.seed));
  std::printf("  created %s\n", m.created.c_str());
  const std::string model = ModelConfigOf(m);
  std::printf("  model config %s\n", model.empty() ? "(not in the run config)" : model.c_str());

  int64_t numel = 0, params = 0;
  for (const auto& u : m.layout.units) {
    numel += u.numel;
    params += static_cast<int64_t>(u.params.size());
  }
  std::printf("units: %zu, %lld parameters, %lld elements\n", m.layout.units.size(), static_cast<long long>(params),
              static_cast<long long>(numel));
  std::vector<std::vector<std::string>> rows = {{"UNIT", "PARAMS", "NUMEL", "PADDED", "SHARD", "DTYPE", "DECAY"}};
  for (const auto& u : m.layout.units) {
    char wd[32];
    std::snprintf(wd, sizeof(wd), "%g", u.weight_decay);
    rows.push_back({u.name, std::to_string(u.params.size()), std::to_string(u.numel), std::to_string(u.padded),
                    std::to_string(u.shard), DTypeName(u.dtype), wd});
  }
  PrintTable(rows, "  ");
  if (a.verbose) {
    for (const auto& u : m.layout.units) {
      std::printf("  unit %s:\n", u.name.c_str());
      std::vector<std::vector<std::string>> prow;
      for (const auto& p : u.params)
        prow.push_back({p.name, p.shape.ToString(), "offset " + std::to_string(p.offset)});
      PrintTable(prow, "    ");
    }
  }
  uint64_t bytes = 0;
  for (const auto& s : m.shards) bytes += s.bytes;
  std::printf("shards: %zu, %llu bytes (%s)\n", m.shards.size(), static_cast<unsigned long long>(bytes),
              HumanBytes(bytes).c_str());
  rows = {{"RANK", "FILE", "BYTES", "CHECKSUM", "SECTIONS"}};
  for (const auto& s : m.shards)
    rows.push_back({std::to_string(s.rank), s.file, std::to_string(s.bytes), s.checksum,
                    std::to_string(s.sections.size())});
  PrintTable(rows, "  ");
  if (a.verbose) {
    for (const auto& s : m.shards) {
      std::printf("  %s sections:\n", s.file.c_str());
      std::vector<std::vector<std::string>> srow;
      for (const auto& sec : s.sections)
        srow.push_back({sec.name, DTypeName(sec.dtype), std::to_string(sec.numel), "at " + std::to_string(sec.offset)});
      PrintTable(srow, "    ");
    }
  }
  std::printf("(checksums were not read: `ztrain ckpt verify` checks them)\n");
  return 0;
}

// ---- export ----

struct ExportArgs {
  CkptExportOptions o;
  bool no_verify = false;
};

// True when `inner` is `outer` or lies inside it (after resolving symlinks and "..").
bool IsSameOrInside(const std::string& inner, const std::string& outer) {
  namespace fs = std::filesystem;
  std::error_code ec1, ec2;
  fs::path i = fs::weakly_canonical(fs::absolute(inner, ec1), ec1);
  fs::path o = fs::weakly_canonical(fs::absolute(outer, ec2), ec2);
  if (ec1 || ec2) return false;
  auto ii = i.begin();
  for (auto oi = o.begin(); oi != o.end(); ++oi, ++ii) {
    if (oi->empty()) continue;  // a trailing slash
    if (ii == i.end() || *ii != *oi) return false;
  }
  return true;
}

}  // namespace

StatusOr<CkptExportResult> ExportCheckpoint(const CkptExportOptions& o) {
  auto dtype = ParseDType(o.dtype);
  if (!dtype || !IsFloating(*dtype))
    return InvalidArgument("--dtype " + o.dtype + " is not an export dtype; use f32, bf16 or f16");
  if (o.out.empty()) return InvalidArgument("no export directory given; pass --safetensors OUT");
  if (IsSameOrInside(o.out, o.dir))
    return InvalidArgument("the export directory " + o.out + " is inside the checkpoint directory " + o.dir +
                           "; nothing may be written there: choose another --safetensors directory");
  ZT_ASSIGN_OR_RETURN(auto reader, ckpt::CheckpointReader::Open(o.dir, o.step));
  const ckpt::Manifest& m = reader->manifest();
  CkptExportResult result;
  result.checkpoint = reader->path();
  result.step = m.step;

  result.model_config = o.model_config;
  if (result.model_config.empty()) {
    result.model_config = ModelConfigOf(m);
    if (result.model_config.empty())
      return InvalidArgument(reader->path() + "/" + ckpt::kManifestName +
                             ": its run config names no model config (model.config); pass --model-config "
                             "<the model's config.json>");
  }
  auto config = models::LoadHfConfig(result.model_config);
  if (!config.ok()) {
    std::string from = o.model_config.empty()
                           ? " (model.config of the run config in " + reader->path() + "/" + ckpt::kManifestName +
                                 ", read relative to the current directory; a run.json's paths are relative to its "
                                 "own directory)"
                           : "";
    return config.status().WithContext("model config " + result.model_config + from +
                                       "; pass --model-config <the model's config.json>");
  }
  ZT_ASSIGN_OR_RETURN(std::vector<models::ParamSpec> specs, models::ModelParamSpecs(*config, DType::kF32));

  // Every parameter of the model must be in the checkpoint's layout with the same shape, and
  // the layout may hold nothing else.
  struct Where {
    const passes::ZeroUnit* unit;
    const passes::ZeroParam* param;
  };
  std::map<std::string, Where> where;
  for (const auto& u : m.layout.units)
    for (const auto& p : u.params) where[p.name] = {&u, &p};
  const std::string mismatch = ": the model config " + result.model_config + " does not describe the model of " +
                               reader->path() + " (pass the right --model-config)";
  for (const auto& s : specs) {
    auto it = where.find(s.name);
    if (it == where.end()) return InvalidArgument("parameter '" + s.name + "' is not in the checkpoint" + mismatch);
    if (it->second.param->shape != s.shape)
      return InvalidArgument("parameter '" + s.name + "' is " + it->second.param->shape.ToString() +
                             " in the checkpoint, " + s.shape.ToString() + " in the model" + mismatch);
  }
  if (where.size() != specs.size()) {
    std::map<std::string, int> known;
    for (const auto& s : specs) known[s.name] = 1;
    for (const auto& [name, w] : where)
      if (!known.count(name)) return InvalidArgument("the checkpoint holds parameter '" + name + "'" + mismatch);
  }
  for (const auto& u : m.layout.units) {
    const std::string section = ckpt::SectionName(kMasterKind, u.name);
    for (int r = 0; r < m.world_size; ++r) {
      if (reader->FindSection(r, section) != nullptr) continue;
      std::string have;
      for (const auto& s : m.shards[r].sections) have += (have.empty() ? "" : ", ") + s.name;
      return DataLoss(reader->path() + "/" + m.shards[r].file + " has no section '" + section +
                      "' with the f32 values of unit '" + u.name + "' (it has: " + (have.empty() ? "none" : have) +
                      "); this checkpoint cannot be exported");
    }
  }
  if (o.verify) ZT_RETURN_IF_ERROR(ckpt::Verify(o.dir, reader->name()).status());

  // Whole units from the ranks' slices, then each parameter cut out and converted.
  ckpt::SectionReader read = [&reader](int rank, const std::string& section, int64_t first, int64_t count,
                                       float* out) {
    return reader->ReadElements(rank, section, DType::kF32, first, count, out);
  };
  std::vector<std::vector<char>> storage;
  storage.reserve(specs.size());
  std::vector<models::TensorToWrite> tensors;
  std::vector<float> flat;
  std::map<std::string, size_t> index;
  for (const auto& u : m.layout.units) {
    flat.resize(static_cast<size_t>(u.numel));
    ZT_RETURN_IF_ERROR(ckpt::ReadUnitRange(m.layout, read, kMasterKind, u, 0, u.numel, flat.data()));
    for (const auto& p : u.params) {
      storage.emplace_back();
      ZT_RETURN_IF_ERROR(FromF32Buffer(flat.data() + p.offset, p.shape.numel(), *dtype, &storage.back()));
      index[p.name] = storage.size() - 1;
      result.elements += p.shape.numel();
    }
  }
  for (const auto& s : specs) {  // in the model's order
    std::vector<char>& bytes = storage[index.at(s.name)];
    tensors.push_back({s.name, Tensor(bytes.data(), *dtype, s.shape)});
  }
  result.tensors = static_cast<int64_t>(tensors.size());
  ZT_ASSIGN_OR_RETURN(result.files, models::ExportWeights(o.out, *config, tensors));
  return result;
}

namespace {

int RunExport(const ExportArgs& a) {
  CkptExportOptions o = a.o;
  o.verify = !a.no_verify;
  auto r = ExportCheckpoint(o);
  if (!r.ok()) return Fail(r.status());
  std::printf("exported step %lld of %s (%lld tensors, %lld elements, %s) to %s:\n", static_cast<long long>(r->step),
              r->checkpoint.c_str(), static_cast<long long>(r->tensors), static_cast<long long>(r->elements),
              o.dtype.c_str(), o.out.c_str());
  for (const auto& f : r->files) std::printf("  %s\n", f.c_str());
  return 0;
}

}  // namespace

void RegisterCkptCommand(CLI::App& app, int* exit_code) {
  CLI::App* ckpt = app.add_subcommand("ckpt", "checkpoint tools: ls, verify, inspect, export (docs/checkpoint-format.md)");
  ckpt->require_subcommand(1);
  const char* kDirHelp = "the checkpoint directory (the one holding LATEST)";
  const char* kStepHelp = "the checkpoint of this step instead of the one LATEST names";

  auto ls = std::make_shared<LsArgs>();
  CLI::App* c = ckpt->add_subcommand("ls", "list the step directories, their state, and what LATEST names");
  c->add_option("dir", ls->dir, kDirHelp)->required();
  c->add_flag("--json", ls->json, "machine-readable output");
  c->callback([ls, exit_code] { *exit_code = RunLs(*ls); });

  auto verify = std::make_shared<VerifyArgs>();
  c = ckpt->add_subcommand("verify", "re-read every shard and check its size, header and xxh64 against the manifest");
  c->add_option("dir", verify->dir, kDirHelp)->required();
  auto* step = c->add_option("--step", verify->step, kStepHelp)->check(CLI::NonNegativeNumber);
  c->add_flag("--all", verify->all, "every committed checkpoint in the directory")->excludes(step);
  c->callback([verify, exit_code] { *exit_code = RunVerify(*verify); });

  auto inspect = std::make_shared<InspectArgs>();
  c = ckpt->add_subcommand("inspect", "summarize a checkpoint's manifest (layout, shards, training state)");
  c->add_option("dir", inspect->dir, kDirHelp)->required();
  c->add_option("--step", inspect->step, kStepHelp)->check(CLI::NonNegativeNumber);
  c->add_flag("--json", inspect->json, "print the manifest itself");
  c->add_flag("-v,--verbose", inspect->verbose, "also every parameter of every unit and every section of every shard");
  c->callback([inspect, exit_code] { *exit_code = RunInspect(*inspect); });

  auto ex = std::make_shared<ExportArgs>();
  c = ckpt->add_subcommand("export", "write a checkpoint's weights as Hugging Face safetensors + config.json");
  c->add_option("dir", ex->o.dir, kDirHelp)->required();
  c->add_option("--safetensors", ex->o.out, "the export directory (model.safetensors, config.json)")->required();
  c->add_option("--step", ex->o.step, kStepHelp)->check(CLI::NonNegativeNumber);
  c->add_option("--model-config", ex->o.model_config,
                "the model's HF config.json (default: model.config of the checkpoint's run config)");
  c->add_option("--dtype", ex->o.dtype, "dtype of the exported tensors")
      ->capture_default_str()
      ->check(CLI::IsMember({"f32", "bf16", "f16"}));
  c->add_flag("--no-verify", ex->no_verify, "skip checking every shard's checksum first");
  c->callback([ex, exit_code] { *exit_code = RunExport(*ex); });
}

}  // namespace zt::cli
