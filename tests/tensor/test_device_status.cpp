// CUDA's start-up status and the GPU tests' gate: a CUDA start-up failure or, with
// SDLORA_REQUIRE_GPU=1, a missing GPU fails the GPU tests instead of skipping them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <optional>
#include <string>

#include "tensor/device.h"
#include "tests/common/test_util.h"

namespace sdlora::test {
namespace {

// Sets an environment variable for the scope, restoring the old value (or its absence) after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = std::string(old);
    if (value)
      setenv(name, value, 1);
    else
      unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_)
      setenv(name_.c_str(), old_->c_str(), 1);
    else
      unsetenv(name_.c_str());
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

CudaStatus status_of(CudaState state, const std::string& message, int devices = 0) {
  CudaStatus s;
  s.state = state;
  s.devices = devices;
  s.message = message;
  return s;
}

TEST(GpuGate, ReadyDeviceRunsWhetherRequiredOrNot) {
  for (bool required : {false, true}) {
    const GpuGate g = gpu_gate(status_of(CudaState::kReady, "", 1), required);
    EXPECT_EQ(g.action, GpuGateAction::kRun);
    EXPECT_EQ(g.reason, "");
  }
}

TEST(GpuGate, NoDeviceSkipsWithTheReasonUnlessRequired) {
  const std::string why =
      "no CUDA driver on this machine (cudaGetDeviceCount: cudaErrorInsufficientDriver)";
  const GpuGate skip = gpu_gate(status_of(CudaState::kNoDevice, why), false);
  EXPECT_EQ(skip.action, GpuGateAction::kSkip);
  EXPECT_EQ(skip.reason, why);
  const GpuGate fail = gpu_gate(status_of(CudaState::kNoDevice, why), true);
  EXPECT_EQ(fail.action, GpuGateAction::kFail);
  EXPECT_NE(fail.reason.find(why), std::string::npos) << fail.reason;
  EXPECT_NE(fail.reason.find("SDLORA_REQUIRE_GPU=1"), std::string::npos) << fail.reason;
}

TEST(GpuGate, BuildWithoutCudaSkipsUnlessRequired) {
  const CudaStatus s = status_of(CudaState::kNotBuilt, "built without the CUDA backend");
  EXPECT_EQ(gpu_gate(s, false).action, GpuGateAction::kSkip);
  EXPECT_EQ(gpu_gate(s, true).action, GpuGateAction::kFail);
}

TEST(GpuGate, CudaStartupFailureAlwaysFails) {
  const std::string why =
      "CUDA failed to initialise: cudaGetDeviceCount returned cudaErrorSystemDriverMismatch";
  for (bool required : {false, true}) {
    const GpuGate g = gpu_gate(status_of(CudaState::kFailed, why), required);
    EXPECT_EQ(g.action, GpuGateAction::kFail);
    EXPECT_NE(g.reason.find(why), std::string::npos) << g.reason;
  }
}

TEST(GpuGate, OnlyTheValue1RequiresAGpu) {
  {
    ScopedEnv env("SDLORA_REQUIRE_GPU", "1");
    EXPECT_TRUE(gpu_required_by_environment());
  }
  for (const char* v : {"0", "", "yes"}) {
    ScopedEnv env("SDLORA_REQUIRE_GPU", v);
    EXPECT_FALSE(gpu_required_by_environment()) << "SDLORA_REQUIRE_GPU='" << v << "'";
  }
  ScopedEnv env("SDLORA_REQUIRE_GPU", nullptr);
  EXPECT_FALSE(gpu_required_by_environment());
}

// This machine: the status agrees with the device count, and any state but kReady explains itself.
TEST(CudaStatus, AgreesWithTheDeviceCount) {
  const CudaStatus& s = cuda_status();
  if (!cuda_built()) {
    EXPECT_EQ(s.state, CudaState::kNotBuilt);
  }
  if (s.state == CudaState::kReady) {
    EXPECT_GT(s.devices, 0);
    EXPECT_EQ(cuda_device_count(), s.devices);
    EXPECT_TRUE(s.message.empty()) << s.message;
  } else {
    EXPECT_EQ(cuda_device_count(), 0);
    EXPECT_FALSE(cuda_available());
    EXPECT_FALSE(s.message.empty());
    EXPECT_EQ(default_device(), Device::cpu());
  }
  if (s.state == CudaState::kFailed) {
    EXPECT_NE(s.message.find("CUDA failed to initialise"), std::string::npos) << s.message;
    const std::string err = error_of([] { (void)Device::cuda(0); });
    EXPECT_NE(err.find("CUDA failed to initialise"), std::string::npos) << err;
  }
}

TEST(CudaStatus, TheGateOfThisProcessFollowsTheStatusAndTheEnvironment) {
  ScopedEnv env("SDLORA_REQUIRE_GPU", "1");
  const GpuGate g = gpu_gate();
  EXPECT_EQ(g.action,
            cuda_status().state == CudaState::kReady ? GpuGateAction::kRun : GpuGateAction::kFail);
}

}  // namespace
}  // namespace sdlora::test
