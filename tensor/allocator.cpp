// The caching pool and the CPU allocator (a caching pool over posix_memalign); the CUDA device
// and pinned pools live in tensor/cuda/context.cpp.
#include "tensor/allocator.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "tensor/error.h"
#include "tensor/graph.h"

#ifdef SDLORA_WITH_CUDA
#include "tensor/cuda/context.h"
#endif

namespace sdlora {

namespace {
constexpr size_t kAlignment = 64;

std::string human_bytes(int64_t b) {
  char buf[64];
  if (b >= (int64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  else if (b >= (int64_t{1} << 20))
    std::snprintf(buf, sizeof buf, "%.2f MiB", b / 1048576.0);
  else
    std::snprintf(buf, sizeof buf, "%lld bytes", static_cast<long long>(b));
  return buf;
}
}  // namespace

CachingPool::CachingPool(std::string name, RawAlloc raw_alloc, RawFree raw_free, bool cache,
                         bool exact)
    : name_(std::move(name)),
      raw_alloc_(std::move(raw_alloc)),
      raw_free_(std::move(raw_free)),
      cache_(cache && !exact),
      exact_(exact) {}

bool CachingPool::caching_disabled_by_environment() {
  const char* v = std::getenv("SDLORA_NO_CACHING_ALLOCATOR");
  return v != nullptr && std::string(v) == "1";
}

CachingPool::~CachingPool() {
  // Blocks still in use belong to tensors outliving the pool (static destruction order); leave
  // them.
  empty_cache();
}

size_t CachingPool::size_class(size_t bytes) {
  if (bytes <= 512) return 512;
  // Four classes per power of two: round up to a multiple of a quarter of the top power.
  size_t top = 1;
  while (top * 2 <= bytes) top *= 2;
  const size_t step = top / 4;
  return (bytes + step - 1) / step * step;
}

void* CachingPool::allocate(size_t bytes) {
  // Exact mode still asks for one byte for an empty tensor: a raw allocator may fail on zero.
  const size_t cls = exact_ ? std::max<size_t>(bytes, 1) : size_class(bytes);
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.allocations;
  void* ptr = nullptr;
  if (auto it = free_.find(cls); it != free_.end()) {
    ptr = it->second;
    free_.erase(it);
    stats_.cached_bytes -= static_cast<int64_t>(cls);
  } else {
    ptr = raw_alloc_(cls);
    if (ptr == nullptr && !free_.empty()) {
      for (auto& [size, block] : free_) raw_free_(block);
      free_.clear();
      stats_.cached_bytes = 0;
      ptr = raw_alloc_(cls);
    }
    SDLORA_CHECK(ptr != nullptr, "out of memory on ", name_, ": could not allocate ",
                 human_bytes(static_cast<int64_t>(cls)), " (", human_bytes(stats_.live_bytes),
                 " held by live tensors, peak ", human_bytes(stats_.peak_bytes),
                 "); reduce the batch size or free tensors");
    ++stats_.system_allocations;
  }
  in_use_.emplace(ptr, cls);
  stats_.live_bytes += static_cast<int64_t>(cls);
  if (stats_.live_bytes > stats_.peak_bytes) stats_.peak_bytes = stats_.live_bytes;
  return ptr;
}

void CachingPool::release(void* ptr) {
  if (ptr != nullptr && !try_release(ptr))
    // Called from destructors, so it must not throw; this is a bug in the caller.
    std::cerr << "sdlora: " << name_ << " asked to release a block it does not own\n";
}

bool CachingPool::try_release(void* ptr) {
  if (ptr == nullptr) return true;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = in_use_.find(ptr);
  if (it == in_use_.end()) return false;
  const size_t cls = it->second;
  in_use_.erase(it);
  stats_.live_bytes -= static_cast<int64_t>(cls);
  if (cache_ && static_cast<size_t>(stats_.cached_bytes) + cls <= cache_limit_) {
    free_.emplace(cls, ptr);
    stats_.cached_bytes += static_cast<int64_t>(cls);
  } else {
    raw_free_(ptr);
  }
  return true;
}

void CachingPool::empty_cache() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [size, block] : free_) raw_free_(block);
  free_.clear();
  stats_.cached_bytes = 0;
}

MemoryStats CachingPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

void CachingPool::set_cache_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  cache_limit_ = bytes;
}

