// Dataset readers on tiny files written by the tests (and the checked-in Python pickle fixture):
// Fashion-MNIST idx (plain and gzipped), CIFAR-100 binary and python, image folders in their
// three layouts, and the factory.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "data/cifar100.h"
#include "data/dataset.h"
#include "data/fashion_mnist.h"
#include "data/image_folder.h"
#include "data/image_io.h"
#include "data/pickle.h"
#include "tests/data/data_test_util.h"

namespace sdlora::data {
namespace {

namespace fs = std::filesystem;
using test::TempDir;

// n images of h x w whose pixel (i, y, x) = (i * 10 + y * w + x) % 256, labels i % 10.
void write_fashion(const TempDir& dir, const std::string& prefix, int n, bool gz) {
  std::vector<uint8_t> px, labels;
  for (int i = 0; i < n; ++i) {
    for (int p = 0; p < 28 * 28; ++p) px.push_back(static_cast<uint8_t>((i * 10 + p) % 256));
    labels.push_back(static_cast<uint8_t>((i * 3) % 10));
  }
  const auto images = test::idx_bytes({static_cast<uint32_t>(n), 28, 28}, px);
  const auto lab = test::idx_bytes({static_cast<uint32_t>(n)}, labels);
  const std::string ext = gz ? ".gz" : "";
  if (gz) {
    test::write_gzip(dir.file(prefix + "-images-idx3-ubyte.gz"), images);
    test::write_gzip(dir.file(prefix + "-labels-idx1-ubyte.gz"), lab);
  } else {
    test::write_bytes(dir.file(prefix + "-images-idx3-ubyte"), images);
    test::write_bytes(dir.file(prefix + "-labels-idx1-ubyte"), lab);
  }
}

void check_fashion(const Dataset& ds, int n) {
  ASSERT_EQ(ds.size(), n);
  EXPECT_EQ(ds.num_classes(), 10);
  EXPECT_EQ(ds.class_names()[9], "Ankle boot");
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(ds.label(i), (i * 3) % 10);
    const Image img = ds.image(i);
    ASSERT_EQ(img.shape_str(), "28x28x1");
    EXPECT_EQ(img.at(0, 0, 0), (i * 10) % 256);
    EXPECT_EQ(img.at(2, 5, 0), (i * 10 + 2 * 28 + 5) % 256);
  }
}

TEST(FashionMnist, ReadsPlainIdxFiles) {
  TempDir dir;
  write_fashion(dir, "train", 5, false);
  write_fashion(dir, "t10k", 3, false);
  check_fashion(*open_fashion_mnist(dir.path(), Split::kTrain), 5);
  check_fashion(*open_fashion_mnist(dir.path(), Split::kTest), 3);
}

TEST(FashionMnist, ReadsGzippedIdxFilesThroughTheFactory) {
  TempDir dir;
  write_fashion(dir, "train", 4, true);
  write_fashion(dir, "t10k", 2, true);
  check_fashion(*make_dataset("fashion-mnist", dir.path(), Split::kTrain), 4);
  auto test_set = make_dataset("fashion-mnist", dir.path(), Split::kTest);
  check_fashion(*test_set, 2);
  EXPECT_NE(test_set->source(1).find("t10k-images-idx3-ubyte.gz"), std::string::npos);
}

TEST(FashionMnist, RealFilesWhenInstalled) {
  const std::string root = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(root))
    GTEST_SKIP() << root << " not present (Debian package dataset-fashion-mnist)";
  auto train = open_fashion_mnist(root, Split::kTrain);
  auto test = open_fashion_mnist(root, Split::kTest);
  EXPECT_EQ(train->size(), 60000);
  EXPECT_EQ(test->size(), 10000);
  const Image first = train->image(0);
  ASSERT_EQ(first.shape_str(), "28x28x1");
  // Known facts of the published files: the first labels, pixel sums, and 6,000 images per class.
  EXPECT_EQ(train->label(0), 9);
  EXPECT_EQ(train->label(3), 3);
  EXPECT_EQ(test->label(1), 2);
  EXPECT_EQ(first.at(14, 14, 0), 217);
  int64_t sum = 0;
  for (uint8_t v : first.pixels) sum += v;
  EXPECT_EQ(sum, 76247);
  std::vector<int> per_class(10, 0);
  for (int64_t i = 0; i < train->size(); ++i) ++per_class[static_cast<size_t>(train->label(i))];
  EXPECT_EQ(per_class, std::vector<int>(10, 6000));
}

std::vector<Image> cifar_images(int n) {
  std::vector<Image> v;
  for (int i = 0; i < n; ++i) v.push_back(test::pattern_image(32, 32, 3, i));
  return v;
}

