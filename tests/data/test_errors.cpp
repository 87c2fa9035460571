// Failure paths: every bad input raises an error that names the file or folder a user must fix.
#include <gtest/gtest.h>

#include <filesystem>

#include "data/cifar100.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"
#include "data/image_io.h"
#include "data/pickle.h"
#include "tests/data/data_test_util.h"

namespace sdlora::data {
namespace {

using test::TempDir;

// Runs f, expecting an Error whose message contains every one of `parts`.
template <typename F>
void expect_error(F&& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "expected an error mentioning " << parts.front();
  } catch (const Error& e) {
    const std::string m = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(m.find(p), std::string::npos) << "'" << p << "' not in: " << m;
  }
}

// A JPEG whose entropy-coded data is most of the file (a busy pattern), so cutting it keeps the
// headers and loses the end of the scan.
std::string jpeg_file(const TempDir& dir, const std::string& rel) {
  const std::string path = dir.file(rel);
  test::write_jpeg(path, test::pattern_image(96, 128, 3, 1), 90);
  return path;
}

TEST(BadImages, TruncatedJpeg) {
  TempDir dir;
  const std::string path = jpeg_file(dir, "cut.jpg");
  auto bytes = test::read_bytes(path);
  bytes.resize(bytes.size() * 2 / 3);
  test::write_bytes(path, bytes);
  expect_error([&] { load_image(path); }, {"truncated JPEG", path});
  // Cut inside the headers: no scan at all.
  bytes.resize(300);
  test::write_bytes(path, bytes);
  expect_error([&] { load_image(path); }, {"truncated or corrupt JPEG", path});
}

TEST(BadImages, CorruptJpegHeader) {
  TempDir dir;
  const std::string path = jpeg_file(dir, "bad.jpg");
  auto bytes = test::read_bytes(path);
  for (size_t i = 3; i < 200 && i < bytes.size(); ++i) bytes[i] = 0x11;  // wipe the markers
  test::write_bytes(path, bytes);
  expect_error([&] { load_image(path); }, {path});
}

TEST(BadImages, TruncatedPng) {
  TempDir dir;
  const std::string path = dir.file("cut.png");
  test::write_png(path, test::pattern_image(20, 20, 3, 1));
  auto bytes = test::read_bytes(path);
  bytes.resize(bytes.size() - 20);
  test::write_bytes(path, bytes);
  expect_error([&] { load_image(path); }, {"truncated PNG", path});
}

TEST(BadImages, CorruptPngData) {
  TempDir dir;
  const std::string path = dir.file("bad.png");
  test::write_png(path, test::pattern_image(20, 20, 3, 1));
  auto bytes = test::read_bytes(path);
  for (size_t i = 45; i < bytes.size() - 20; ++i) bytes[i] ^= 0x5a;  // scramble the compressed data
  test::write_bytes(path, bytes);
  expect_error([&] { load_image(path); }, {"corrupt PNG", path});
}

TEST(BadImages, NotAnImageEmptyOrMissing) {
  TempDir dir;
  const std::string text = dir.file("note.jpg");
  test::write_text(text, "hello, I am text");
  expect_error([&] { load_image(text); }, {"not a JPEG or PNG", text});
  const std::string empty = dir.file("empty.png");
  test::write_text(empty, "");
  expect_error([&] { load_image(empty); }, {"empty image file", empty});
  expect_error([&] { load_image(dir.path() + "/nope.jpg"); }, {"file not found", "nope.jpg"});
}

TEST(BadCifar, BinaryFileOfTheWrongSize) {
  TempDir dir;
  auto bytes = test::cifar_binary_bytes({test::pattern_image(32, 32, 3, 0)}, {1}, {0});
  bytes.pop_back();
  test::write_bytes(dir.file("train.bin"), bytes);
  expect_error([&] { open_cifar100(dir.path(), Split::kTrain); },
               {dir.path() + "/train.bin", "3073 bytes", "3074"});
}

TEST(BadCifar, LabelOutOfRange) {
  TempDir dir;
  test::write_bytes(dir.file("train.bin"),
                    test::cifar_binary_bytes({test::pattern_image(32, 32, 3, 0)}, {100}, {0}));
  expect_error([&] { open_cifar100(dir.path(), Split::kTrain); }, {"train.bin", "fine label 100"});
}

TEST(BadCifar, MissingFilesAndFolders) {
  TempDir dir;
  expect_error([&] { open_cifar100(dir.path(), Split::kTrain); },
               {"no CIFAR-100 files in", dir.path()});
  expect_error([&] { open_cifar100(dir.path() + "/absent", Split::kTrain); },
               {"CIFAR-100 folder not found"});
  test::write_bytes(dir.file("train.bin"),
                    test::cifar_binary_bytes({test::pattern_image(32, 32, 3, 0)}, {1}, {0}));
  expect_error([&] { open_cifar100(dir.path(), Split::kTest); }, {"file not found", "test.bin"});
}

TEST(BadCifar, TruncatedAndWrongPickles) {
  TempDir dir;
  auto bytes = test::cifar_python_batch_pickle({test::pattern_image(32, 32, 3, 0)}, {1}, {0});
  bytes.resize(bytes.size() / 2);
  test::write_bytes(dir.file("train"), bytes);
  expect_error([&] { open_cifar100(dir.path(), Split::kTrain); },
               {"corrupt pickle", dir.path() + "/train"});
  // A pickle of the wrong thing: the meta dict where a batch belongs.
  test::write_bytes(dir.file("train"), test::cifar_python_meta_pickle({"a"}, {"b"}));
  expect_error([&] { open_cifar100(dir.path(), Split::kTrain); },
               {"has no entry 'data'", "/train"});
  expect_error(
      [&] {
        pickle::load({0x80, 2, 0xff, '.'}, "x.pkl");
      },
      {"unsupported opcode 0xff", "x.pkl"});
}

TEST(BadIdx, TruncatedGzipAndWrongSizes) {
  TempDir dir;
  std::vector<uint8_t> px(3 * 28 * 28, 7);
  const auto images = test::idx_bytes({3, 28, 28}, px);
  test::write_gzip(dir.file("train-images-idx3-ubyte.gz"), images);
  test::write_bytes(dir.file("train-labels-idx1-ubyte"), test::idx_bytes({3}, {1, 2, 3}));
  ASSERT_EQ(open_fashion_mnist(dir.path(), Split::kTrain)->size(), 3);

  auto gz = test::read_bytes(dir.path() + "/train-images-idx3-ubyte.gz");
  gz.resize(gz.size() / 2);
  test::write_bytes(dir.path() + "/train-images-idx3-ubyte.gz", gz);
  expect_error([&] { open_fashion_mnist(dir.path(), Split::kTrain); },
               {"gzip", "train-images-idx3-ubyte.gz"});

  std::vector<uint8_t> short_images = images;
  short_images.resize(short_images.size() - 5);
  test::write_gzip(dir.path() + "/train-images-idx3-ubyte.gz", short_images);
  expect_error([&] { open_fashion_mnist(dir.path(), Split::kTrain); },
               {"train-images-idx3-ubyte.gz", "header promises"});

  test::write_gzip(dir.path() + "/train-images-idx3-ubyte.gz", images);
  test::write_bytes(dir.file("train-labels-idx1-ubyte"), test::idx_bytes({2}, {1, 2}));
  expect_error([&] { open_fashion_mnist(dir.path(), Split::kTrain); }, {"3 images", "2 labels"});
  expect_error([&] { open_fashion_mnist(dir.path(), Split::kTest); },
               {"t10k-images-idx3-ubyte", "not found"});
}

TEST(BadFolders, MissingSplitFolder) {
  TempDir dir;
  test::write_png(dir.file("train/a/1.png"), test::pattern_image(4, 4, 3, 0));
  expect_error([&] { make_dataset("imagenet-r", dir.path()); },
               {"missing split folder", dir.path() + "/test"});
}

TEST(BadFolders, EmptyClassFolder) {
  TempDir dir;
  test::write_png(dir.file("train/a/1.png"), test::pattern_image(4, 4, 3, 0));
  std::filesystem::create_directories(dir.path() + "/train/b");
  test::write_png(dir.file("test/a/1.png"), test::pattern_image(4, 4, 3, 0));
  std::filesystem::create_directories(dir.path() + "/test/b");
  expect_error([&] { make_dataset("imagenet-r", dir.path(), Split::kTest); },
               {"empty class folder", dir.path() + "/test/b"});
  TempDir tree;
  test::write_png(tree.file("a/1.png"), test::pattern_image(4, 4, 3, 0));
  test::write_text(tree.file("b/readme.txt"), "no images here");
  expect_error([&] { make_dataset("image-folder", tree.path()); },
               {"empty class folder", tree.path() + "/b"});
}

TEST(BadFolders, MissingRootAndNoClasses) {
  TempDir dir;
  expect_error([&] { make_dataset("imagenet-a", dir.path() + "/absent"); },
               {"imagenet-a folder not found", "absent"});
  expect_error([&] { make_dataset("image-folder", dir.path()); },
               {"no class folders in", dir.path()});
}

TEST(BadFolders, SplitFileNamingAMissingClassOrFile) {
  TempDir dir;
  test::write_png(dir.file("a/1.png"), test::pattern_image(4, 4, 3, 0));
  test::write_text(dir.file("split-seed0.txt"), "train\tghost/1.png\n");
  expect_error([&] { make_dataset("image-folder", dir.path()); },
               {"split-seed0.txt", "ghost/1.png"});
  test::write_text(dir.file("split-seed0.txt"), "train\ta/2.png\n");
  auto ds = make_dataset("image-folder", dir.path());
  expect_error([&] { ds->image(0); }, {"file not found", "a/2.png"});
  test::write_text(dir.file("split-seed0.txt"), "validation a/1.png\n");
  expect_error([&] { make_dataset("image-folder", dir.path()); }, {"split-seed0.txt", "line 1"});
}

TEST(BadDataset, UnknownNameListsTheKnownOnes) {
  expect_error([&] { make_dataset("cifar10", "/data"); },
               {"unknown dataset 'cifar10'", "fashion-mnist", "cifar100", "imagenet-r",
                "imagenet-a", "domainnet", "image-folder"});
}

}  // namespace
}  // namespace sdlora::data
