// Datasets: the interface every reader implements (size, label, decoded image, class names),
// in-memory and subset datasets, and the factory that opens a dataset by name.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/image.h"
#include "data/image_io.h"
#include "tensor/error.h"

namespace sdlora::data {

struct Sample {
  Image image;
  int64_t label = 0;
};

// A labelled image collection. Every method is safe to call from several threads at once.
class Dataset {
 public:
  virtual ~Dataset() = default;
  // "cifar100 train (/data/cifar-100-binary)", for messages.
  virtual std::string name() const = 0;
  virtual int64_t size() const = 0;
  // Label of sample i, without decoding its image.
  virtual int64_t label(int64_t i) const = 0;
  // Decoded uint8 HWC image of sample i; throws naming the file on a bad one.
  virtual Image image(int64_t i) const = 0;
  // Where sample i comes from (a file, or a file and record), for error messages.
  virtual std::string source(int64_t i) const = 0;
  virtual const std::vector<std::string>& class_names() const = 0;

  int64_t num_classes() const { return static_cast<int64_t>(class_names().size()); }
  Sample item(int64_t i) const { return {image(i), label(i)}; }

 protected:
  // Throws an index error naming the dataset.
  void check_index(int64_t i) const;
};

// Images of one size held in one buffer (the Fashion-MNIST and CIFAR-100 readers produce this).
class InMemoryDataset : public Dataset {
 public:
  // pixels: n images of h x w x c bytes each, HWC, back to back; labels in [0, class_names.size()).
  InMemoryDataset(std::string name, std::string source, int h, int w, int c,
                  std::vector<uint8_t> pixels, std::vector<int64_t> labels,
                  std::vector<std::string> class_names);

  std::string name() const override { return name_; }
  int64_t size() const override { return static_cast<int64_t>(labels_.size()); }
  int64_t label(int64_t i) const override;
  Image image(int64_t i) const override;
  std::string source(int64_t i) const override;
  const std::vector<std::string>& class_names() const override { return class_names_; }

 private:
  std::string name_, source_;
  int h_, w_, c_;
  std::vector<uint8_t> pixels_;
  std::vector<int64_t> labels_;
  std::vector<std::string> class_names_;
};

// Some samples of another dataset, optionally with labels mapped through a table
// (label_map[original] = new label; the class names are reordered to match).
std::shared_ptr<Dataset> make_subset(std::shared_ptr<const Dataset> base,
                                     std::vector<int64_t> indices,
                                     std::vector<int64_t> label_map = {});

enum class Split { kTrain, kTest };
const char* split_name(Split s);

struct DatasetOptions {
  Split split = Split::kTrain;
  // Image folders without train/ and test/ folders: the share of each class that goes to train,
  // the seed of the split, and the file that records it (default <root>/split-seed<seed>.txt;
  // reused when it exists).
  double train_fraction = 0.8;
  int64_t split_seed = 0;
  std::string split_file;
  // Image folders: images of more pixels are refused before decoding, naming the file and its
  // size (0 = no limit).
  int64_t max_image_pixels = kDefaultMaxImagePixels;
};

// Opens a dataset by name: fashion-mnist, cifar100, imagenet-r, imagenet-a, domainnet,
// image-folder. An unknown name is an error that lists the known ones.
std::shared_ptr<Dataset> make_dataset(const std::string& name, const std::string& path,
                                      const DatasetOptions& options = {});
// The same with default options but for the split.
std::shared_ptr<Dataset> make_dataset(const std::string& name, const std::string& path,
                                      Split split);
const std::vector<std::string>& dataset_names();

}  // namespace sdlora::data