TEST(Cifar100, ReadsTheBinaryVersion) {
  TempDir dir;
  const auto imgs = cifar_images(4);
  test::write_bytes(dir.file("cifar-100-binary/train.bin"),
                    test::cifar_binary_bytes(imgs, {5, 99, 0, 5}, {1, 2, 3, 1}));
  test::write_bytes(dir.file("cifar-100-binary/test.bin"),
                    test::cifar_binary_bytes({imgs[2]}, {42}, {7}));
  auto train = open_cifar100(dir.path(), Split::kTrain);  // finds the cifar-100-binary folder
  ASSERT_EQ(train->size(), 4);
  EXPECT_EQ(train->num_classes(), 100);
  EXPECT_EQ(train->class_names()[0], "apple");  // no fine_label_names.txt: built-in names
  EXPECT_EQ(train->label(1), 99);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(train->image(i).pixels, imgs[static_cast<size_t>(i)].pixels);
  auto test_set = make_dataset("cifar100", dir.path() + "/cifar-100-binary", Split::kTest);
  ASSERT_EQ(test_set->size(), 1);
  EXPECT_EQ(test_set->label(0), 42);
  EXPECT_EQ(test_set->image(0).pixels, imgs[2].pixels);
}

TEST(Cifar100, BinaryClassNamesFromTheNamesFile) {
  TempDir dir;
  std::string names;
  for (int k = 0; k < 100; ++k) names += "name" + std::to_string(k) + "\n";
  test::write_text(dir.file("fine_label_names.txt"), names + "\n\n");
  test::write_bytes(dir.file("train.bin"), test::cifar_binary_bytes(cifar_images(1), {3}, {0}));
  auto ds = open_cifar100(dir.path(), Split::kTrain);
  EXPECT_EQ(ds->class_names()[3], "name3");
}

TEST(Cifar100, ReadsThePythonVersionAsCPickleWroteIt) {
  TempDir dir;
  const auto imgs = cifar_images(3);
  std::vector<std::string> fine, coarse;
  for (int k = 0; k < 100; ++k) fine.push_back("f" + std::to_string(k));
  for (int k = 0; k < 20; ++k) coarse.push_back("c" + std::to_string(k));
  test::write_bytes(dir.file("cifar-100-python/train"),
                    test::cifar_python_batch_pickle(imgs, {7, 0, 63}, {1, 2, 3}));
  test::write_bytes(dir.file("cifar-100-python/test"),
                    test::cifar_python_batch_pickle({imgs[1]}, {12}, {4}));
  test::write_bytes(dir.file("cifar-100-python/meta"),
                    test::cifar_python_meta_pickle(fine, coarse));
  auto train = open_cifar100(dir.path(), Split::kTrain);
  ASSERT_EQ(train->size(), 3);
  EXPECT_EQ(train->label(0), 7);
  EXPECT_EQ(train->label(2), 63);
  EXPECT_EQ(train->class_names()[63], "f63");
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(train->image(i).pixels, imgs[static_cast<size_t>(i)].pixels);
  auto test_set = open_cifar100(dir.path() + "/cifar-100-python", Split::kTest);
  ASSERT_EQ(test_set->size(), 1);
  EXPECT_EQ(test_set->label(0), 12);
  EXPECT_EQ(test_set->image(0).pixels, imgs[1].pixels);
}

TEST(Cifar100, ReadsAPicklePythonItselfWrote) {
  // fixtures/make_cifar100_python_tiny.py: Python 3, protocol 2 (BINUNICODE keys, array bytes
  // through _codecs.encode). Pixel k of the planes of image i is (i * 37 + k * 3) % 256.
  const std::string root = test::fixtures_dir() + "/cifar100_python_tiny";
  auto train = make_dataset("cifar100", root, Split::kTrain);
  ASSERT_EQ(train->size(), 6);
  EXPECT_EQ(train->label(1), 99);
  EXPECT_EQ(train->label(4), 50);
  EXPECT_EQ(train->class_names()[99], "fine_99");
  for (int i = 0; i < 6; ++i) {
    const Image img = train->image(i);
    for (int ch = 0; ch < 3; ++ch)
      for (int p : {0, 1, 33, 1023}) {
        const int k = ch * 1024 + p;
        ASSERT_EQ(img.at(p / 32, p % 32, ch), (i * 37 + k * 3) % 256)
            << "image " << i << " channel " << ch;
      }
  }
  auto test_set = make_dataset("cifar100", root, Split::kTest);
  ASSERT_EQ(test_set->size(), 3);
  EXPECT_EQ(test_set->label(2), 42);
}

