// Image-folder datasets (ImageNet-R, ImageNet-A, DomainNet, any tree of class folders of JPEG
// and PNG files). Three layouts are recognised under the root:
//   pre-split:   root/train/<class>/...  and  root/test/<class>/...  (as ImageNet-R is distributed)
//   one tree:    root/<class>/...  split per class by a seed into train and test; the split is
//                written to a split file and reused on later runs
//   list files:  root/<name>_train.txt and root/<name>_test.txt, lines "relative/path label"
//                (DomainNet's published lists); class names come from the files' parent folders
// Classes are the class folders sorted by name (as torchvision's ImageFolder numbers them);
// images inside a class folder are found recursively and sorted by path.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_io.h"

namespace sdlora::data {

struct ImageFolderOptions {
  Split split = Split::kTrain;
  double train_fraction = 0.8;  // one-tree layout: share of each class for training
  int64_t split_seed = 0;       // one-tree layout: numpy RandomState seed of the per-class split
  std::string split_file;       // one-tree layout: default <root>/split-seed<seed>.txt
  // Images of more pixels are refused before decoding (data/image_io.h; 0 = no limit).
  int64_t max_image_pixels = kDefaultMaxImagePixels;
};

// kind: the dataset name used in messages ("imagenet-r", "image-folder", ...).
std::shared_ptr<Dataset> open_image_folder(const std::string& root,
                                           const ImageFolderOptions& options = {},
                                           const std::string& kind = "image-folder");

// The default split file of a one-tree folder.
std::string default_split_file(const std::string& root, int64_t seed);

}  // namespace sdlora::data
