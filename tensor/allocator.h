// Memory: a caching pool (free lists by size class, so the hot path never calls the system
// allocator), and the per-device allocation entry points with live and peak byte counters.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include "tensor/device.h"

namespace sdlora {

struct MemoryStats {
  int64_t live_bytes = 0;        // bytes held by live tensors (rounded to the size class)
  int64_t peak_bytes = 0;        // the most live_bytes since the last reset_peak
  int64_t cached_bytes = 0;      // bytes freed by tensors and kept for reuse
  int64_t allocations = 0;       // allocate() calls
  int64_t system_allocations = 0;  // calls that reached the system allocator (cache misses)
};

// A pool over a raw allocator. Blocks are rounded up to a size class (at most 25% above the
// request); a freed block goes to the free list of its class and serves the next request of that
// class. When the raw allocator fails, the cache is released and the request retried once; if it
// fails again the error names the pool, the request and the pool's state. Thread-safe.
class CachingPool {
 public:
  using RawAlloc = std::function<void*(size_t)>;  // nullptr on failure
  using RawFree = std::function<void(void*)>;

  // cache = false frees blocks at once (used for plain CPU memory, which needs only counting).
  CachingPool(std::string name, RawAlloc raw_alloc, RawFree raw_free, bool cache);
  ~CachingPool();
  CachingPool(const CachingPool&) = delete;
  CachingPool& operator=(const CachingPool&) = delete;

  void* allocate(size_t bytes);
  void release(void* ptr);
  void empty_cache();
  MemoryStats stats() const;
  void reset_peak();

  static size_t size_class(size_t bytes);

 private:
  std::string name_;
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  bool cache_;
  mutable std::mutex mu_;
  std::unordered_map<void*, size_t> in_use_;  // block -> size class
  std::multimap<size_t, void*> free_;         // size class -> cached block
  MemoryStats stats_;
};

// Device memory entry points. pinned = page-locked host memory (CPU device only; plain host
// memory when the build or the machine has no CUDA).
void* allocate_bytes(Device device, size_t bytes, bool pinned = false);
void release_bytes(Device device, void* ptr, bool pinned = false);

MemoryStats memory_stats(Device device);
MemoryStats pinned_memory_stats();
void reset_peak_memory(Device device);
// Returns every cached block of every pool to the system.
void empty_cache();

}  // namespace sdlora
