// The console reporter and the signal guard (progress.h).
#include "apps/progress.h"

#include <unistd.h>

#include <cmath>
#include <iostream>
#include <sstream>

namespace sdlora::apps {
namespace {

// Set from the signal handler, so global and lock-free.
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free);

extern "C" void on_stop_signal(int) { g_stop.store(true); }

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<long long>(std::llround(seconds));
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", s / 3600, (s / 60) % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%lld:%02lld", s / 60, s % 60);
  return buf;
}

ConsoleReporter::ConsoleReporter(std::string prefix)
    : prefix_(std::move(prefix)), tty_(isatty(STDERR_FILENO) != 0) {}

ConsoleReporter::~ConsoleReporter() { clear_bar(); }

void ConsoleReporter::clear_bar() {
  if (bar_shown_) {
    std::cerr << "\r\033[K" << std::flush;
    bar_shown_ = false;
  }
}

void ConsoleReporter::on_batch(const cl::Progress& p) {
  const bool last = p.batch + 1 == p.num_batches;
  if (tty_) {
    const auto now = std::chrono::steady_clock::now();
    if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    constexpr int kWidth = 24;
    const double frac = p.num_batches > 0
                            ? static_cast<double>(p.batch + 1) / static_cast<double>(p.num_batches)
                            : 1.0;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(filled), '=');
    if (filled < kWidth) bar += '>' + std::string(static_cast<size_t>(kWidth - filled - 1), ' ');
    char line[256];
    std::snprintf(
        line, sizeof line,
        "task %lld (%lld/%lld) epoch %lld/%lld [%s] %lld/%lld loss %.4f %.0f img/s ETA %s",
        static_cast<long long>(p.task), static_cast<long long>(p.task + 1),
        static_cast<long long>(p.num_tasks), static_cast<long long>(p.epoch + 1),
        static_cast<long long>(p.num_epochs), bar.c_str(), static_cast<long long>(p.batch + 1),
        static_cast<long long>(p.num_batches), p.loss, p.images_per_s,
        format_duration(p.eta_s).c_str());
    std::cerr << "\r\033[K" << prefix_ << line << std::flush;
    bar_shown_ = true;
    return;
  }
  // Off a terminal: a plain line at every tenth of an epoch.
  const int64_t decile = p.num_batches > 0 ? (p.batch + 1) * 10 / p.num_batches : 10;
  if (p.task == last_plain_task_ && p.epoch == last_plain_epoch_ && decile == last_plain_decile_)
    return;
  if (decile == 0 && !last) return;
  last_plain_task_ = p.task;
  last_plain_epoch_ = p.epoch;
  last_plain_decile_ = decile;
  std::ostringstream o;
  o << prefix_ << "task " << p.task << " (" << p.task + 1 << "/" << p.num_tasks << ") epoch "
    << p.epoch + 1 << "/" << p.num_epochs << " batch " << p.batch + 1 << "/" << p.num_batches
    << " loss " << p.loss << " " << static_cast<long long>(p.images_per_s) << " img/s ETA "
    << format_duration(p.eta_s);
  std::cerr << o.str() << "\n";
}

void ConsoleReporter::on_line(const std::string& line) {
  clear_bar();
  std::cout << prefix_ << line << std::endl;
}

StopOnSignal::StopOnSignal() {
  g_stop.store(false);
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sa.sa_flags = SA_RESETHAND;  // the next signal of the kind ends the process the usual way
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, &old_int_);
  sigaction(SIGTERM, &sa, &old_term_);
}

StopOnSignal::~StopOnSignal() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
}

const std::atomic<bool>* StopOnSignal::flag() const { return &g_stop; }

}  // namespace sdlora::apps
