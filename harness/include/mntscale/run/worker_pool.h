// The one way the harness starts concurrent actors: the window runner's
// workers, the event runner's actors and the background readers are all
// threads or forked processes started, watched and joined here. A process
// worker dies with the harness (PR_SET_PDEATHSIG) and ignores SIGINT, which
// the harness handles for it.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace mntscale {

enum class WorkerMode { kThread, kProcess };

class WorkerPool {
 public:
  explicit WorkerPool(WorkerMode mode) : mode_(mode) {}
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;
  // Joins what is still running; call JoinAll first where the workers must
  // be told to stop.
  ~WorkerPool() { JoinAll(); }

  // Starts the next worker running body(): a thread, or a forked child that
  // runs in_child() (if given), then body(), then _exit(0). Throws SysError
  // ("fork", what) when the child cannot be made.
  void Start(std::function<void()> body, const std::string& what,
             std::function<void()> in_child = {});
  // Process workers: whether worker i has exited (without waiting), with its
  // wait status in *status; it is reaped then. Always false for threads.
  bool Exited(size_t i, int* status);
  // Joins every thread and waits for every child (EINTR retried).
  void JoinAll();
  size_t size() const { return mode_ == WorkerMode::kThread ? threads_.size() : children_.size(); }
  WorkerMode mode() const { return mode_; }

 private:
  WorkerMode mode_;
  std::vector<std::thread> threads_;
  std::vector<pid_t> children_;  // -1 once reaped
};

}  // namespace mntscale
