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
  int64_t live_bytes = 0;          // bytes held by live tensors (rounded to the size class, or
                                   // exact with the caching allocator off)
  int64_t peak_bytes = 0;          // the most live_bytes since the last reset_peak
  int64_t cached_bytes = 0;        // bytes freed by tensors and kept for reuse
  int64_t allocations = 0;         // allocate() calls
  int64_t system_allocations = 0;  // calls that reached the system allocator (cache misses)
};

// A pool over a raw allocator. Blocks are rounded up to a size class (at most 25% above the
// request); a freed block goes to the free list of its class and serves the next request of that
// class. When the raw allocator fails, the cache is released and the request retried once; if it
// fails again the error names the pool, the request and the pool's state. Thread-safe.
//
// The process's CPU pool caches too (page faults and page clearing of fresh buffers cost a CPU
// step as much as cudaMalloc would a GPU one), up to a limit (set_cache_limit) past which freed
// blocks go back to the system.
//
// exact = true (the process's CPU, pinned and device pools set it from the environment switch
// SDLORA_NO_CACHING_ALLOCATOR=1, for compute-sanitizer and other memory checkers): the raw
// allocator gets the exact size requested (no size-class slack to hide an overrun in), no block is
// reused and each is freed at once on release.
class CachingPool {
 public:
  using RawAlloc = std::function<void*(size_t)>;  // nullptr on failure
  using RawFree = std::function<void(void*)>;

  // cache = false frees blocks at once.
  CachingPool(std::string name, RawAlloc raw_alloc, RawFree raw_free, bool cache,
              bool exact = false);
  ~CachingPool();
  CachingPool(const CachingPool&) = delete;
  CachingPool& operator=(const CachingPool&) = delete;

  void* allocate(size_t bytes);
  void release(void* ptr);
  // release() when this pool owns ptr; false (and nothing done) otherwise.
  bool try_release(void* ptr);
  void empty_cache();
  MemoryStats stats() const;
  void reset_peak();
  // At most `bytes` kept in the free lists (default: no limit); a block freed past it is returned
  // to the system at once.
  void set_cache_limit(size_t bytes);

  static size_t size_class(size_t bytes);
  // Whether SDLORA_NO_CACHING_ALLOCATOR is set to 1 now (read when each process pool is created).
  static bool caching_disabled_by_environment();
  // False when this pool allocates exact sizes and frees at once.
  bool size_classes() const { return !exact_; }

 private:
  std::string name_;
  RawAlloc raw_alloc_;
  RawFree raw_free_;
  bool cache_;
  bool exact_;  // exact sizes, no reuse (SDLORA_NO_CACHING_ALLOCATOR=1)
  size_t cache_limit_ = SIZE_MAX;
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

// A GPU's free and total memory as the driver reports them (cudaMemGetInfo): blocks cached by the
// pool count as used. Throws for the CPU or without the CUDA backend.
struct DeviceMemoryInfo {
  int64_t free_bytes = 0;
  int64_t total_bytes = 0;
};
DeviceMemoryInfo device_memory_info(Device device);

}  // namespace sdlora
