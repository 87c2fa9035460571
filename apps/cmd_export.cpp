// sdlora export: a run's model as one plain ViT checkpoint in timm naming, the SD-LoRA adapters
// merged into the qkv weights (so inference costs the backbone's own forward) plus the head of
// every seen class; `sdlora forward --weights FILE --heads H` loads it.
//
//   sdlora export --run DIR --out FILE [--task K] [--dtype float32|bf16]
// The file is float32 whatever the run's precision, or bfloat16 with --dtype bf16.
#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "apps/commands.h"
#include "cl/run_model.h"
#include "nn/safetensors.h"

namespace sdlora::apps {
namespace {

struct ExportOptions {
  std::string run, out;
  int64_t task = -1;
  std::string dtype = "float32";
};

void run_export(const ExportOptions& o) {
  const cl::RunModel m = cl::load_run_model(o.run, o.task, "cpu");
  cl::ExportedModel e = cl::export_merged(m);
  const DType dtype = o.dtype == "bf16" ? DType::kBFloat16 : DType::kFloat32;
  for (auto& [name, t] : e.tensors) t = t.to(dtype);
  save_safetensors(o.out, e.tensors, e.metadata);
  std::cerr << "sdlora export: task " << m.task << " of " << o.run << " (" << m.config.method
            << ", " << e.metadata.at("model") << ") -> " << o.out << "\n"
            << "  run it with: sdlora forward --weights " << o.out << " --heads "
            << e.metadata.at("num_heads") << " --input IMAGES --output OUT\n";
}

}  // namespace

Command add_export_command(CLI::App& root) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* app = root.add_subcommand(
      "export", "Write a run's model as one ViT checkpoint (timm naming, adapters merged, head)");
  app->add_option("--run", o->run, "run folder written by `sdlora train`")->required();
  app->add_option("--out", o->out, "safetensors file to write")->required();
  app->add_option("--task", o->task, "checkpoint of this task (default: the last finished)");
  app->add_option("--dtype", o->dtype, "tensor dtype in the file: float32 or bf16")
      ->capture_default_str()
      ->check(CLI::IsMember({"float32", "bf16"}));
  return {app, [o] { run_export(*o); }};
}

}  // namespace sdlora::apps
