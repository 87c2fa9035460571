// How training runs report themselves on the command line: a one-line progress bar (task, epoch,
// batch, loss, images/s, ETA) redrawn in place on a terminal, plain lines otherwise (logs, CI);
// and the Ctrl-C / kill handling that stops a run at the next batch so that every finished task
// stays saved.
#pragma once

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>

#include "cl/task_loop.h"

namespace sdlora::apps {

class ConsoleReporter : public cl::Reporter {
 public:
  // prefix: shown before every line (the method's name in the demo).
  explicit ConsoleReporter(std::string prefix = "");
  ~ConsoleReporter() override;
  void on_batch(const cl::Progress& p) override;
  void on_line(const std::string& line) override;

 private:
  void clear_bar();

  std::string prefix_;
  bool tty_;
  bool bar_shown_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
  int64_t last_plain_task_ = -1, last_plain_epoch_ = -1, last_plain_decile_ = -1;
};

// While alive, SIGINT and SIGTERM set flag() instead of killing the process; a second signal
// kills it as usual. The previous handlers come back on destruction.
class StopOnSignal {
 public:
  StopOnSignal();
  ~StopOnSignal();
  StopOnSignal(const StopOnSignal&) = delete;
  StopOnSignal& operator=(const StopOnSignal&) = delete;
  const std::atomic<bool>* flag() const;

 private:
  struct sigaction old_int_ {
  }, old_term_{};
};

// "1:02:03" / "4:05" from seconds.
std::string format_duration(double seconds);

}  // namespace sdlora::apps
