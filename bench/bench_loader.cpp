// Loader throughput: writes synthetic 500 x 375 JPEGs (class folders) to a temporary folder, then
// for each thread count runs the training pipeline (RandomResizedCrop 224 + flip) over them and
// prints images/s for the first epoch (decode + augment) and the cached epochs (augment only),
// as one JSON object on stdout.
//
//   bench_loader [--images N] [--threads 1,2,4] [--batch B] [--epochs E] [--width W] [--height H]
//                [--pipeline vit224] [--cache-mb MB] [--device cpu|cuda] [--quality Q]
//                [--keep DIR]
// --keep DIR writes the images into DIR and leaves them there, for bench/torch_loader_reference.py
// to read the same files.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include "data/image_folder.h"
#include "data/loader.h"
#include "tensor/random.h"

namespace fs = std::filesystem;
using namespace sdlora;
using namespace sdlora::data;

namespace {

struct Args {
  int images = 256;
  std::vector<int> threads;
  int batch = 32;
  int epochs = 3;
  int width = 500, height = 375;
  std::string pipeline = "vit224";
  int64_t cache_mb = 4096;
  std::string device = "cpu";
  int quality = 90;
  std::string keep;  // a folder to write the images into and keep ("": a temporary one)
};

Args parse(int argc, char** argv) {
  Args a;
  CLI::App app{"Loader throughput on synthetic JPEGs (first epoch, then cached epochs); JSON"};
  app.add_option("--images", a.images, "synthetic JPEGs to write and read")->capture_default_str();
  app.add_option("--threads", a.threads, "worker counts to compare (default 1, 2, 4, ... cores)")
      ->delimiter(',');
  app.add_option("--batch", a.batch, "images per batch")->capture_default_str();
  app.add_option("--epochs", a.epochs, "epochs (the first decodes, the rest hit the cache)")
      ->capture_default_str();
  app.add_option("--width", a.width, "JPEG width")->capture_default_str();
  app.add_option("--height", a.height, "JPEG height")->capture_default_str();
  app.add_option("--pipeline", a.pipeline, "transform preset")->capture_default_str();
  app.add_option("--cache-mb", a.cache_mb, "decoded-image cache")->capture_default_str();
  app.add_option("--device", a.device, "cpu or cuda")->capture_default_str();
  app.add_option("--quality", a.quality, "JPEG quality")->capture_default_str();
  app.add_option("--keep", a.keep, "write the images into this folder and keep them");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e));
  }
  if (a.threads.empty()) {
    const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    for (int t = 1; t < hw; t *= 2) a.threads.push_back(t);
    a.threads.push_back(hw);
  }
  if (a.epochs < 2) throw std::runtime_error("--epochs must be at least 2 (one first, one cached)");
  return a;
}

// A photo-like image: smooth colour fields, a few edges and mild noise, so JPEG sizes are
// realistic (tens of kilobytes at 500 x 375).
std::vector<uint8_t> synthetic_photo(int h, int w, int seed) {
  std::vector<uint8_t> px(static_cast<size_t>(h) * w * 3);
  const double fx = 0.01 + 0.002 * (seed % 7), fy = 0.013 + 0.003 * (seed % 5);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      const uint64_t i = static_cast<uint64_t>(y) * w + x;
      const double noise = philox_uniform(static_cast<uint64_t>(seed), 0, i) * 24.0;
      const bool edge = ((x / 37 + y / 53 + seed) % 5) == 0;
      for (int c = 0; c < 3; ++c) {
        double v = 128 + 80 * std::sin(fx * x * (c + 1) + fy * y + seed) + noise + (edge ? 40 : 0);
        px[i * 3 + c] = static_cast<uint8_t>(std::clamp(v, 0.0, 255.0));
      }
    }
  return px;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Consumes one epoch; returns its image count.
int64_t drain(Loader& loader, int64_t epoch, Device device) {
  loader.start_epoch(epoch);
  Batch b;
  int64_t n = 0;
  while (loader.next(b)) n += b.labels.size(0);
  synchronize(device);
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    const Device device = Device::parse(a.device);

    // Synthetic dataset: 10 class folders.
    const fs::path root = a.keep.empty() ? fs::temp_directory_path() /
                                               ("sdlora-bench-loader-" + std::to_string(::getpid()))
                                         : fs::path(a.keep);
    if (!a.keep.empty() && fs::exists(root) && !fs::is_empty(root))
      throw std::runtime_error("--keep " + a.keep + ": the folder exists and is not empty");
    fs::create_directories(root);
    struct Cleanup {
      fs::path p;
      ~Cleanup() {
        std::error_code ec;
        if (!p.empty()) fs::remove_all(p, ec);
      }
    } cleanup{a.keep.empty() ? root : fs::path()};
    int64_t jpeg_bytes = 0;
    for (int i = 0; i < a.images; ++i) {
      const fs::path dir = root / ("class" + std::to_string(i % 10));
      fs::create_directories(dir);
      const fs::path file = dir / (std::to_string(i) + ".jpg");
      const auto px = synthetic_photo(a.height, a.width, i);
      if (!stbi_write_jpg(file.string().c_str(), a.width, a.height, 3, px.data(), a.quality))
        throw std::runtime_error("cannot write " + file.string());
      jpeg_bytes += static_cast<int64_t>(fs::file_size(file));
    }
    ImageFolderOptions fo;
    fo.train_fraction = 1.0;
    auto dataset = open_image_folder(root.string(), fo, "synthetic");
    const Pipeline pipeline = make_pipeline(a.pipeline, 3);

    std::ostringstream runs;
    for (size_t r = 0; r < a.threads.size(); ++r) {
      LoaderOptions o;
      o.batch_size = a.batch;
      o.num_workers = a.threads[r];
      o.seed = 1;
      o.device = device;
      o.cache_bytes = a.cache_mb << 20;
      o.transform = pipeline.train;
      Loader loader(dataset, o);
      auto t0 = std::chrono::steady_clock::now();
      const int64_t n_first = drain(loader, 0, device);
      const double first_s = seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
      int64_t n_cached = 0;
      for (int e = 1; e < a.epochs; ++e) n_cached += drain(loader, e, device);
      const double cached_s = seconds_since(t0);
      const LoaderStats st = loader.stats();
      runs << (r ? ",\n" : "\n") << "    {\"threads\": " << a.threads[r]
           << ", \"first_epoch_images_per_s\": " << n_first / first_s
           << ", \"cached_epoch_images_per_s\": " << n_cached / cached_s
           << ", \"first_epoch_s\": " << first_s << ", \"cached_epochs_s\": " << cached_s
           << ", \"cached_images\": " << st.cached_images
           << ", \"cached_bytes\": " << st.cached_bytes << "}";
    }
    std::cout << "{\n  \"benchmark\": \"loader\",\n  \"images\": " << a.images
              << ",\n  \"image_size\": [" << a.width << ", " << a.height
              << "],\n  \"jpeg_quality\": " << a.quality
              << ",\n  \"mean_jpeg_bytes\": " << jpeg_bytes / std::max(a.images, 1)
              << ",\n  \"pipeline\": \"" << a.pipeline << " train: " << pipeline.train->describe()
              << "\",\n  \"batch_size\": " << a.batch << ",\n  \"epochs\": " << a.epochs
              << ",\n  \"device\": \"" << device.str()
              << "\",\n  \"hardware_threads\": " << std::thread::hardware_concurrency()
              << ",\n  \"runs\": [" << runs.str() << "\n  ]\n}\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_loader: " << e.what() << "\n";
    return 1;
  }
}
