// The threaded loader: worker threads decode, augment and assemble whole batches ahead of the
// consumer, into pinned host memory when the target is a GPU; next() hands them over on the
// target device in order. Batches bound for a GPU travel as uint8 (a quarter of float32's bytes)
// on the device's copy stream, the next batch's copy overlapping the current step, and the device
// converts and normalises them (normalize_images). The epoch's order and every sample's
// augmentation depend only on (seed, epoch), never on the number of threads or their timing.
// Decoded images are cached in memory across epochs within a byte budget. A worker's error (a bad
// file) is rethrown by the next() that reaches its batch, naming the file; the destructor stops and
// joins the workers even in the middle of an epoch.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"
#include "tensor/tensor.h"
#include "tensor/upload.h"

namespace sdlora::data {

struct Batch {
  Tensor images;                 // float32 (B, C, H, W) on the loader's device (inside the
                                 // loader, before conversion: uint8 (B, H, W, C) on the host)
  Tensor labels;                 // int64 (B) on the loader's device
  std::vector<int64_t> indices;  // dataset indices of the samples, in batch order
  int64_t index = 0;             // position of the batch in its epoch
};

struct LoaderOptions {
  int64_t batch_size = 128;
  bool shuffle = true;
  bool drop_last = false;  // drop a final batch smaller than batch_size
  int num_workers = 4;     // 0: batches are built by next() on the calling thread
  int prefetch = 0;        // batches built ahead of the consumer; 0 = 2 per worker
  uint64_t seed = 0;       // order and augmentation seed
  Device device = Device::cpu();
  bool pin_memory = true;   // page-locked host batches when the device is a GPU
  int64_t cache_bytes = 0;  // budget of the decoded-image cache; 0 = off
  // Deterministic transform applied once per image before caching (e.g. a resize that makes a
  // large dataset fit the budget); then the per-sample transform, then float conversion.
  TransformPtr pre_transform;
  TransformPtr transform;
  Normalize normalize;
  // Where uint8 images become normalised float32: kHost (in the workers, float32 batches are
  // copied), kDevice (uint8 batches are copied, on the copy stream when the device is a GPU, and
  // normalize_images converts them there; the same values), kAuto (kDevice on a GPU, else kHost).
  enum class Convert { kAuto, kHost, kDevice };
  Convert convert = Convert::kAuto;
};

struct LoaderStats {
  int64_t decoded = 0;  // images read from the dataset
  int64_t cache_hits = 0;
  int64_t cached_images = 0;
  int64_t cached_bytes = 0;
};

// Decoded images by dataset index, kept while they fit the byte budget (first come, first kept:
// an epoch touches every image, so replacing one cached image by another gains nothing).
class ImageCache {
 public:
  ImageCache(int64_t n, int64_t budget_bytes);
  std::shared_ptr<const Image> get(int64_t i) const;
  // Keeps img if it fits the budget; returns whether it was kept.
  bool put(int64_t i, std::shared_ptr<const Image> img);
  int64_t bytes() const;
  int64_t count() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::shared_ptr<const Image>> slots_;
  int64_t budget_, bytes_ = 0, count_ = 0;
};

class Loader {
 public:
  Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options);
  ~Loader();
  Loader(const Loader&) = delete;
  Loader& operator=(const Loader&) = delete;

  int64_t size() const { return dataset_->size(); }
  // Whether batches are converted to float32 on the target device (options().convert resolved).
  bool converts_on_device() const { return convert_on_device_; }
  int64_t num_batches() const;
  const LoaderOptions& options() const { return options_; }
  const Dataset& dataset() const { return *dataset_; }

  // Begins epoch `epoch` (abandoning any unfinished one); workers start filling batches.
  void start_epoch(int64_t epoch);
  // The next batch of the current epoch; false once the epoch is exhausted. Rethrows a worker's
  // error for that batch (and the epoch goes on with the following batch).
  bool next(Batch& out);

  // The dataset indices of epoch `epoch` in order (the shuffle, or 0..n-1).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  LoaderStats stats() const;

 private:
  struct Ready {
    Batch batch;
    std::exception_ptr error;
  };
  // Builds batch b of the current epoch on the host; throws naming the sample's source.
  Batch build(int64_t generation, int64_t b, const std::vector<int64_t>& order, int64_t epoch);
  std::shared_ptr<const Image> decoded(int64_t index);
  void worker_loop();
  Batch to_device(Batch host) const;
  // Device conversion: the uint8 batch's upload (started earlier or now) becomes float32 there.
  Batch convert_on_device(Batch host, UploadRing::Ticket ticket);
  // Starts the upload of batch b when a worker has it ready (consumer thread only).
  void prefetch_upload(int64_t b);
  void drop_prefetched_upload();

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  ImageCache cache_;
  std::atomic<int64_t> decoded_{0}, cache_hits_{0};

  mutable std::mutex mu_;
  std::condition_variable work_cv_, ready_cv_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> generation_{0};  // bumped by start_epoch; stale work is dropped
  int64_t epoch_ = -1;
  std::shared_ptr<const std::vector<int64_t>> order_;
  int64_t claimed_ = 0, delivered_ = 0;
  std::map<int64_t, Ready> ready_;
  std::vector<std::thread> workers_;

  // Device conversion (consumer thread only): the upload ring and the batch whose copy runs
  // while the consumer works on the previous one.
  bool convert_on_device_ = false;
  std::unique_ptr<UploadRing> ring_;
  struct Prefetched {
    int64_t index = -1;
    Batch host;
    UploadRing::Ticket ticket;
  };
  std::optional<Prefetched> prefetched_;
};

}  // namespace sdlora::data
