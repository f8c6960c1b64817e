// The train and compile subcommands: option parsing and error reporting only.
#include "cli/train_cmd.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <memory>

#include "config/run_config.h"
#include "core/logging.h"
#include "job/device.h"
#include "job/distributed.h"
#include "job/plan_report.h"
#include "job/train_job.h"

namespace zt::cli {
namespace {

int Fail(const Status& s) {
  std::fprintf(stderr, "ztrain: error: %s\n", s.message().c_str());
  return 1;
}

struct TrainArgs {
  std::string config;
  bool no_progress = false;
  bool no_export = false;
};

struct CompileArgs {
  std::string config;
  std::vector<std::string> dump_ir;
  int world_size = 1;
  std::string device = "cpu";
};

}  // namespace

void RegisterTrainCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<TrainArgs>();
  CLI::App* cmd = app.add_subcommand("train", "train a model as a run.json describes (docs/config.md)");
  cmd->add_option("--config", args->config, "run.json: DeepSpeed keys plus model, data and run sections")->required();
  cmd->add_flag("--no-progress", args->no_progress, "no live progress bar, even on a terminal");
  cmd->add_flag("--no-export", args->no_export, "do not write the final weights to <output_dir>/final");
  cmd->callback([args, exit_code] {
    auto job = job::JoinJob();
    if (!job.ok()) {
      *exit_code = Fail(job.status());
      return;
    }
    auto cfg = config::LoadRunConfig(args->config, job->world_size());
    if (!cfg.ok()) {
      *exit_code = Fail(cfg.status());
      return;
    }
    // The device: GPU LOCAL_RANK when CUDA is built and present, unless ZT_DEVICE says otherwise.
    auto backend = job::CreateBackend(job->env.local_rank);
    if (!backend.ok()) {
      *exit_code = Fail(backend.status());
      return;
    }
    ZT_LOG(INFO) << "device: " << (*backend)->Describe();
    // The communicator fits the device (Gloo on the CPU, NCCL on CUDA), so it comes after it.
    if (Status c = job::CreateCommunicator(*job, **backend); !c.ok()) {
      *exit_code = Fail(c);
      return;
    }
    job::TrainOptions o;
    o.progress_bar = !args->no_progress && isatty(STDERR_FILENO);
    o.export_final = !args->no_export;
    o.comm = job->comm.get();
    o.store = job->connection.store.get();
    auto r = job::RunTraining(*cfg, **backend, o);
    if (!r.ok()) {
      *exit_code = Fail(r.status());
      return;
    }
    Status done = job->connection.Finish();
    if (!done.ok()) {
      *exit_code = Fail(done);
      return;
    }
    if (job->rank() == 0 && !r->eval_losses.empty() && r->loss_floor >= 0) {
      std::printf("final eval loss %.4f, data loss floor %.4f (%.4f above)\n", r->eval_losses.back(), r->loss_floor,
                  r->eval_losses.back() - r->loss_floor);
    }
    *exit_code = 0;
  });
}

void RegisterCompileCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<CompileArgs>();
  CLI::App* cmd = app.add_subcommand(
      "compile", "print a run's step program: flops per step, predicted memory per category, IR after passes");
  cmd->add_option("--config", args->config, "run.json (only its model, batch and precision settings are used)")
      ->required();
  cmd->add_option("--dump-ir", args->dump_ir,
                  "print the IR after this pass (input, zero, data_parallel, dce, memory_plan or all); may be repeated");
  cmd->add_option("--world-size", args->world_size, "plan for this many data-parallel ranks (per-rank memory)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--device", args->device,
                  "plan for this device: cpu or cuda (sizes the kernels' workspace; default cpu)")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->callback([args, exit_code] {
    auto cfg = config::LoadRunConfig(args->config, args->world_size);
    if (!cfg.ok()) {
      *exit_code = Fail(cfg.status());
      return;
    }
    job::CompileRequest request{args->dump_ir, args->world_size,
                                args->device == "cuda" ? ir::Target::kCuda : ir::Target::kCpu};
    auto report = job::CompileReport(*cfg, request);
    if (!report.ok()) {
      *exit_code = Fail(report.status());
      return;
    }
    std::fputs(report->c_str(), stdout);
    *exit_code = 0;
  });
}

}  // namespace zt::cli
