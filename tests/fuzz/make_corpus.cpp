// Writes the fuzzers' seed corpora, one folder per harness under the folder given as argument,
// from the test fixtures and from the same writers the unit tests use: valid inputs of every
// format, so fuzzing starts deep inside each parser.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "autograd/var.h"
#include "cl/config.h"
#include "cl/run_dir.h"
#include "data/cifar100.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/sdlora.h"
#include "nn/vit.h"
#include "tensor/random.h"
#include "tests/common/tiny_vit.h"
#include "tests/data/data_test_util.h"

namespace fs = std::filesystem;
using namespace sdlora;

namespace {

std::vector<uint8_t> slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
std::string text_of(const fs::path& p) {
  const std::vector<uint8_t> b = slurp(p);
  return std::string(b.begin(), b.end());
}
void put(const fs::path& dir, const std::string& name, const std::vector<uint8_t>& bytes) {
  fs::create_directories(dir);
  data::test::write_bytes((dir / name).string(), bytes);
}
void put(const fs::path& dir, const std::string& name, const std::string& text) {
  put(dir, name, std::vector<uint8_t>(text.begin(), text.end()));
}
std::vector<uint8_t> prefixed(uint8_t first, std::vector<uint8_t> rest) {
  rest.insert(rest.begin(), first);
  return rest;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: make_corpus OUT_DIR SOURCE_DIR\n";
    return 2;
  }
  const fs::path out(argv[1]), src(argv[2]);
  const fs::path scratch = out / "scratch";
  fs::create_directories(scratch);

  // safetensors: the nn fixtures and a small file of every dtype.
  for (const char* f : {"sdlora_task2_paper.safetensors", "sdlora_task2_official.safetensors"}) {
    put(out / "safetensors", f, slurp(src / "tests/nn/fixtures" / f));
    put(out / "checkpoint", f, slurp(src / "tests/nn/fixtures" / f));
  }
  {
    std::map<std::string, Tensor> t = {{"f", Tensor::full({2, 3}, 1.0)},
                                       {"i", Tensor::zeros({4}, DType::kInt64)},
                                       {"u", Tensor::zeros({3, 1}, DType::kUInt8)},
                                       {"e", Tensor::zeros({0, 5})}};
    save_safetensors((scratch / "small.safetensors").string(), t, {{"format", "pt"}});
    put(out / "safetensors", "small.safetensors", slurp(scratch / "small.safetensors"));
  }
  // A run checkpoint: the adapters with a current pair, a head and an SGD state after a step.
  {
    ViT vit(sdlora::test::tiny_vit_config(0));
    SDLoRA ad(vit, SDLoRAMode::kPaper);
    Generator gen(3);
    ad.begin_task(2, gen);
    std::map<std::string, Tensor> tensors = ad.state_dict(true);
    std::map<std::string, std::string> meta = ad.metadata(true);
    std::vector<Var> params = {Var(Tensor::full({4, 16}, 1.0), true),
                               Var(Tensor::full({4}, 1.0), true)};
    SGD sgd(params, SGDOptions{0.1, 0.9, 0.0, 0.0, false});
    for (Var& p : params) p.set_grad(Tensor::full(p.data().shape(), 1.0));
    sgd.step();
    const OptimizerState s = sgd.state_dict();
    for (const auto& [k, v] : s.tensors) tensors[k] = v;
    for (const auto& [k, v] : s.values) meta[k] = v;
    tensors["head.weight"] = params[0].data();
    tensors["head.bias"] = params[1].data();
    save_safetensors((scratch / "task_0.safetensors").string(), tensors, meta);
    put(out / "checkpoint", "task_0.safetensors", slurp(scratch / "task_0.safetensors"));
    put(out / "safetensors", "task_0.safetensors", slurp(scratch / "task_0.safetensors"));
  }

  // Pickles: the checked-in CIFAR-100 python fixture and the test writer's batch and meta.
  for (const char* f : {"train", "meta"})
    put(out / "pickle", f, slurp(src / "tests/data/fixtures/cifar100_python_tiny" / f));
  const std::vector<data::Image> imgs = {data::test::pattern_image(32, 32, 3, 1),
                                         data::test::pattern_image(32, 32, 3, 2)};
  put(out / "pickle", "batch2", data::test::cifar_python_batch_pickle(imgs, {3, 99}, {1, 19}));
  put(out / "pickle", "meta2", data::test::cifar_python_meta_pickle({"a", "b"}, {"c"}));

  // CIFAR binary: records, and a names file (first byte: 0 records, 1 names).
  put(out / "cifar_binary", "records",
      prefixed(0, data::test::cifar_binary_bytes(imgs, {3, 99}, {1, 19})));
  std::string names;
  for (int i = 0; i < 100; ++i) names += "name" + std::to_string(i) + "\n";
  put(out / "cifar_binary", "names", prefixed(1, std::vector<uint8_t>(names.begin(), names.end())));

  // idx: images of 2 x 3 x 3 plain and gzipped.
  const std::vector<uint8_t> idx = data::test::idx_bytes({2, 3, 3}, std::vector<uint8_t>(18, 5));
  put(out / "idx", "images", idx);
  data::test::write_gzip((scratch / "images.gz").string(), idx);
  put(out / "idx", "images.gz", slurp(scratch / "images.gz"));

  // Images: JPEG colour and grey, PNG colour, grey and RGBA.
  data::test::write_jpeg((scratch / "c.jpg").string(), data::test::smooth_image(9, 7, 3, 1), 90);
  data::test::write_jpeg((scratch / "g.jpg").string(), data::test::smooth_image(8, 8, 1, 2), 90);
  data::test::write_png((scratch / "c.png").string(), data::test::pattern_image(5, 6, 3, 3));
  data::test::write_png((scratch / "g.png").string(), data::test::pattern_image(4, 4, 1, 4));
  data::test::write_png((scratch / "a.png").string(), data::test::pattern_image(3, 3, 4, 5));
  for (const char* f : {"c.jpg", "g.jpg", "c.png", "g.png", "a.png"})
    put(out / "image", f, slurp(scratch / f));

  // Split files (first byte even) and list files (odd; train NUL test).
  put(out / "image_lists", "split",
      std::string(1, '\0') + "# split\ntrain\ta/1.png\ntest\ta/2.png\ntrain\tb/3.jpg\n");
  put(out / "image_lists", "lists",
      std::string(1, '\1') + "p/a/1.jpg 0\np/b/2.jpg 1\n" + std::string(1, '\0') + "p/a/3.jpg 0\n");

  // Configs: every shipped config, one with overrides.
  for (const auto& e : fs::directory_iterator(src / "configs"))
    if (e.path().extension() == ".json")
      put(out / "config", e.path().filename().string(), text_of(e.path()));
  put(out / "config", "overrides",
      "set epochs=1\nset milestones=2,3\nset rank_schedule=[[0,4],[2,2]]\nset prefix=run-a\n"
      "set data_path=data/fm\n" +
          text_of(src / "configs/demo-fashion-mnist.json"));

  // state.json of a run with no finished task, against the harness's config.
  {
    cl::Config c;
    c.dataset = "fashion-mnist";
    c.init_cls = 2;
    c.increment = 2;
    cl::RunState s;
    s.result.config = c;
    put(out / "state", "state.json", cl::run_state_json(s));
  }
  fs::remove_all(scratch);
  return 0;
}
