// Recorded graphs (graph.h): the CUDA graph through stream capture, and the CPU twin.
#include "tensor/graph.h"

#include <exception>

#include "tensor/error.h"

#ifdef SDLORA_WITH_CUDA
#include "tensor/cuda/check.h"
#include "tensor/cuda/context.h"
#endif

namespace sdlora {

namespace {
thread_local int t_capturing = 0;

// Marks the calling thread as recording for its lifetime.
struct CapturingScope {
  CapturingScope() { ++t_capturing; }
  ~CapturingScope() { --t_capturing; }
  CapturingScope(const CapturingScope&) = delete;
  CapturingScope& operator=(const CapturingScope&) = delete;
};
}  // namespace

bool graph_capturing() { return t_capturing > 0; }

void check_not_capturing(const char* what) {
  SDLORA_CHECK(!graph_capturing(), what,
               " cannot be part of a recorded graph (the training step is recorded once and "
               "replayed: it may not read values back to the host, upload host data or "
               "synchronise); move it out of the step, or turn graphs off (cuda_graph = false)");
}

#ifdef SDLORA_WITH_CUDA
struct RecordedGraph::Impl {
  int index = 0;
  std::unique_ptr<cuda::GraphPool> pool;
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;

  ~Impl() {
    // Replays in flight read and write the pool's blocks: wait for them before the pool can
    // free or hand out anything.
    cuda::set_device(index);
    (void)cudaStreamSynchronize(cuda::stream(index));
    if (exec != nullptr) (void)cudaGraphExecDestroy(exec);
    if (graph != nullptr) (void)cudaGraphDestroy(graph);
    (void)cudaGetLastError();
  }
};

namespace {
// Ends a capture that failed part-way, so the stream works again; the partial graph is dropped.
void abandon_capture(cudaStream_t s) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  if (cudaStreamIsCapturing(s, &status) == cudaSuccess && status != cudaStreamCaptureStatusNone) {
    cudaGraph_t partial = nullptr;
    (void)cudaStreamEndCapture(s, &partial);
    if (partial != nullptr) (void)cudaGraphDestroy(partial);
  }
  (void)cudaGetLastError();
}
}  // namespace
#else
struct RecordedGraph::Impl {};
#endif

RecordedGraph::RecordedGraph(Device device, std::function<void()> body) : device_(device) {
  SDLORA_CHECK(body != nullptr, "RecordedGraph: no body to record");
  if (device.is_cpu()) {  // the recording runs the host code once, as on a GPU
    body_ = std::move(body);
    const CapturingScope scope;
    body_();
    return;
  }
#ifdef SDLORA_WITH_CUDA
  SDLORA_CHECK(!graph_capturing(), "RecordedGraph: already recording a graph on this thread");
  impl_ = std::make_unique<Impl>();
  impl_->index = device.index;
  cuda::set_device(device.index);
  const cudaStream_t s = cuda::stream(device.index);
  impl_->pool = std::make_unique<cuda::GraphPool>(device.index);
  // Work queued before the capture (the inputs' copies) must not be recorded: it is already in
  // the stream. ThreadLocal mode: only this thread's unsafe calls break the capture (the loader's
  // threads keep uploading on the copy stream meanwhile).
  SDLORA_CUDA_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
  try {
    const cuda::GraphPool::Use use(*impl_->pool);
    const CapturingScope scope;
    body();
  } catch (const std::exception& e) {
    abandon_capture(s);
    SDLORA_THROW("recording a CUDA graph on ", device.str(), ": ", e.what());
  }
  const cudaError_t end = cudaStreamEndCapture(s, &impl_->graph);
  if (end != cudaSuccess) {
    (void)cudaGetLastError();
    SDLORA_THROW("recording a CUDA graph on ", device.str(), ": the capture was invalidated (",
                 cudaGetErrorName(end), ": ", cudaGetErrorString(end),
                 "); something in the recorded code synchronised with the host or used another "
                 "stream without ordering it");
  }
  SDLORA_CUDA_CHECK(cudaGraphInstantiate(&impl_->exec, impl_->graph, 0));
  // The blocks the eager steps before left cached in the device pool: replays run in the graph's
  // pool, so they would only double the device memory the step holds.
  cuda::device_release_cached(device.index);
#else
  SDLORA_THROW("cannot record a graph on ", device.str(), ": this build has no CUDA backend");
#endif
}

RecordedGraph::~RecordedGraph() = default;

void RecordedGraph::replay() {
  if (device_.is_cpu()) {
    const CapturingScope scope;
    body_();
    return;
  }
#ifdef SDLORA_WITH_CUDA
  cuda::set_device(impl_->index);
  SDLORA_CUDA_CHECK(cudaGraphLaunch(impl_->exec, cuda::stream(impl_->index)));
#endif
}

int64_t RecordedGraph::pool_bytes() const {
#ifdef SDLORA_WITH_CUDA
  if (impl_ != nullptr) return impl_->pool->reserved_bytes();
#endif
  return 0;
}

}  // namespace sdlora
