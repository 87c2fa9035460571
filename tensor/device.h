// Devices: the CPU and CUDA GPUs. The default device is CUDA when a GPU is present, else the CPU.
#pragma once

#include <cstdint>
#include <string>

namespace sdlora {

enum class DeviceType : uint8_t { kCPU, kCUDA };

struct Device {
  DeviceType type = DeviceType::kCPU;
  int index = 0;

  static Device cpu() { return {DeviceType::kCPU, 0}; }
  // Throws a clear error when the build has no CUDA backend or no GPU with this index exists.
  static Device cuda(int index = 0);
  // Parses "cpu", "cuda" or "cuda:N" (the --device flag); throws naming the text otherwise.
  static Device parse(const std::string& text);

  bool is_cpu() const { return type == DeviceType::kCPU; }
  bool is_cuda() const { return type == DeviceType::kCUDA; }
  std::string str() const;
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
};

// Whether this build has the CUDA backend compiled in.
bool cuda_built();
// Number of usable GPUs (0 when none, when CUDA failed to start, or when the build has no CUDA
// backend: cuda_status() tells these apart).
int cuda_device_count();

// What CUDA's start-up found. kNoDevice: no driver installed, or a driver and no GPU (a CPU
// machine). kFailed: a driver is present but CUDA could not start (driver older than the runtime,
// a device in a bad state, ...): GPUs may be there but nothing can use them. `message` says which,
// with the CUDA error's name; empty when kReady.
enum class CudaState : uint8_t { kNotBuilt, kNoDevice, kReady, kFailed };
struct CudaStatus {
  CudaState state = CudaState::kNotBuilt;
  int devices = 0;
  std::string message;
};
const CudaStatus& cuda_status();
inline bool cuda_available() { return cuda_device_count() > 0; }
Device default_device();

// CPU compute threads (OpenMP loops and OpenBLAS products). n <= 0 restores the library default
// (every core, or OMP_NUM_THREADS when set). Call between ops, not while one runs.
void set_cpu_threads(int n);
int cpu_threads();
// How the linked OpenBLAS runs its products on several threads: "openmp" (on OpenMP's threads,
// the pool the project's loops use), "pthread" (a pool of its own) or "sequential".
const char* cpu_blas_threading();

}  // namespace sdlora
