// The dataset interface's shared pieces: in-memory and subset datasets, and the factory.
#include "data/dataset.h"

#include <cstring>
#include <sstream>

#include "data/cifar100.h"
#include "data/fashion_mnist.h"
#include "data/image_folder.h"
#include "tensor/error.h"

namespace sdlora::data {

void Dataset::check_index(int64_t i) const {
  SDLORA_CHECK(i >= 0 && i < size(), "sample ", i, " outside [0, ", size(), ") of dataset ",
               name());
}

// ---- InMemoryDataset

InMemoryDataset::InMemoryDataset(std::string name, std::string source, int h, int w, int c,
                                 std::vector<uint8_t> pixels, std::vector<int64_t> labels,
                                 std::vector<std::string> class_names)
    : name_(std::move(name)),
      source_(std::move(source)),
      h_(h),
      w_(w),
      c_(c),
      pixels_(std::move(pixels)),
      labels_(std::move(labels)),
      class_names_(std::move(class_names)) {
  const size_t per = static_cast<size_t>(h_) * w_ * c_;
  SDLORA_CHECK(per > 0 && pixels_.size() == per * labels_.size(), "dataset ", name_, ": ",
               pixels_.size(), " pixel bytes for ", labels_.size(), " images of ", h_, "x", w_, "x",
               c_);
  const auto n_classes = static_cast<int64_t>(class_names_.size());
  for (size_t i = 0; i < labels_.size(); ++i)
    SDLORA_CHECK(labels_[i] >= 0 && labels_[i] < n_classes, "dataset ", name_, ": label ",
                 labels_[i], " of sample ", i, " (", source_, ") outside [0, ", n_classes, ")");
}

int64_t InMemoryDataset::label(int64_t i) const {
  check_index(i);
  return labels_[static_cast<size_t>(i)];
}

Image InMemoryDataset::image(int64_t i) const {
  check_index(i);
  Image img(h_, w_, c_);
  std::memcpy(img.pixels.data(), pixels_.data() + static_cast<size_t>(i) * img.bytes(),
              img.bytes());
  return img;
}

std::string InMemoryDataset::source(int64_t i) const {
  return source_ + " record " + std::to_string(i);
}

// ---- SubsetDataset

namespace {

class SubsetDataset : public Dataset {
 public:
  SubsetDataset(std::shared_ptr<const Dataset> base, std::vector<int64_t> indices,
                std::vector<int64_t> label_map)
      : base_(std::move(base)), indices_(std::move(indices)), label_map_(std::move(label_map)) {
    SDLORA_CHECK(base_ != nullptr, "subset of a null dataset");
    for (int64_t i : indices_)
      SDLORA_CHECK(i >= 0 && i < base_->size(), "subset index ", i, " outside [0, ", base_->size(),
                   ") of ", base_->name());
    if (label_map_.empty()) {
      class_names_ = base_->class_names();
    } else {
      SDLORA_CHECK(static_cast<int64_t>(label_map_.size()) == base_->num_classes(),
                   "subset label map has ", label_map_.size(), " entries for the ",
                   base_->num_classes(), " classes of ", base_->name());
      class_names_.assign(label_map_.size(), "");
      for (size_t c = 0; c < label_map_.size(); ++c) {
        const int64_t m = label_map_[c];
        SDLORA_CHECK(m >= 0 && m < static_cast<int64_t>(label_map_.size()),
                     "subset label map sends class ", c, " to ", m);
        class_names_[static_cast<size_t>(m)] = base_->class_names()[c];
      }
    }
  }

  std::string name() const override { return base_->name() + " subset"; }
  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  int64_t label(int64_t i) const override {
    check_index(i);
    const int64_t l = base_->label(indices_[static_cast<size_t>(i)]);
    return label_map_.empty() ? l : label_map_[static_cast<size_t>(l)];
  }
  Image image(int64_t i) const override {
    check_index(i);
    return base_->image(indices_[static_cast<size_t>(i)]);
  }
  std::string source(int64_t i) const override {
    check_index(i);
    return base_->source(indices_[static_cast<size_t>(i)]);
  }
  const std::vector<std::string>& class_names() const override { return class_names_; }

 private:
  std::shared_ptr<const Dataset> base_;
  std::vector<int64_t> indices_, label_map_;
  std::vector<std::string> class_names_;
};

}  // namespace

std::shared_ptr<Dataset> make_subset(std::shared_ptr<const Dataset> base,
                                     std::vector<int64_t> indices, std::vector<int64_t> label_map) {
  return std::make_shared<SubsetDataset>(std::move(base), std::move(indices), std::move(label_map));
}

const char* split_name(Split s) { return s == Split::kTrain ? "train" : "test"; }

// ---- Factory

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> kNames = {"fashion-mnist", "cifar100",  "imagenet-r",
                                                  "imagenet-a",    "domainnet", "image-folder"};
  return kNames;
}

std::shared_ptr<Dataset> make_dataset(const std::string& name, const std::string& path,
                                      const DatasetOptions& options) {
  if (name == "fashion-mnist") return open_fashion_mnist(path, options.split);
  if (name == "cifar100") return open_cifar100(path, options.split);
  if (name == "imagenet-r" || name == "imagenet-a" || name == "domainnet" ||
      name == "image-folder") {
    ImageFolderOptions fo;
    fo.split = options.split;
    fo.train_fraction = options.train_fraction;
    fo.split_seed = options.split_seed;
    fo.split_file = options.split_file;
    fo.max_image_pixels = options.max_image_pixels;
    return open_image_folder(path, fo, name);
  }
  SDLORA_THROW("unknown dataset '", name, "'; known datasets: ", join(dataset_names()));
}

std::shared_ptr<Dataset> make_dataset(const std::string& name, const std::string& path,
                                      Split split) {
  DatasetOptions o;
  o.split = split;
  return make_dataset(name, path, o);
}

}  // namespace sdlora::data
