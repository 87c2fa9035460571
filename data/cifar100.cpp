// CIFAR-100 readers: binary records and python pickles, both to 32x32x3 HWC images.
#include "data/cifar100.h"

#include <filesystem>
#include <sstream>

#include "data/file_io.h"
#include "data/pickle.h"
#include "tensor/error.h"

namespace sdlora::data {

namespace fs = std::filesystem;

namespace {

constexpr int kSide = 32;
constexpr size_t kPlane = kSide * kSide;  // 1024
constexpr size_t kPixels = 3 * kPlane;    // 3072
constexpr size_t kRecord = 2 + kPixels;   // binary: coarse, fine, pixels
constexpr int64_t kClasses = 100;

// CHW planes (R, G, B) of one image -> HWC.
void planes_to_hwc(const uint8_t* chw, uint8_t* hwc) {
  for (size_t p = 0; p < kPlane; ++p)
    for (size_t ch = 0; ch < 3; ++ch) hwc[p * 3 + ch] = chw[ch * kPlane + p];
}

bool exists_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}
bool exists_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

// One name per line; blank lines (the file ends with some) are skipped.
std::vector<std::string> read_names(const fs::path& p) {
  const std::vector<uint8_t> b = read_file(p.string());
  std::istringstream in(std::string(b.begin(), b.end()));
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  SDLORA_CHECK(static_cast<int64_t>(names.size()) == kClasses, "CIFAR-100 class name file ",
               p.string(), " lists ", names.size(), " names, expected ", kClasses);
  return names;
}

std::string title(Split split, const std::string& folder) {
  return std::string("cifar100 ") + split_name(split) + " (" + folder + ")";
}

}  // namespace

const std::vector<std::string>& cifar100_class_names() {
  static const std::vector<std::string> kNames = {
      "apple",       "aquarium_fish", "baby",      "bear",       "beaver",       "bed",
      "bee",         "beetle",        "bicycle",   "bottle",     "bowl",         "boy",
      "bridge",      "bus",           "butterfly", "camel",      "can",          "castle",
      "caterpillar", "cattle",        "chair",     "chimpanzee", "clock",        "cloud",
      "cockroach",   "couch",         "crab",      "crocodile",  "cup",          "dinosaur",
      "dolphin",     "elephant",      "flatfish",  "forest",     "fox",          "girl",
      "hamster",     "house",         "kangaroo",  "keyboard",   "lamp",         "lawn_mower",
      "leopard",     "lion",          "lizard",    "lobster",    "man",          "maple_tree",
      "motorcycle",  "mountain",      "mouse",     "mushroom",   "oak_tree",     "orange",
      "orchid",      "otter",         "palm_tree", "pear",       "pickup_truck", "pine_tree",
      "plain",       "plate",         "poppy",     "porcupine",  "possum",       "rabbit",
      "raccoon",     "ray",           "road",      "rocket",     "rose",         "sea",
      "seal",        "shark",         "shrew",     "skunk",      "skyscraper",   "snail",
      "snake",       "spider",        "squirrel",  "streetcar",  "sunflower",    "sweet_pepper",
      "table",       "tank",          "telephone", "television", "tiger",        "tractor",
      "train",       "trout",         "tulip",     "turtle",     "wardrobe",     "whale",
      "willow_tree", "wolf",          "woman",     "worm"};
  return kNames;
}

std::shared_ptr<Dataset> open_cifar100_binary(const std::string& folder, Split split) {
  const fs::path file = fs::path(folder) / (split == Split::kTrain ? "train.bin" : "test.bin");
  const std::vector<uint8_t> b = read_file(file.string());
  SDLORA_CHECK(!b.empty() && b.size() % kRecord == 0, "CIFAR-100 file ", file.string(), " has ",
               b.size(), " bytes, not a whole number of ", kRecord,
               "-byte records (coarse label, fine label, 3072 pixels)");
  const size_t n = b.size() / kRecord;
  std::vector<uint8_t> pixels(n * kPixels);
  std::vector<int64_t> labels(n);
  for (size_t i = 0; i < n; ++i) {
    const uint8_t* rec = b.data() + i * kRecord;
    labels[i] = rec[1];
    SDLORA_CHECK(labels[i] < kClasses, "CIFAR-100 file ", file.string(), ": fine label ", labels[i],
                 " of record ", i, " is not in [0, 100)");
    planes_to_hwc(rec + 2, pixels.data() + i * kPixels);
  }
  const fs::path names_file = fs::path(folder) / "fine_label_names.txt";
  std::vector<std::string> names =
      exists_file(names_file) ? read_names(names_file) : cifar100_class_names();
  return std::make_shared<InMemoryDataset>(title(split, folder), file.string(), kSide, kSide, 3,
                                           std::move(pixels), std::move(labels), std::move(names));
}

