// Loader: persistent worker threads claim whole batches inside a window ahead of the consumer,
// build them on the host and file them by batch number; next() takes them in order.
#include "data/loader.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "data/rng.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace sdlora::data {

// ---- ImageCache

ImageCache::ImageCache(int64_t n, int64_t budget_bytes)
    : slots_(budget_bytes > 0 ? static_cast<size_t>(n) : 0), budget_(budget_bytes) {}

std::shared_ptr<const Image> ImageCache::get(int64_t i) const {
  std::lock_guard<std::mutex> lock(mu_);
  return slots_.empty() ? nullptr : slots_[static_cast<size_t>(i)];
}

bool ImageCache::put(int64_t i, std::shared_ptr<const Image> img) {
  std::lock_guard<std::mutex> lock(mu_);
  if (slots_.empty() || slots_[static_cast<size_t>(i)]) return false;
  const auto bytes = static_cast<int64_t>(img->bytes());
  if (bytes_ + bytes > budget_) return false;
  bytes_ += bytes;
  ++count_;
  slots_[static_cast<size_t>(i)] = std::move(img);
  return true;
}

int64_t ImageCache::bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  return bytes_;
}

int64_t ImageCache::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return count_;
}

// ---- Loader

Loader::Loader(std::shared_ptr<const Dataset> dataset, LoaderOptions options)
    : dataset_(std::move(dataset)),
      options_(std::move(options)),
      cache_(dataset_ ? dataset_->size() : 0, options_.cache_bytes) {
  SDLORA_CHECK(dataset_ != nullptr, "loader: no dataset");
  SDLORA_CHECK(options_.batch_size > 0, "loader: batch size must be positive, got ",
               options_.batch_size);
  SDLORA_CHECK(options_.num_workers >= 0, "loader: negative worker count ", options_.num_workers);
  SDLORA_CHECK(!options_.pre_transform || !options_.pre_transform->random(),
               "loader: the pre-transform ", options_.pre_transform->describe(),
               " is random; only deterministic transforms may run before caching");
  if (options_.prefetch <= 0) options_.prefetch = 2 * std::max(options_.num_workers, 1);
  using Convert = LoaderOptions::Convert;
  convert_on_device_ = options_.convert == Convert::kDevice ||
                       (options_.convert == Convert::kAuto && options_.device.is_cuda());
  // Three slots: the batch being read, the one being copied, and one in between, so a copy
  // never waits for the step before last.
  if (convert_on_device_) ring_ = std::make_unique<UploadRing>(options_.device, 3);
  for (int w = 0; w < options_.num_workers; ++w) workers_.emplace_back([this] { worker_loop(); });
}

Loader::~Loader() {
  drop_prefetched_upload();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  ready_cv_.notify_all();
  for (std::thread& t : workers_) t.join();
}

int64_t Loader::num_batches() const {
  const int64_t n = dataset_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> Loader::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(dataset_->size()));
  std::iota(order.begin(), order.end(), int64_t{0});
  if (options_.shuffle) {
    SampleRng rng = SampleRng::for_shuffle(options_.seed, epoch);
    for (int64_t i = static_cast<int64_t>(order.size()) - 1; i >= 1; --i)
      std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.randint(0, i + 1))]);
  }
  return order;
}

void Loader::start_epoch(int64_t epoch) {
  drop_prefetched_upload();
  auto order = std::make_shared<const std::vector<int64_t>>(epoch_order(epoch));
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++generation_;
    epoch_ = epoch;
    order_ = std::move(order);
    claimed_ = delivered_ = 0;
    ready_.clear();
  }
  work_cv_.notify_all();
}

std::shared_ptr<const Image> Loader::decoded(int64_t index) {
  if (auto hit = cache_.get(index)) {
    ++cache_hits_;
    return hit;
  }
  Image img = dataset_->image(index);
  ++decoded_;
  if (options_.pre_transform) {
    SampleRng unused(0, 0);
    img = options_.pre_transform->apply(img, unused);
  }
  auto shared = std::make_shared<const Image>(std::move(img));
  cache_.put(index, shared);
  return shared;
}

Batch Loader::build(int64_t generation, int64_t b, const std::vector<int64_t>& order,
                    int64_t epoch) {
  const int64_t begin = b * options_.batch_size;
  const int64_t end =
      std::min<int64_t>(begin + options_.batch_size, static_cast<int64_t>(order.size()));
  const int64_t B = end - begin;
  Batch batch;
  batch.index = b;
  batch.indices.assign(order.begin() + begin, order.begin() + end);
  std::vector<int64_t> labels(static_cast<size_t>(B));
  const bool pinned = options_.pin_memory && options_.device.is_cuda();
  int C = 0, H = 0, W = 0;
  for (int64_t k = 0; k < B; ++k) {
    if (stop_ || generation_ != generation) return {};  // abandoned: nobody will read it
    const int64_t idx = batch.indices[static_cast<size_t>(k)];
    try {
      std::shared_ptr<const Image> src = decoded(idx);
      SampleRng rng = SampleRng::for_sample(options_.seed, epoch, idx);
      Image img = options_.transform ? options_.transform->apply(*src, rng) : *src;
      if (k == 0) {
        C = img.c;
        H = img.h;
        W = img.w;
        batch.images = convert_on_device_
                           ? Tensor::empty({B, H, W, C}, DType::kUInt8, Device::cpu(), pinned)
                           : Tensor::empty({B, C, H, W}, DType::kFloat32, Device::cpu(), pinned);
      }
      SDLORA_CHECK(img.c == C && img.h == H && img.w == W, "transformed image is ", img.h, "x",
                   img.w, "x", img.c, " but the batch's first is ", H, "x", W, "x", C,
                   " (add a resize or crop to the transform)");
      const size_t per_image = static_cast<size_t>(C) * H * W;
      if (convert_on_device_)
        std::memcpy(batch.images.data<uint8_t>() + k * per_image, img.pixels.data(), per_image);
      else
        image_to_chw(img, options_.normalize, batch.images.data<float>() + k * per_image);
      labels[static_cast<size_t>(k)] = dataset_->label(idx);
    } catch (const std::exception& e) {
      SDLORA_THROW("loader: sample ", idx, " of ", dataset_->name(), " (", dataset_->source(idx),
                   "): ", e.what());
    }
  }
  batch.labels = Tensor::empty({B}, DType::kInt64, Device::cpu(), pinned);
  std::memcpy(batch.labels.data<int64_t>(), labels.data(), labels.size() * sizeof(int64_t));
  return batch;
}

