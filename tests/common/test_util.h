// Helpers shared by the test suites: tolerance comparisons with named errors, error messages,
// the GPU skip.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace sdlora::test {

// What a GPU test does on this machine: run; skip, with the reason printed (no GPU, or a build
// without CUDA); or fail, with the reason, when CUDA failed to start (a driver is there but
// unusable) or when `required` (SDLORA_REQUIRE_GPU=1, set by scripts/gpu-check.sh) and no GPU
// can run it, so that a broken GPU machine never reports its GPU tests as passed.
enum class GpuGateAction { kRun, kSkip, kFail };
struct GpuGate {
  GpuGateAction action;
  std::string reason;
};
GpuGate gpu_gate(const CudaStatus& status, bool required);
// This process: cuda_status() and the environment.
GpuGate gpu_gate();
// Whether SDLORA_REQUIRE_GPU is set to 1.
bool gpu_required_by_environment();

// Runs the rest of the test only where a GPU can: otherwise skips or fails as gpu_gate() says.
#define SDLORA_REQUIRE_GPU()                                                 \
  do {                                                                       \
    const ::sdlora::test::GpuGate sdlora_gate_ = ::sdlora::test::gpu_gate(); \
    if (sdlora_gate_.action == ::sdlora::test::GpuGateAction::kFail)         \
      GTEST_FAIL() << sdlora_gate_.reason;                                   \
    if (sdlora_gate_.action == ::sdlora::test::GpuGateAction::kSkip)         \
      GTEST_SKIP() << sdlora_gate_.reason;                                   \
  } while (0)

// Host float64 copy of any float tensor (any device, any float dtype).
std::vector<double> host_values(const Tensor& t);

// Checks |got - want| <= atol + rtol * |want| elementwise; NaN never passes. On failure reports
// the name, the shapes, the first few bad elements and the largest error.
::testing::AssertionResult all_close(const Tensor& got, const Tensor& want, double rtol,
                                     double atol, const std::string& name = "tensor");
::testing::AssertionResult all_close(const Tensor& got, const std::vector<double>& want,
                                     double rtol, double atol, const std::string& name = "tensor");

// Tolerances per dtype for comparing a CUDA result with the float32 CPU reference.
struct Tolerance {
  double rtol, atol;
};
Tolerance tolerance_for(DType dtype);

// Random float32 values in [lo, hi) from a fixed seed (the library's own generator).
Tensor random_tensor(const Shape& shape, uint64_t seed, double lo = -1.0, double hi = 1.0,
                     DType dtype = DType::kFloat32, Device device = Device::cpu());

// Relative to the tensor's largest magnitude: max |got - want| <= rel * max |want|.
::testing::AssertionResult rel_close(const Tensor& got, const Tensor& want, double rel,
                                     const std::string& name);

// The message of the sdlora::Error that f throws, or "" when it throws none.
std::string error_of(const std::function<void()>& f);

// Whether f throws sdlora::Error whose message contains `needle` (an op, key, file or tensor);
// another exception type, another message or no exception fails with what happened.
::testing::AssertionResult throws_naming(const std::function<void()>& f, const std::string& needle);

// A path in the system's temporary folder, unique to this process: <tmp>/sdlora_<pid>_<name>.
std::string temp_path(const std::string& name);

// temp_path(name) as an empty folder (whatever was there is removed first); the folder stays
// after the test so that a failing run can be inspected.
std::string temp_dir(const std::string& name);

// A fresh folder under the system's temporary folder (mkdtemp), removed with everything in it
// on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // path() / rel, with its parent folders created.
  std::string file(const std::string& rel) const;

 private:
  std::string path_;
};

// temp_path(name), removed (if it exists) on construction and on destruction.
class TempFile {
 public:
  explicit TempFile(const std::string& name);
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Sets TF32 for float32 products on CUDA for a scope and restores the previous setting.
class Tf32Scope {
 public:
  explicit Tf32Scope(bool on);
  ~Tf32Scope();
  Tf32Scope(const Tf32Scope&) = delete;
  Tf32Scope& operator=(const Tf32Scope&) = delete;

 private:
  bool saved_;
};

}  // namespace sdlora::test
