// Host-to-device uploads that overlap the compute stream. An UploadRing owns `slots` device
// buffers. upload() copies a host tensor into the next slot on the device's copy stream, after
// the compute stream has finished reading what that slot held before; consume() makes the compute
// stream wait for the copy, hands the slot to a function that queues its reads (typically one
// kernel that converts it into a tensor of its own), and records when those reads are done, so
// the slot can be refilled. The copy of batch b + 1 thus runs while step b computes. The ring's
// buffers never go back to the device pool while in use, so no pool block is ever shared between
// streams. On the CPU an upload is the host tensor itself.
//
// The host tensor stays referenced by its ticket until the compute stream's wait for its copy is
// queued: pinned host memory is recycled only after the compute stream passes that point
// (tensor/cuda/context.h), which is after the copy.
#pragma once

#include <functional>
#include <vector>

#include "tensor/tensor.h"

namespace sdlora {

class UploadRing {
 public:
  struct Ticket {
    int slot = -1;
    Tensor host;    // the source (kept alive until consumed or abandoned)
    Tensor device;  // the slot's view with the source's shape
  };

  UploadRing(Device device, int slots = 3);
  ~UploadRing();
  UploadRing(const UploadRing&) = delete;
  UploadRing& operator=(const UploadRing&) = delete;

  Device device() const { return device_; }

  // Queues the copy of `host` (a CPU tensor; pinned for the copy to be asynchronous)
  // into the next slot. At most `slots` uploads may be outstanding (not yet consumed).
  Ticket upload(const Tensor& host);
  // Queues the compute stream's wait for t's copy, then fn(device view) (which must queue every
  // read of the view before returning), then the event that frees the slot; returns fn's result.
  Tensor consume(Ticket& t, const std::function<Tensor(const Tensor&)>& fn);
  // Gives up an upload nobody will consume: the compute stream still waits for its copy, so that
  // neither the slot nor the host memory is reused before the copy has finished.
  void abandon(Ticket& t);

 private:
  struct Slot;
  Device device_;
  std::vector<Slot> slots_;
#ifdef SDLORA_WITH_CUDA
  int next_ = 0, outstanding_ = 0;  // the slot the next upload takes; uploads not yet consumed
#endif
};

}  // namespace sdlora
