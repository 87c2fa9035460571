// Tolerance comparisons, random inputs, error assertions and temporary files for the tests.
#include "tests/common/test_util.h"

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>

#include "tensor/ops.h"
#include "tensor/random.h"

namespace sdlora::test {

std::vector<double> host_values(const Tensor& t) {
  const Tensor h = cast(t.to(Device::cpu()), DType::kFloat64);
  return h.to_vector<double>();
}

::testing::AssertionResult all_close(const Tensor& got, const std::vector<double>& want,
                                     double rtol, double atol, const std::string& name) {
  const std::vector<double> g = host_values(got);
  if (g.size() != want.size())
    return ::testing::AssertionFailure()
           << name << ": " << g.size() << " values, expected " << want.size();
  std::ostringstream bad;
  int64_t n_bad = 0;
  double worst = 0.0;
  for (size_t i = 0; i < g.size(); ++i) {
    const double err = std::fabs(g[i] - want[i]);
    const bool ok = std::isfinite(g[i]) == std::isfinite(want[i]) &&
                    (err <= atol + rtol * std::fabs(want[i]) || g[i] == want[i]);
    if (!ok || std::isnan(g[i])) {
      if (n_bad < 5) bad << "\n  [" << i << "] got " << g[i] << ", want " << want[i];
      ++n_bad;
    }
    if (std::isfinite(err)) worst = std::max(worst, err);
  }
  if (n_bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << name << " " << got.describe() << ": " << n_bad << " of "
                                       << g.size() << " elements outside rtol " << rtol << " atol "
                                       << atol << " (largest error " << worst << ")" << bad.str();
}

::testing::AssertionResult all_close(const Tensor& got, const Tensor& want, double rtol,
                                     double atol, const std::string& name) {
  if (got.shape() != want.shape())
    return ::testing::AssertionFailure()
           << name << ": shape " << got.describe() << ", expected " << want.describe();
  return all_close(got, host_values(want), rtol, atol, name);
}

Tolerance tolerance_for(DType dtype) {
  switch (dtype) {
    case DType::kBFloat16:
      return {2e-2, 2e-2};
    case DType::kFloat64:
      return {1e-10, 1e-12};
    default:
      return {1e-4, 1e-5};
  }
}

Tensor random_tensor(const Shape& shape, uint64_t seed, double lo, double hi, DType dtype,
                     Device device) {
  Tensor t = Tensor::empty(shape, DType::kFloat32, Device::cpu());
  uniform_(t, seed, 0, lo, hi);
  return cast(t, dtype).to(device);
}

::testing::AssertionResult rel_close(const Tensor& got, const Tensor& want, double rel,
                                     const std::string& name) {
  double max_want = 0;
  for (double x : host_values(want)) max_want = std::max(max_want, std::fabs(x));
  return all_close(got, want, 0.0, rel * std::max(max_want, 1e-30), name);
}

GpuGate gpu_gate(const CudaStatus& status, bool required) {
  if (status.state == CudaState::kReady) return {GpuGateAction::kRun, ""};
  if (status.state == CudaState::kFailed) return {GpuGateAction::kFail, status.message};
  if (required)
    return {GpuGateAction::kFail,
            status.message + " -- failed instead of skipped because SDLORA_REQUIRE_GPU=1"};
  return {GpuGateAction::kSkip, status.message};
}

bool gpu_required_by_environment() {
  const char* v = std::getenv("SDLORA_REQUIRE_GPU");
  return v != nullptr && std::string(v) == "1";
}

GpuGate gpu_gate() { return gpu_gate(cuda_status(), gpu_required_by_environment()); }

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

::testing::AssertionResult throws_naming(const std::function<void()>& f,
                                         const std::string& needle) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    if (msg.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "message \"" << msg << "\" does not name \"" << needle << "\"";
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-sdlora exception: " << e.what();
  }
  return ::testing::AssertionFailure()
         << "did not throw (expected an error naming \"" << needle << "\")";
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("sdlora_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

std::string temp_dir(const std::string& name) {
  const std::string p = temp_path(name);
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p;
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "sdlora-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed for " + tmpl);
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::file(const std::string& rel) const {
  const std::filesystem::path p = std::filesystem::path(path_) / rel;
  std::filesystem::create_directories(p.parent_path());
  return p.string();
}

TempFile::TempFile(const std::string& name) : path_(temp_path(name)) {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

TempFile::~TempFile() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Tf32Scope::Tf32Scope(bool on) : saved_(allow_tf32()) { set_allow_tf32(on); }
Tf32Scope::~Tf32Scope() { set_allow_tf32(saved_); }

}  // namespace sdlora::test
