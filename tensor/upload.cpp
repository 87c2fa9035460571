// The upload ring (upload.h): device buffers filled on the copy stream and read on the compute
// stream, ordered by one "copied" and one "consumed" event per slot.
#include "tensor/upload.h"

#include "tensor/error.h"

#ifdef SDLORA_WITH_CUDA
#include <cuda_runtime.h>

#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#endif

namespace sdlora {

struct UploadRing::Slot {
  Tensor buffer;  // 1-D, the dtype of the last upload, at least its element count
#ifdef SDLORA_WITH_CUDA
  cudaEvent_t copied = nullptr, consumed = nullptr;
  bool copy_pending = false;  // copied recorded and no compute-stream wait queued for it yet
  bool consumed_recorded = false;
#endif
};

UploadRing::UploadRing(Device device, int slots) : device_(device) {
  SDLORA_CHECK(slots >= 1, "upload ring: needs at least one slot, got ", slots);
#ifndef SDLORA_WITH_CUDA
  SDLORA_CHECK(device.is_cpu(), "upload ring on ", device.str(),
               ": this build has no CUDA backend");
#endif
  slots_.resize(static_cast<size_t>(device.is_cpu() ? 0 : slots));
#ifdef SDLORA_WITH_CUDA
  if (device.is_cuda()) {
    cuda::set_device(device.index);
    for (Slot& s : slots_) {
      SDLORA_CUDA_CHECK(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming));
      SDLORA_CUDA_CHECK(cudaEventCreateWithFlags(&s.consumed, cudaEventDisableTiming));
    }
  }
#endif
}

UploadRing::~UploadRing() {
#ifdef SDLORA_WITH_CUDA
  if (device_.is_cpu()) return;
  // Buffers go back to the pool in compute-stream order: the compute stream first waits for any
  // copy still pending. Errors are ignored here (a destructor cannot report them).
  (void)cudaSetDevice(device_.index);
  cudaStream_t compute = cuda::stream(device_.index);
  for (Slot& s : slots_) {
    if (s.copy_pending) (void)cudaStreamWaitEvent(compute, s.copied, 0);
    s.buffer = Tensor();
    (void)cudaEventDestroy(s.copied);
    (void)cudaEventDestroy(s.consumed);
  }
#endif
}

UploadRing::Ticket UploadRing::upload(const Tensor& host) {
  SDLORA_CHECK(host.defined() && host.device().is_cpu(),
               "upload ring: the source must be a host tensor, got ",
               host.defined() ? host.describe() : std::string("an undefined tensor"));
  Ticket t;
  t.host = host;
  if (device_.is_cpu()) {
    t.device = host;
    return t;
  }
#ifdef SDLORA_WITH_CUDA
  const int n = static_cast<int>(slots_.size());
  SDLORA_CHECK(outstanding_ < n, "upload ring: ", n,
               " uploads are outstanding (consume one first)");
  t.slot = next_;
  next_ = (next_ + 1) % n;
  ++outstanding_;
  Slot& s = slots_[static_cast<size_t>(t.slot)];
  cuda::set_device(device_.index);
  cudaStream_t copy = cuda::copy_stream(device_.index);
  cudaStream_t compute = cuda::stream(device_.index);
  if (!s.buffer.defined() || s.buffer.dtype() != host.dtype() || s.buffer.numel() < host.numel()) {
    // A fresh pool block is ordered on the compute stream (its previous owner may still be
    // running there): the copy stream waits for everything queued on the compute stream so far.
    // The old buffer returns to the pool in compute order after its last read.
    s.buffer = Tensor::empty({host.numel()}, host.dtype(), device_);
    cudaEvent_t ready = nullptr;
    SDLORA_CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
    SDLORA_CUDA_CHECK(cudaEventRecord(ready, compute));
    SDLORA_CUDA_CHECK(cudaStreamWaitEvent(copy, ready, 0));
    SDLORA_CUDA_CHECK(cudaEventDestroy(ready));  // released once it has completed
  } else if (s.consumed_recorded) {
    SDLORA_CUDA_CHECK(cudaStreamWaitEvent(copy, s.consumed, 0));  // the last reads of the slot
  }
  SDLORA_CUDA_CHECK(cudaMemcpyAsync(s.buffer.raw_data(), host.raw_data(), host.nbytes(),
                                    cudaMemcpyHostToDevice, copy));
  SDLORA_CUDA_CHECK(cudaEventRecord(s.copied, copy));
  s.copy_pending = true;
  t.device = s.buffer.narrow(0, host.numel()).reshape(host.shape());
#endif
  return t;
}

#ifdef SDLORA_WITH_CUDA
namespace {
// The slot the oldest outstanding upload holds (tickets are consumed in upload order).
int oldest_slot(int next, int outstanding, int n) { return ((next - outstanding) % n + n) % n; }
}  // namespace
#endif

Tensor UploadRing::consume(Ticket& t, const std::function<Tensor(const Tensor&)>& fn) {
  SDLORA_CHECK(t.host.defined(), "upload ring: consume() of an empty ticket");
  if (device_.is_cpu()) {
    Tensor r = fn(t.host);
    t = Ticket();
    return r;
  }
#ifdef SDLORA_WITH_CUDA
  const int n = static_cast<int>(slots_.size());
  SDLORA_CHECK(outstanding_ > 0 && t.slot == oldest_slot(next_, outstanding_, n),
               "upload ring: tickets must be consumed in upload order (slot ", t.slot, ")");
  Slot& s = slots_[static_cast<size_t>(t.slot)];
  cuda::set_device(device_.index);
  cudaStream_t compute = cuda::stream(device_.index);
  SDLORA_CUDA_CHECK(cudaStreamWaitEvent(compute, s.copied, 0));
  s.copy_pending = false;
  Tensor r = fn(t.device);
  SDLORA_CUDA_CHECK(cudaEventRecord(s.consumed, compute));
  s.consumed_recorded = true;
  --outstanding_;
  t = Ticket();  // the host memory is recycled after this point of the compute stream
  return r;
#else
  return Tensor();
#endif
}

void UploadRing::abandon(Ticket& t) {
  if (!t.host.defined()) return;
  if (device_.is_cpu()) {
    t = Ticket();
    return;
  }
#ifdef SDLORA_WITH_CUDA
  (void)consume(t, [](const Tensor&) { return Tensor(); });
#endif
}

}  // namespace sdlora