std::shared_ptr<Dataset> open_cifar100_python(const std::string& folder, Split split) {
  const fs::path file = fs::path(folder) / (split == Split::kTrain ? "train" : "test");
  const std::string fname = file.string();
  const pickle::Ref root = pickle::load(read_file(fname), fname);
  const pickle::Ref data = pickle::get(root, "data", fname);
  SDLORA_CHECK(data->kind == pickle::Kind::kArray && data->dtype == "u1", "CIFAR-100 pickle ",
               fname, ": 'data' is a ", pickle::kind_name(data->kind),
               (data->dtype.empty() ? "" : " of "), data->dtype, ", expected a uint8 numpy array");
  SDLORA_CHECK(data->shape.size() == 2 && data->shape[1] == static_cast<int64_t>(kPixels),
               "CIFAR-100 pickle ", fname, ": 'data' has shape of ", data->shape.size(),
               " dims, expected (n, 3072)");
  SDLORA_CHECK(!data->fortran_order, "CIFAR-100 pickle ", fname,
               ": Fortran-ordered 'data' is not supported");
  // The shape is untrusted: compare by division so a huge count cannot wrap the product.
  SDLORA_CHECK(data->shape[0] >= 0 && data->raw.size() % kPixels == 0 &&
                   data->raw.size() / kPixels == static_cast<uint64_t>(data->shape[0]),
               "CIFAR-100 pickle ", fname, ": 'data' holds ", data->raw.size(),
               " bytes for shape (", data->shape[0], ", 3072)");
  const auto n = static_cast<size_t>(data->shape[0]);
  std::vector<int64_t> labels =
      pickle::to_int_vector(pickle::get(root, "fine_labels", fname), fname + " fine_labels");
  SDLORA_CHECK(labels.size() == n, "CIFAR-100 pickle ", fname, ": ", labels.size(),
               " fine labels for ", n, " images");
  for (size_t i = 0; i < n; ++i)
    SDLORA_CHECK(labels[i] >= 0 && labels[i] < kClasses, "CIFAR-100 pickle ", fname,
                 ": fine label ", labels[i], " of image ", i, " is not in [0, 100)");
  std::vector<uint8_t> pixels(n * kPixels);
  const auto* raw = reinterpret_cast<const uint8_t*>(data->raw.data());
  for (size_t i = 0; i < n; ++i) planes_to_hwc(raw + i * kPixels, pixels.data() + i * kPixels);

  std::vector<std::string> names = cifar100_class_names();
  const fs::path meta_file = fs::path(folder) / "meta";
  if (exists_file(meta_file)) {
    const std::string mname = meta_file.string();
    const pickle::Ref meta = pickle::load(read_file(mname), mname);
    names = pickle::to_string_vector(pickle::get(meta, "fine_label_names", mname),
                                     mname + " fine_label_names");
    SDLORA_CHECK(static_cast<int64_t>(names.size()) == kClasses, "CIFAR-100 meta ", mname,
                 " lists ", names.size(), " fine label names, expected ", kClasses);
  }
  return std::make_shared<InMemoryDataset>(title(split, folder), fname, kSide, kSide, 3,
                                           std::move(pixels), std::move(labels), std::move(names));
}

std::shared_ptr<Dataset> open_cifar100(const std::string& folder, Split split) {
  SDLORA_CHECK(exists_dir(folder), "CIFAR-100 folder not found: ", folder);
  const fs::path root(folder);
  if (exists_file(root / "train.bin") || exists_file(root / "test.bin"))
    return open_cifar100_binary(folder, split);
  if (exists_file(root / "meta") || exists_file(root / "train") || exists_file(root / "test"))
    return open_cifar100_python(folder, split);
  if (exists_dir(root / "cifar-100-binary"))
    return open_cifar100((root / "cifar-100-binary").string(), split);
  if (exists_dir(root / "cifar-100-python"))
    return open_cifar100((root / "cifar-100-python").string(), split);
  SDLORA_THROW("no CIFAR-100 files in ", folder,
               ": expected train.bin/test.bin (binary version), train/test/meta (python version), "
               "or a cifar-100-binary or cifar-100-python folder");
}

}  // namespace sdlora::data
