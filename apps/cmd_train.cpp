// sdlora train: one class-incremental run (cl/task_loop.h) from a JSON config, into a run folder
// with metrics, log and a checkpoint after every task; or its plan (--dry-run); or the rest of an
// interrupted run (--resume).
//
//   sdlora train --config FILE [--set key=value ...] --out DIR [--device cpu|cuda]
//                [--dry-run] [--max-tasks N]
//   sdlora train --resume DIR [--set key=value ...] [--device cpu|cuda]
// A config whose seed is a list runs once per seed into DIR/seed-<s>/ and writes DIR/summary.json
// (cl/multi_seed.h); --resume DIR continues its unfinished seeds.
#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "apps/progress.h"
#include "cl/config.h"
#include "cl/multi_seed.h"
#include "cl/run_model.h"
#include "cl/task_loop.h"

namespace sdlora::apps {
namespace {

struct TrainOptions {
  std::string config, out, device, resume;
  std::vector<std::string> sets;
  bool dry_run = false;
  int64_t max_tasks = -1;
};

cl::Config build_config(const TrainOptions& o) {
  cl::Config c;
  if (!o.config.empty()) {
    require_input_file("--config", o.config);
    c = cl::load_config(o.config);
  } else {
    SDLORA_CHECK(!o.resume.empty(), "--config is required (or --resume DIR)");
    c = cl::load_run_config(o.resume);
  }
  for (const std::string& s : o.sets) cl::apply_override(c, s);
  if (!o.device.empty()) c.device = o.device;
  c.validate();
  return c;
}

void run_train(const TrainOptions& o) {
  SDLORA_CHECK(o.resume.empty() || o.out.empty() || o.out == o.resume,
               "--out and --resume name different folders ('", o.out, "', '", o.resume,
               "'); a resumed run continues in its own folder");
  const cl::Config config = build_config(o);
  set_cpu_threads(static_cast<int>(config.threads));
  if (o.dry_run) {
    std::cout << cl::plan_json(config);
    return;
  }
  cl::RunOptions run;
  run.run_dir = o.resume.empty() ? o.out : o.resume;
  SDLORA_CHECK(!run.run_dir.empty(), "--out is required (the run folder to write)");
  run.resume = !o.resume.empty();
  if (!run.resume && std::filesystem::exists(std::filesystem::path(run.run_dir) / "state.json"))
    SDLORA_THROW("--out '", run.run_dir,
                 "' already holds a run (state.json); continue it with "
                 "--resume ",
                 run.run_dir, " or choose another folder");
  run.max_tasks = o.max_tasks;
  ConsoleReporter reporter;
  run.reporter = &reporter;
  StopOnSignal stop;
  run.stop = stop.flag();
  if (config.seeds.size() > 1) {  // one run per seed, then the summary
    SDLORA_CHECK(
        run.resume || !std::filesystem::exists(std::filesystem::path(run.run_dir) / "config.json"),
        "--out '", run.run_dir,
        "' already holds a multi-seed run; continue it with "
        "--resume ",
        run.run_dir, " or choose another folder");
    const cl::MultiSeedResult result = cl::run_seeds(config, run);
    std::cout << result.table() << "summary in " << run.run_dir << "/summary.json\n";
    return;
  }
  const cl::RunResult result = cl::run_training(config, run);
  std::cout << result.table() << "results in " << run.run_dir << "/metrics.json\n";
}

}  // namespace

Command add_train_command(CLI::App& root) {
  auto o = std::make_shared<TrainOptions>();
  CLI::App* app = root.add_subcommand(
      "train", "Run class-incremental training (SD-LoRA, -RR, -KD or a baseline) from a config");
  app->add_option("--config", o->config, "JSON config (configs/*.json); keys as in README.md");
  app->add_option("--set", o->sets, "override one config key: key=value (repeatable)");
  app->add_option("--out", o->out,
                  "run folder: config.json, log.txt, metrics.json, metrics.csv, "
                  "checkpoints/task_K.safetensors");
  app->add_option("--device", o->device, "cpu, cuda or cuda:N (overrides the config's device)");
  app->add_option("--resume", o->resume,
                  "continue the run in this folder after its last finished task");
  app->add_flag("--dry-run", o->dry_run,
                "print the plan as JSON (dataset, class order, each task's classes and image "
                "counts) without training");
  app->add_option("--max-tasks", o->max_tasks, "stop after this many tasks in total (-1: all)")
      ->capture_default_str();
  return {app, [o] { run_train(*o); }};
}

}  // namespace sdlora::apps
