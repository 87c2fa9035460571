// Tiny runs and PNG checks for the report tests (report_test_util.h).
#include "tests/report/report_test_util.h"

#include <filesystem>
#include <fstream>
#include <vector>

#include "cl/task_loop.h"
#include "data/image_io.h"
#include "tensor/error.h"
#include "tests/cl/cl_test_util.h"
#include "tests/data/data_test_util.h"

namespace sdlora::report::test {

namespace fs = std::filesystem;

cl::Config tiny_run_config(const std::string& method, const std::string& data_dir) {
  // The cl tests' tiny ViT and schedule, on the Fashion-MNIST-format folder: 3 tasks of 4, 3 and
  // 3 classes, 3 epochs each; KD keeps every direction (tau 0).
  cl::Config c = cl::test::tiny_config(method);
  c.dataset = "fashion-mnist";
  c.data_path = data_dir;
  c.init_cls = 4;
  c.increment = 3;
  c.init_epoch = 3;
  c.epochs = 3;
  c.batch_size = 8;
  c.kd_tau = 0.0;
  c.cache_mb = 8;
  c.validate();
  return c;
}

const std::string& tiny_runs_root() {
  // Removed when the test program ends.
  struct Folder {
    std::string path;
    ~Folder() { fs::remove_all(path); }
  };
  static const Folder root{[] {
    const std::string dir = sdlora::test::temp_dir("report");
    data::test::write_bar_dataset(dir + "/data", {12, 5, 11, 180, 7});
    for (const char* m : {"sdlora", "sdlora-kd", "seq-lora"}) {
      cl::RunOptions o;
      o.run_dir = dir + "/" + m;
      cl::run_training(tiny_run_config(m, dir + "/data"), o);
    }
    return dir;
  }()};
  return root.path;
}

PngSize png_size(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  SDLORA_CHECK(in.good(), "cannot read '", path, "'");
  unsigned char b[24] = {};
  in.read(reinterpret_cast<char*>(b), sizeof b);
  SDLORA_CHECK(in.gcount() == 24, "'", path, "': shorter than a PNG header");
  static const unsigned char kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  SDLORA_CHECK(std::equal(kSignature, kSignature + 8, b), "'", path, "': no PNG signature");
  SDLORA_CHECK(std::string(reinterpret_cast<char*>(b + 12), 4) == "IHDR", "'", path,
               "': the first chunk is not IHDR");
  auto be32 = [&](int at) {
    return (uint32_t{b[at]} << 24) | (uint32_t{b[at + 1]} << 16) | (uint32_t{b[at + 2]} << 8) |
           uint32_t{b[at + 3]};
  };
  return {be32(16), be32(20)};
}

double ink_fraction(const std::string& path, double lo, double hi) {
  const data::Image img = data::load_image(path, 3);
  int64_t ink = 0, all = 0;
  for (int y = static_cast<int>(lo * img.h); y < static_cast<int>(hi * img.h); ++y)
    for (int x = static_cast<int>(lo * img.w); x < static_cast<int>(hi * img.w); ++x) {
      ++all;
      for (int ch = 0; ch < 3; ++ch)
        if (img.at(y, x, ch) != img.at(0, 0, ch)) {
          ++ink;
          break;
        }
    }
  return all > 0 ? static_cast<double>(ink) / static_cast<double>(all) : 0.0;
}

}  // namespace sdlora::report::test
