// The pieces of a training step that every loop shares: a loss window that accumulates on the
// device and is read back (a host synchronisation) only every few batches, the finiteness check
// of the loss, the gradients and the trainable tensors, and a stopwatch.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"

namespace sdlora::cl {

class Stopwatch {
 public:
  Stopwatch() : t0_(Clock::now()) {}
  double seconds() const { return std::chrono::duration<double>(Clock::now() - t0_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point t0_;
};

// The sample-weighted sum of the losses since the last read, kept on the device. On the CPU a
// read is free, so due() says every batch; on a GPU every `read_every` batches (and whenever the
// caller forces it: the first and last batch of an epoch, a log line).
class LossWindow {
 public:
  LossWindow(Device device, int64_t read_every);
  void add(const Var& loss, int64_t images);  // loss: a 0-d or 1-element mean over `images`
  bool due(int64_t batch_index, bool force) const;
  // Reads the window back, clears it and returns its mean loss; `where` names the batches in the
  // error thrown when the sum is NaN or infinite.
  double read(const std::string& where);
  double sum_read() const { return sum_read_; }      // every sum read so far
  int64_t images_read() const { return images_read_; }

 private:
  Device device_;
  int64_t read_every_;
  Tensor window_;
  int64_t images_ = 0, images_read_ = 0;
  double sum_read_ = 0.0;
};

// Throws naming the first tensor whose values (or, with gradients = true, whose gradients) hold
// NaN or infinity, and `where`. One device read for all tensors on the common, finite path.
void check_finite(const std::vector<std::pair<std::string, Var>>& tensors, bool gradients,
                  const std::string& where);

}  // namespace sdlora::cl
