#include "mntscale/run/worker_pool.h"

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>

#include "mntscale/sys/sys.h"

namespace mntscale {

void WorkerPool::Start(std::function<void()> body, const std::string& what,
                       std::function<void()> in_child) {
  if (mode_ == WorkerMode::kThread) {
    threads_.emplace_back(std::move(body));
    return;
  }
  const pid_t pid = fork();
  if (pid < 0) throw SysError("fork", what, errno);
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    signal(SIGINT, SIG_IGN);
    if (in_child) in_child();
    body();
    _exit(0);
  }
  children_.push_back(pid);
}

bool WorkerPool::Exited(size_t i, int* status) {
  if (mode_ == WorkerMode::kThread || i >= children_.size() || children_[i] <= 0) return false;
  int st = 0;
  if (waitpid(children_[i], &st, WNOHANG) != children_[i]) return false;
  children_[i] = -1;
  if (status) *status = st;
  return true;
}

void WorkerPool::JoinAll() {
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
  for (pid_t p : children_) {
    if (p <= 0) continue;
    int st;
    while (waitpid(p, &st, 0) < 0 && errno == EINTR) {
    }
  }
  children_.clear();
}

}  // namespace mntscale