TEST(Pickle, ReadsScalarsContainersAndMemo) {
  // pickle.dumps({'a': [1, -2, 300, 70000, 2**40, True, None, 1.5], 'b': (b'xy', 'z'), 'c': <memo
  // of 'a'>}, 2) written opcode by opcode.
  std::vector<uint8_t> p = {
      0x80, 2,    '}', 'q', 0,    '(',  'X',  1,    0,    0,    0,    'a', ']',  'q',  1,
      '(',  'K',  1,   'J', 0xfe, 0xff, 0xff, 0xff, 'M',  0x2c, 0x01, 'J', 0x70, 0x11, 0x01,
      0x00, 0x8a, 6,   0,   0,    0,    0,    0x00, 0x01, 0x88, 'N',  'G', 0x3f, 0xf8, 0,
      0,    0,    0,   0,   0,    'e',  'X',  1,    0,    0,    0,    'b', 'C',  2,    'x',
      'y',  0x8c, 1,   'z', 0x86, 'X',  1,    0,    0,    0,    'c',  'h', 1,    'u',  '.'};
  const pickle::Ref root = pickle::load(p, "inline");
  const pickle::Ref a = pickle::get(root, "a", "inline");
  ASSERT_EQ(a->kind, pickle::Kind::kList);
  ASSERT_EQ(a->items.size(), 8u);
  EXPECT_EQ(a->items[0]->i, 1);
  EXPECT_EQ(a->items[1]->i, -2);
  EXPECT_EQ(a->items[2]->i, 300);
  EXPECT_EQ(a->items[3]->i, 70000);
  EXPECT_EQ(a->items[4]->i, int64_t{1} << 40);
  EXPECT_EQ(a->items[5]->kind, pickle::Kind::kBool);
  EXPECT_EQ(a->items[6]->kind, pickle::Kind::kNone);
  EXPECT_DOUBLE_EQ(a->items[7]->f, 1.5);
  const pickle::Ref b = pickle::get(root, "b", "inline");
  EXPECT_EQ(pickle::to_string_vector(b, "b"), (std::vector<std::string>{"xy", "z"}));
  EXPECT_EQ(pickle::get(root, "c", "inline"), a);  // BINGET returns the memoised list itself
  EXPECT_EQ(pickle::find(root, "missing"), nullptr);
}

std::string write_tree_image(const TempDir& dir, const std::string& rel, int seed, bool png) {
  const Image img = test::smooth_image(6 + seed % 3, 8, 3, seed);
  const std::string path = dir.file(rel);
  if (png)
    test::write_png(path, img);
  else
    test::write_jpeg(path, img);
  return path;
}

TEST(ImageFolder, PreSplitTrainAndTestFolders) {
  TempDir dir;
  write_tree_image(dir, "train/n02/b.jpg", 1, false);
  write_tree_image(dir, "train/n02/a.png", 2, true);
  write_tree_image(dir, "train/n01/x.JPEG", 3, false);
  write_tree_image(dir, "train/n01/deep/y.jpg", 4, false);  // nested folders count for their class
  test::write_text(dir.file("train/n01/notes.txt"), "not an image");
  write_tree_image(dir, "test/n02/c.jpg", 5, false);
  auto train = make_dataset("imagenet-r", dir.path(), Split::kTrain);
  ASSERT_EQ(train->size(), 4);
  EXPECT_EQ(train->class_names(), (std::vector<std::string>{"n01", "n02"}));
  EXPECT_EQ(train->label(0), 0);
  // Sorted by path inside the class: "deep/y.jpg" before "x.JPEG".
  EXPECT_NE(train->source(0).find("n01/deep/y.jpg"), std::string::npos) << train->source(0);
  EXPECT_NE(train->source(1).find("n01/x.JPEG"), std::string::npos) << train->source(1);
  EXPECT_EQ(train->label(2), 1);
  EXPECT_NE(train->source(2).find("n02/a.png"), std::string::npos);
  const Image png = train->image(2);
  EXPECT_EQ(png.pixels, test::smooth_image(8, 8, 3, 2).pixels);  // PNG is lossless
  const Image jpg = train->image(3);
  ASSERT_EQ(jpg.shape_str(), "7x8x3");
  const Image want = test::smooth_image(7, 8, 3, 1);
  for (size_t i = 0; i < want.pixels.size(); ++i)
    ASSERT_NEAR(jpg.pixels[i], want.pixels[i], 8) << i;
  auto test_set = make_dataset("imagenet-r", dir.path(), Split::kTest);
  ASSERT_EQ(test_set->size(), 1);
  EXPECT_EQ(test_set->label(0), 1);
  EXPECT_EQ(test_set->num_classes(), 2);
}