void CachingPool::reset_peak() {
  std::lock_guard<std::mutex> lock(mu_);
  stats_.peak_bytes = stats_.live_bytes;
}

namespace {
// What the CPU pool keeps for reuse at most: far above a training step's working set for the
// models of docs/performance.md, small beside a machine's memory.
constexpr size_t kCpuCacheLimit = size_t{2} << 30;

CachingPool* make_cpu_pool() {
  auto* pool = new CachingPool(
      "cpu",
      [](size_t bytes) -> void* {
        // posix_memalign takes any size (the exact sizes of SDLORA_NO_CACHING_ALLOCATOR=1).
        void* p = nullptr;
        return posix_memalign(&p, kAlignment, bytes) == 0 ? p : nullptr;
      },
      [](void* p) { std::free(p); }, /*cache=*/true,
      /*exact=*/CachingPool::caching_disabled_by_environment());
  pool->set_cache_limit(kCpuCacheLimit);
  return pool;
}

// Never destroyed: tensors held by other statics may be released after main() returns.
CachingPool& cpu_pool() {
  static CachingPool* pool = make_cpu_pool();
  return *pool;
}

#ifdef SDLORA_WITH_CUDA
bool use_pinned() { return cuda_available(); }
#endif
}  // namespace

void* allocate_bytes(Device device, size_t bytes, bool pinned) {
  (void)pinned;  // page-locked memory needs the CUDA runtime
  if (device.is_cpu()) {
#ifdef SDLORA_WITH_CUDA
    if (pinned && use_pinned()) {
      check_not_capturing("an allocation of pinned host memory");
      return cuda::allocate_pinned(bytes);
    }
#endif
    return cpu_pool().allocate(bytes);
  }
#ifdef SDLORA_WITH_CUDA
  return cuda::device_allocate(device.index, bytes);
#else
  SDLORA_THROW("cannot allocate on ", device.str(), ": this build has no CUDA backend");
#endif
}

void release_bytes(Device device, void* ptr, bool pinned) {
  (void)pinned;
  if (device.is_cpu()) {
#ifdef SDLORA_WITH_CUDA
    if (pinned && use_pinned()) return cuda::release_pinned(ptr);
#endif
    return cpu_pool().release(ptr);
  }
#ifdef SDLORA_WITH_CUDA
  cuda::device_release(device.index, ptr);
#endif
}

MemoryStats memory_stats(Device device) {
  if (device.is_cpu()) return cpu_pool().stats();
#ifdef SDLORA_WITH_CUDA
  return cuda::device_stats(device.index);
#else
  SDLORA_THROW("no memory statistics for ", device.str(), ": this build has no CUDA backend");
#endif
}

MemoryStats pinned_memory_stats() {
#ifdef SDLORA_WITH_CUDA
  if (use_pinned()) return cuda::pinned_pool().stats();
#endif
  return MemoryStats{};
}

void reset_peak_memory(Device device) {
  if (device.is_cpu()) return cpu_pool().reset_peak();
#ifdef SDLORA_WITH_CUDA
  cuda::device_reset_peak(device.index);
#endif
}

void empty_cache() {
  cpu_pool().empty_cache();
#ifdef SDLORA_WITH_CUDA
  if (cuda_available()) {
    for (int i = 0; i < cuda_device_count(); ++i) cuda::device_pool(i).empty_cache();
    cuda::pinned_pool().empty_cache();
  }
#endif
}

DeviceMemoryInfo device_memory_info(Device device) {
  SDLORA_CHECK(device.is_cuda(), "device_memory_info: ", device.str(), " is not a GPU");
#ifdef SDLORA_WITH_CUDA
  const cuda::MemInfo m = cuda::mem_get_info(device.index);
  return {static_cast<int64_t>(m.free), static_cast<int64_t>(m.total)};
#else
  SDLORA_THROW("device_memory_info: this build has no CUDA backend");
#endif
}

}  // namespace sdlora
