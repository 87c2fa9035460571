// Device selection and naming.
#include "tensor/device.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <algorithm>
#include <charconv>
#include <iostream>
#include <system_error>
#include <thread>

#include "tensor/error.h"

#ifdef SDLORA_WITH_CUDA
#include "tensor/cuda/context.h"
#endif

namespace sdlora {

bool cuda_built() {
#ifdef SDLORA_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef SDLORA_WITH_CUDA
  return cuda::device_count();
#else
  return 0;
#endif
}

namespace {
#ifdef SDLORA_WITH_CUDA
std::string cuda_version(int v) {
  return std::to_string(v / 1000) + "." + std::to_string(v % 1000 / 10);
}

CudaStatus probe_cuda() {
  const cuda::InitStatus& init = cuda::init_status();
  CudaStatus st;
  st.devices = init.device_count;
  const std::string versions = "driver supports CUDA " + cuda_version(init.driver_version) +
                               ", runtime is CUDA " + cuda_version(init.runtime_version);
  if (init.error == cudaSuccess && init.device_count > 0) {
    st.state = CudaState::kReady;
  } else if (init.error == cudaSuccess || init.error == cudaErrorNoDevice) {
    st.state = CudaState::kNoDevice;
    st.message =
        "no CUDA GPU present on this machine (cudaGetDeviceCount found none; " + versions + ")";
  } else if (init.driver_version == 0) {
    st.state = CudaState::kNoDevice;
    st.message = std::string("no CUDA driver on this machine (cudaGetDeviceCount: ") +
                 cudaGetErrorName(init.error) + ")";
  } else {
    st.state = CudaState::kFailed;
    st.message = std::string("CUDA failed to initialise: cudaGetDeviceCount returned ") +
                 cudaGetErrorName(init.error) + " (" + cudaGetErrorString(init.error) + "; " +
                 versions + ")";
  }
  return st;
}
#endif
}  // namespace

const CudaStatus& cuda_status() {
#ifdef SDLORA_WITH_CUDA
  static const CudaStatus status = probe_cuda();
#else
  static const CudaStatus status{CudaState::kNotBuilt, 0, "built without the CUDA backend"};
#endif
  return status;
}

Device Device::cuda(int index) {
  SDLORA_CHECK(cuda_built(),
               "CUDA device requested but this build has no CUDA backend "
               "(configure with -DSDLORA_CUDA=ON on a machine with nvcc)");
  const CudaStatus& status = cuda_status();
  SDLORA_CHECK(status.state != CudaState::kFailed, "CUDA device requested but ", status.message);
  const int n = cuda_device_count();
  SDLORA_CHECK(n > 0, "CUDA device requested but no GPU is available (", status.message, ")");
  SDLORA_CHECK(index >= 0 && index < n, "CUDA device cuda:", index, " requested but only ", n,
               " GPU(s) are available");
  return {DeviceType::kCUDA, index};
}

Device Device::parse(const std::string& text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.rfind("cuda:", 0) == 0) {
    const std::string num = text.substr(5);
    SDLORA_CHECK(!num.empty() && num.find_first_not_of("0123456789") == std::string::npos,
                 "bad device '", text, "': expected cpu, cuda or cuda:N");
    int index = 0;  // digits only; a number past int is no GPU either
    const auto parsed = std::from_chars(num.data(), num.data() + num.size(), index);
    SDLORA_CHECK(parsed.ec == std::errc(), "bad device '", text, "': GPU index out of range");
    return cuda(index);
  }
  SDLORA_THROW("bad device '", text, "': expected cpu, cuda or cuda:N");
}

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

Device default_device() {
  if (cuda_available()) return {DeviceType::kCUDA, 0};
  // A driver that is present but cannot start CUDA is a broken install, not a CPU machine: say so
  // once rather than train on the CPU unnoticed.
  static const bool warned = [] {
    if (cuda_status().state == CudaState::kFailed)
      std::cerr << "sdlora: warning: " << cuda_status().message << "; using the CPU\n";
    return true;
  }();
  (void)warned;
  return Device::cpu();
}

}  // namespace sdlora

namespace sdlora {

namespace {
// The thread count before any change: every core, or OMP_NUM_THREADS when set.
int default_cpu_threads() {
#ifdef _OPENMP
  static const int n = omp_get_max_threads();
#else
  static const int n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
#endif
  return n;
}
}  // namespace

void set_cpu_threads(int n) {
  const int initial = default_cpu_threads();  // pinned before the first change
  const int use = n > 0 ? n : initial;
#ifdef _OPENMP
  omp_set_num_threads(use);
#endif
  openblas_set_num_threads(use);
}

int cpu_threads() {
  default_cpu_threads();  // pins the default before the first change
  return openblas_get_num_threads();
}

const char* cpu_blas_threading() {
  switch (openblas_get_parallel()) {  // OpenBLAS's own codes: 0, 1 (pthreads), 2 (OpenMP)
    case 1:
      return "pthread";
    case 2:
      return "openmp";
    default:
      return "sequential";
  }
}

}  // namespace sdlora