void Loader::worker_loop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] {
      return stop_ ||
             (order_ && claimed_ < num_batches() && claimed_ < delivered_ + options_.prefetch);
    });
    if (stop_) return;
    const int64_t b = claimed_++;
    const int64_t generation = generation_, epoch = epoch_;
    const std::shared_ptr<const std::vector<int64_t>> order = order_;
    lock.unlock();
    Ready r;
    try {
      r.batch = build(generation, b, *order, epoch);
    } catch (...) {
      r.error = std::current_exception();
    }
    lock.lock();
    if (generation_ == generation && !stop_) {
      ready_.emplace(b, std::move(r));
      ready_cv_.notify_all();
    }
  }
}

Batch Loader::to_device(Batch host) const {
  if (options_.device.is_cpu()) return host;
  Batch out;
  out.index = host.index;
  out.indices = std::move(host.indices);
  // Pinned sources copy asynchronously in stream order; the pinned pool reuses a block only once
  // its copies have finished.
  out.images = host.images.to(options_.device, /*non_blocking=*/true);
  out.labels = host.labels.to(options_.device, /*non_blocking=*/true);
  return out;
}

bool Loader::next(Batch& out) {
  std::unique_lock<std::mutex> lock(mu_);
  SDLORA_CHECK(order_ != nullptr, "loader: next() before start_epoch()");
  if (delivered_ >= num_batches()) return false;
  const int64_t b = delivered_;
  Ready r;
  std::optional<UploadRing::Ticket> ticket;
  if (prefetched_ && prefetched_->index == b) {  // its upload is already under way
    r.batch = std::move(prefetched_->host);
    ticket = std::move(prefetched_->ticket);
    prefetched_.reset();
    ++delivered_;
    lock.unlock();
    work_cv_.notify_all();
  } else if (workers_.empty()) {
    const int64_t generation = generation_, epoch = epoch_;
    const auto order = order_;
    ++delivered_;
    lock.unlock();
    r.batch = build(generation, b, *order, epoch);  // errors propagate directly
  } else {
    ready_cv_.wait(lock, [&] { return stop_ || ready_.count(b) > 0; });
    SDLORA_CHECK(!stop_, "loader: stopped");
    auto it = ready_.find(b);
    r = std::move(it->second);
    ready_.erase(it);
    ++delivered_;
    lock.unlock();
    work_cv_.notify_all();  // the window moved
    if (r.error) std::rethrow_exception(r.error);
  }
  if (!convert_on_device_) {
    out = to_device(std::move(r.batch));
    return true;
  }
  if (!ticket) ticket = ring_->upload(r.batch.images);
  out = convert_on_device(std::move(r.batch), std::move(*ticket));
  prefetch_upload(b + 1);
  return true;
}

Batch Loader::convert_on_device(Batch host, UploadRing::Ticket ticket) {
  Batch out;
  out.index = host.index;
  out.indices = std::move(host.indices);
  out.images = ring_->consume(ticket, [&](const Tensor& u8) {
    return normalize_images(u8, options_.normalize.mean, options_.normalize.std);
  });
  out.labels = host.labels.to(options_.device, /*non_blocking=*/true);
  return out;
}

void Loader::prefetch_upload(int64_t b) {
  if (workers_.empty() || options_.device.is_cpu()) return;  // nothing would overlap
  Batch host;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = ready_.find(b);
    if (it == ready_.end() || it->second.error || b >= num_batches()) return;
    host = std::move(it->second.batch);
    ready_.erase(it);
  }
  Prefetched p;
  p.index = b;
  p.ticket = ring_->upload(host.images);
  p.host = std::move(host);
  prefetched_ = std::move(p);
}

void Loader::drop_prefetched_upload() {
  if (!prefetched_) return;
  try {
    ring_->abandon(prefetched_->ticket);
  } catch (...) {  // a failing device: nothing left to order; the memory is reclaimed at exit
  }
  prefetched_.reset();
}

LoaderStats Loader::stats() const {
  LoaderStats s;
  s.decoded = decoded_;
  s.cache_hits = cache_hits_;
  s.cached_images = cache_.count();
  s.cached_bytes = cache_.bytes();
  return s;
}

}  // namespace sdlora::data
