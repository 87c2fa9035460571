// Tiny runs and PNG checks for the report tests (report_test_util.h).
#include "tests/report/report_test_util.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "cl/task_loop.h"
#include "data/image_io.h"
#include "tensor/error.h"

namespace sdlora::report::test {
namespace {

namespace fs = std::filesystem;

void put_u32(std::vector<uint8_t>& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<uint8_t>(v >> s));
}

// idx files as Fashion-MNIST names them: 10 classes of 8 x 8 images, the class a bright 2 x 4 bar
// at a class-specific place, plus noise.
void write_dataset(const std::string& dir, int per_class) {
  fs::create_directories(dir);
  for (const char* prefix : {"train", "t10k"}) {
    const int n = 10 * per_class;
    std::vector<uint8_t> img, lab;
    put_u32(img, 0x00000803);
    put_u32(img, static_cast<uint32_t>(n));
    put_u32(img, 8);
    put_u32(img, 8);
    put_u32(lab, 0x00000801);
    put_u32(lab, static_cast<uint32_t>(n));
    uint32_t state = prefix[0] == 't' && prefix[1] == '1' ? 11u : 5u;
    for (int i = 0; i < n; ++i) {
      const int c = i % 10;
      lab.push_back(static_cast<uint8_t>(c));
      for (int y = 0; y < 8; ++y)
        for (int x = 0; x < 8; ++x) {
          state = state * 1664525u + 1013904223u;
          const bool on = y / 2 == c % 4 && x / 4 == (c / 4) % 2 && (c < 8 || x % 2 == 0);
          img.push_back(static_cast<uint8_t>((on ? 180 : 0) + (state >> 25)));
        }
    }
    std::ofstream(dir + "/" + prefix + "-images-idx3-ubyte", std::ios::binary)
        .write(reinterpret_cast<const char*>(img.data()), static_cast<std::streamsize>(img.size()));
    std::ofstream(dir + "/" + prefix + "-labels-idx1-ubyte", std::ios::binary)
        .write(reinterpret_cast<const char*>(lab.data()), static_cast<std::streamsize>(lab.size()));
  }
}

}  // namespace

cl::Config tiny_run_config(const std::string& method, const std::string& data_dir) {
  cl::Config c;
  c.dataset = "fashion-mnist";
  c.data_path = data_dir;
  c.method = method;
  c.init_cls = 4;
  c.increment = 3;
  c.seed = 1993;
  c.init_epoch = 3;
  c.epochs = 3;
  c.init_lr = 0.1;
  c.lrate = 0.1;
  c.scheduler = "constant";
  c.batch_size = 8;
  c.rank = 2;
  c.kd_tau = 0.0;
  c.backbone = "custom";
  c.image_size = 8;
  c.patch_size = 4;
  c.embed_dim = 16;
  c.depth = 1;
  c.num_heads = 2;
  c.mlp_ratio = 2.0;
  c.channels = 1;
  c.transform = "none";
  c.device = "cpu";
  c.num_workers = 1;
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
    const std::string dir =
        (fs::temp_directory_path() / ("sdlora_report_" + std::to_string(::getpid()))).string();
    fs::remove_all(dir);
    write_dataset(dir + "/data", 12);
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
