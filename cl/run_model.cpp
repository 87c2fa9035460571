// Restoring a finished task of a run folder (run_model.h).
#include "cl/run_model.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cl/run_dir.h"
#include "nn/safetensors.h"

namespace sdlora::cl {

Config load_run_config(const std::string& run_dir) {
  const std::filesystem::path dir(run_dir);
  SDLORA_CHECK(std::filesystem::is_directory(dir), "--run '", run_dir, "': no such folder");
  const std::string path = (dir / "config.json").string();
  SDLORA_CHECK(std::filesystem::exists(path), "--run '", run_dir,
               "': not a run folder (no config.json; `sdlora train --out DIR` writes one)");
  return load_config(path);
}

namespace {
bool has_state(const std::string& run_dir) {
  return std::filesystem::exists(std::filesystem::path(run_dir) / "state.json");
}
}  // namespace

int64_t last_finished_task(const std::string& run_dir) {
  if (!has_state(run_dir)) return -1;
  return load_run_state(run_dir, load_run_config(run_dir)).result.matrix.num_tasks() - 1;
}

RunModel load_run_model(const std::string& run_dir, int64_t task, const std::string& device) {
  RunModel m;
  m.config = load_run_config(run_dir);
  if (!device.empty()) m.config.device = device;
  SDLORA_CHECK(has_state(run_dir), "--run '", run_dir,
               "': no task has finished yet (no state.json)");
  const RunState state = load_run_state(run_dir, m.config);
  const int64_t last = state.result.matrix.num_tasks() - 1;
  m.class_order = state.result.class_order;
  SDLORA_CHECK(last >= 0, "--run '", run_dir, "': no task has finished yet");
  m.task = task < 0 ? last : task;
  SDLORA_CHECK(m.task <= last, "--task ", task, ": run '", run_dir, "' has finished tasks 0..",
               last);
  const std::string path = checkpoint_path(run_dir, m.task);
  SDLORA_CHECK(std::filesystem::exists(path), "--run '", run_dir, "': checkpoint '", path,
               "' of task ", m.task, " is missing");
  m.backbone = make_backbone(m.config);
  m.learner = make_learner(m.config, *m.backbone);
  m.head = std::make_unique<GrowingHead>(m.backbone->config().embed_dim, m.backbone->device());
  const SafetensorsFile file = load_safetensors(path, m.backbone->device());
  m.learner->load_state_dict(file.tensors, file.metadata);
  m.head->load_state_dict(file.tensors);
  return m;
}

ExportedModel export_merged(const RunModel& m) {
  SDLORA_CHECK(m.backbone && m.learner && m.head, "export: no model loaded");
  ExportedModel out;
  std::unique_ptr<ViT> merged;
  if (const SDLoRA* adapters = m.learner->adapters()) merged = adapters->merged_vit();
  const ViT& vit = merged ? *merged : *m.backbone;
  for (auto& [name, t] : vit.state_dict())
    if (name.rfind("head.", 0) != 0) out.tensors[name] = t.to(Device::cpu());
  for (auto& [name, t] : m.head->state_dict()) out.tensors[name] = t.to(Device::cpu());
  const ViTConfig& c = vit.config();
  std::ostringstream shape;
  shape << "image " << c.image_size << ", patch " << c.patch_size << ", channels " << c.in_channels
        << ", width " << c.embed_dim << ", depth " << c.depth << ", heads " << c.num_heads
        << ", mlp ratio " << c.mlp_ratio << ", classes " << m.head->num_classes();
  out.metadata = {
      {"producer", "sdlora export"},
      {"method", m.config.method},
      {"sdlora_mode", m.config.sdlora_mode},
      {"task", std::to_string(m.task)},
      {"num_heads", std::to_string(c.num_heads)},
      {"model", shape.str()},
      // The original class id of each logit column: the seen classes only.
      {"class_order",
       nlohmann::json(
           std::vector<int64_t>(m.class_order.begin(),
                                m.class_order.begin() +
                                    std::min<int64_t>(m.head->num_classes(),
                                                      static_cast<int64_t>(m.class_order.size()))))
           .dump()},
      {"merged", merged ? "adapters merged into blocks.*.attn.qkv.weight" : "no adapters"}};
  return out;
}

}  // namespace sdlora::cl
