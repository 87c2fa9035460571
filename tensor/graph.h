// Recorded graphs: a sequence of device work recorded once and replayed many times (CUDA graphs),
// so that a training step of a few hundred kernels costs one launch instead of a few hundred, and
// none of the host work between them.
//
// Recording runs the host code once; on a GPU the kernels it queues are recorded, not run, and
// replay() runs them on the same addresses. Everything the recorded code allocates comes from a
// pool private to the graph (its blocks are never handed to other work while the graph lives),
// so the tensors it left behind (outputs, gradients) hold the results of each replay. The code
// must therefore queue the same work whatever the data: no host reads (item(), to_vector()), no
// uploads, no host synchronisation, no decision on values. graph_capturing() is true while it
// records, and those calls throw, naming themselves, instead of breaking the capture.
//
// The CPU twin has the same semantics without a driver: recording runs the host code once with
// the same checks in force (its results are then overwritten by the first replay, which must be
// harmless: the recorded code computes its outputs afresh), and replay() runs it again under the
// same checks; a body a GPU cannot record fails at the same point on the CPU.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "tensor/device.h"

namespace sdlora {

// Whether the calling thread is recording a graph (or running the CPU twin's replay).
bool graph_capturing();
// Throws when graph_capturing(): `what` cannot be part of a recorded graph.
void check_not_capturing(const char* what);

class RecordedGraph {
 public:
  // Records `body` for `device`: runs its host code once (CUDA: on the device's compute stream
  // under stream capture, so its kernels are recorded, not run; CPU: computing). Throws (after
  // ending the capture cleanly) when the body throws or does something a graph cannot hold.
  RecordedGraph(Device device, std::function<void()> body);
  ~RecordedGraph();  // waits for replays in flight before the graph's memory can be reused
  RecordedGraph(const RecordedGraph&) = delete;
  RecordedGraph& operator=(const RecordedGraph&) = delete;

  // Queues the recorded work (CUDA: one graph launch on the compute stream; CPU: runs the body).
  void replay();
  Device device() const { return device_; }
  // True for a CUDA graph; false for the CPU twin, whose replays rerun the host code.
  bool on_device() const { return device_.is_cuda(); }
  // Device memory the graph's private pool holds (0 on the CPU).
  int64_t pool_bytes() const;

 private:
  struct Impl;
  Device device_;
  std::function<void()> body_;  // the CPU twin's
  std::unique_ptr<Impl> impl_;  // the CUDA graph
};

}  // namespace sdlora