TEST(ImageFolder, GreyFilesBecomeColour) {
  TempDir dir;
  test::write_png(dir.file("train/a/g.png"), test::pattern_image(3, 4, 1, 0));
  test::write_png(dir.file("test/a/g.png"), test::pattern_image(3, 4, 1, 0));
  const Image img = make_dataset("image-folder", dir.path())->image(0);
  ASSERT_EQ(img.shape_str(), "3x4x3");
  EXPECT_EQ(img.at(2, 3, 0), img.at(2, 3, 2));
  EXPECT_EQ(img.at(2, 3, 1), test::pattern_image(3, 4, 1, 0).at(2, 3, 0));
}

TEST(ImageFolder, OneTreeIsSplitBySeedAndTheSplitFileIsReused) {
  TempDir dir;
  for (int i = 0; i < 10; ++i) write_tree_image(dir, "cat/" + std::to_string(i) + ".jpg", i, false);
  for (int i = 0; i < 5; ++i) write_tree_image(dir, "dog/" + std::to_string(i) + ".png", i, true);
  write_tree_image(dir, "owl/only.jpg", 0, false);
  DatasetOptions o;
  o.split_seed = 7;
  o.split = Split::kTrain;
  auto train = make_dataset("image-folder", dir.path(), o);
  o.split = Split::kTest;
  auto test_set = make_dataset("image-folder", dir.path(), o);
  // round(10 * 0.8) = 8 + 2; round(5 * 0.8) = 4 + 1; a single image goes to train.
  EXPECT_EQ(train->size(), 8 + 4 + 1);
  EXPECT_EQ(test_set->size(), 2 + 1);
  const std::string split_file = default_split_file(dir.path(), 7);
  ASSERT_TRUE(fs::exists(split_file));
  std::set<std::string> train_files, test_files;
  for (int64_t i = 0; i < train->size(); ++i) train_files.insert(train->source(i));
  for (int64_t i = 0; i < test_set->size(); ++i) test_files.insert(test_set->source(i));
  for (const auto& f : test_files) EXPECT_EQ(train_files.count(f), 0u) << f << " is in both splits";

  // The file fixes the split: new images are ignored, and a rerun gives the same lists.
  write_tree_image(dir, "cat/new.jpg", 3, false);
  o.split = Split::kTrain;
  auto again = make_dataset("image-folder", dir.path(), o);
  ASSERT_EQ(again->size(), train->size());
  for (int64_t i = 0; i < again->size(); ++i) EXPECT_EQ(again->source(i), train->source(i));

  // Another seed draws another split (and another file).
  o.split_seed = 8;
  auto other = make_dataset("image-folder", dir.path(), o);
  EXPECT_TRUE(fs::exists(default_split_file(dir.path(), 8)));
  bool differs = false;
  for (int64_t i = 0; i < std::min(other->size(), train->size()); ++i)
    differs |= other->source(i) != train->source(i);
  EXPECT_TRUE(differs);

  // An explicit split file location.
  TempDir elsewhere;
  o.split_file = elsewhere.path() + "/my-split.txt";
  make_dataset("imagenet-r", dir.path(), o);
  EXPECT_TRUE(fs::exists(o.split_file));
}

TEST(ImageFolder, ListFilesAsDomainNetPublishesThem) {
  TempDir dir;
  write_tree_image(dir, "clipart/apple/1.jpg", 1, false);
  write_tree_image(dir, "real/apple/2.jpg", 2, false);
  write_tree_image(dir, "real/zebra/3.png", 3, true);
  test::write_text(dir.file("clipart_train.txt"), "clipart/apple/1.jpg 0\n");
  test::write_text(dir.file("real_train.txt"), "real/apple/2.jpg 0\nreal/zebra/3.png 1\n");
  test::write_text(dir.file("real_test.txt"), "real/zebra/3.png 1\n");
  auto train = make_dataset("domainnet", dir.path(), Split::kTrain);
  ASSERT_EQ(train->size(), 3);
  EXPECT_EQ(train->class_names(), (std::vector<std::string>{"apple", "zebra"}));
  EXPECT_EQ(train->label(2), 1);
  EXPECT_EQ(train->image(2).shape_str(), "6x8x3");  // smooth_image(6 + 3 % 3, 8)
  auto test_set = make_dataset("domainnet", dir.path(), Split::kTest);
  ASSERT_EQ(test_set->size(), 1);
}

TEST(Factory, KnowsItsNames) {
  EXPECT_EQ(dataset_names().size(), 6u);
  try {
    make_dataset("imagenet-x", "/nowhere");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("unknown dataset 'imagenet-x'"), std::string::npos) << m;
    for (const std::string& n : dataset_names()) EXPECT_NE(m.find(n), std::string::npos) << m;
  }
}

}  // namespace
}  // namespace sdlora::data
