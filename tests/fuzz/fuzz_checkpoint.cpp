// Adapter and run checkpoints: a safetensors file read as the task loop's checkpoints are (the
// SD-LoRA adapters of a tiny ViT, then the optimizer's optim.* state). Whatever loads must give
// adapters of the backbone's width and an optimizer state of its parameters' shapes.
#include <cstddef>
#include <cstdint>
#include <memory>

#include "autograd/var.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/sdlora.h"
#include "nn/vit.h"
#include "tests/common/tiny_vit.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sdlora;
  const std::string path = fuzz::write_scratch("checkpoint.safetensors", data, size);
  SafetensorsFile file;
  try {
    file = load_safetensors(path);
  } catch (const Error&) {
    return 0;
  }
  static ViT vit(sdlora::test::tiny_vit_config(0));
  for (SDLoRAMode mode : {SDLoRAMode::kPaper, SDLoRAMode::kOfficial}) {
    SDLoRA ad(vit, mode);
    try {
      ad.load_state_dict(file.tensors, file.metadata);
      for (const auto& [name, t] : ad.state_dict(true)) fuzz::touch(t.raw_data(), t.nbytes());
      FUZZ_REQUIRE(static_cast<int64_t>(ad.alphas().size()) >= ad.num_components(),
                   "fewer magnitudes than components");
    } catch (const Error&) {
    }
  }
  // The optimizer state: over two parameters shaped like a head (4 x 16 and 4).
  OptimizerState state;
  for (const auto& [name, t] : file.tensors)
    if (name.rfind("optim.", 0) == 0) state.tensors[name] = t;
  for (const auto& [key, value] : file.metadata)
    if (key.rfind("optim.", 0) == 0) state.values[key] = value;
  std::vector<Var> params = {Var(Tensor::zeros({4, 16}), true), Var(Tensor::zeros({4}), true)};
  std::unique_ptr<Optimizer> opts[] = {
      std::make_unique<SGD>(params, SGDOptions{0.1, 0.9, 0.0, 0.0, false}),
      std::make_unique<Adam>(params), std::make_unique<AdamW>(params)};
  for (auto& opt : opts) {
    try {
      opt->load_state_dict(state);
      const OptimizerState back = opt->state_dict();
      for (const auto& [name, t] : back.tensors) fuzz::touch(t.raw_data(), t.nbytes());
      // A restored state is saved again with the same type and groups.
      FUZZ_REQUIRE(back.values.at("optim.type") == opt->type(), "optimizer type changed");
    } catch (const Error&) {
    }
  }
  return 0;
}
