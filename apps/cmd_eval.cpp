// sdlora eval: the accuracy of one finished task's checkpoint of a run folder on the test images
// of every class it has seen, per task and overall, as JSON.
//
//   sdlora eval --run DIR [--task K] [--device cpu|cuda]
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "cl/metrics.h"
#include "cl/run_model.h"

namespace sdlora::apps {
namespace {

struct EvalOptions {
  std::string run, device;
  int64_t task = -1;
};

void run_eval(const EvalOptions& o) {
  cl::RunModel m = cl::load_run_model(o.run, o.task, o.device);
  set_cpu_threads(static_cast<int>(m.config.threads));
  const cl::Datasets d = cl::open_datasets(m.config);
  const cl::TaskCounts counts =
      cl::evaluate_seen_classes(m.config, *m.backbone, *m.head, d, m.task);
  int64_t correct = 0, total = 0;
  std::vector<double> per_task;
  for (size_t j = 0; j < counts.total.size(); ++j) {
    correct += counts.correct[j];
    total += counts.total[j];
    per_task.push_back(counts.total[j] > 0 ? 100.0 * static_cast<double>(counts.correct[j]) /
                                                 static_cast<double>(counts.total[j])
                                           : 0.0);
  }
  const nlohmann::json j{
      {"run", o.run},
      {"method", m.config.method},
      {"task", m.task},
      {"classes", m.head->num_classes()},
      {"test_images", total},
      {"correct", correct},
      {"accuracy",
       total > 0 ? 100.0 * static_cast<double>(correct) / static_cast<double>(total) : 0.0},
      {"accuracy_per_task", per_task},
      {"correct_per_task", counts.correct},
      {"total_per_task", counts.total}};
  std::cout << j.dump(2) << "\n";
}

}  // namespace

Command add_eval_command(CLI::App& root) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* app = root.add_subcommand(
      "eval", "Accuracy of a run's checkpoint on the test images of every class it has seen");
  app->add_option("--run", o->run, "run folder written by `sdlora train`")->required();
  app->add_option("--task", o->task, "checkpoint of this task (default: the last finished)");
  app->add_option("--device", o->device, "cpu, cuda or cuda:N (default: the run's device)");
  return {app, [o] { run_eval(*o); }};
}

}  // namespace sdlora::apps
