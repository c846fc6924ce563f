// A perf_event_open event with its mmap'ed ring buffer, shared by the
// cpu-clock sampler and the wait tracer. Records are handed out whole, copied
// out of the ring (a record may wrap around its end).
#pragma once

#include <linux/perf_event.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "mntscale/sys/sys.h"

namespace mntscale {

// Why a sampling event's perf_event_open failed, for its SysError:
// EACCES/EPERM "kernel.perf_event_paranoid=<its value now>: <permission>",
// EINVAL `invalid`, ENOMEM the ring over the mlock limit; "" otherwise.
inline std::string PerfOpenHint(int err, const std::string& permission,
                                const std::string& invalid) {
  if (err == EACCES || err == EPERM) {
    std::string paranoid = "?";
    TryReadFile("/proc/sys/kernel/perf_event_paranoid", &paranoid);
    while (!paranoid.empty() && paranoid.back() == '\n') paranoid.pop_back();
    return "kernel.perf_event_paranoid=" + paranoid + ": " + permission;
  }
  if (err == EINVAL) return invalid;
  if (err == ENOMEM) return "perf ring buffer over kernel.perf_event_mlock_kb";
  return "";
}

class PerfRing {
 public:
  // Opens attr on tid (any CPU) and maps 2^data_pages_log2 data pages.
  // `what` names the event in errors; `hint(errno)` explains a failed open.
  template <typename Hint>
  PerfRing(pid_t tid, perf_event_attr attr, int data_pages_log2, const std::string& what,
           Hint&& hint) {
    long fd = syscall(SYS_perf_event_open, &attr, tid, -1, -1, PERF_FLAG_FD_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      throw SysError("perf_event_open", what + ", tid " + std::to_string(tid), err, hint(err));
    }
    fd_ = Fd(static_cast<int>(fd));
    page_ = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    data_size_ = page_ << data_pages_log2;
    map_size_ = page_ + data_size_;
    void* m = mmap(nullptr, map_size_, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
    if (m == MAP_FAILED) {
      int err = errno;
      throw SysError("mmap", "perf ring, " + what + ", tid " + std::to_string(tid), err,
                     "perf ring buffer over kernel.perf_event_mlock_kb");
    }
    base_ = static_cast<char*>(m);
  }
  PerfRing(const PerfRing&) = delete;
  PerfRing& operator=(const PerfRing&) = delete;
  ~PerfRing() {
    if (base_) munmap(base_, map_size_);
  }

  int fd() const { return fd_.get(); }
  void Enable(bool on) { ioctl(fd_.get(), on ? PERF_EVENT_IOC_ENABLE : PERF_EVENT_IOC_DISABLE, 0); }

  // Calls on_record(header, body, end) for each whole record, then frees
  // the ring. body points past the header; end is one past the record.
  template <typename F>
  void Drain(F&& on_record) {
    auto* meta = reinterpret_cast<perf_event_mmap_page*>(base_);
    const char* data = base_ + page_;
    uint64_t head = __atomic_load_n(&meta->data_head, __ATOMIC_ACQUIRE);
    uint64_t tail = meta->data_tail;
    while (tail < head) {
      perf_event_header hdr;
      Copy(data, tail, &hdr, sizeof(hdr));
      if (hdr.size < sizeof(hdr) || tail + hdr.size > head) break;
      rec_.resize(hdr.size);
      Copy(data, tail, rec_.data(), hdr.size);
      on_record(hdr, rec_.data() + sizeof(hdr), rec_.data() + hdr.size);
      tail += hdr.size;
    }
    __atomic_store_n(&meta->data_tail, head, __ATOMIC_RELEASE);
  }

 private:
  void Copy(const char* data, uint64_t pos, void* out, size_t n) const {
    size_t off = pos & (data_size_ - 1);
    size_t first = std::min(n, data_size_ - off);
    memcpy(out, data + off, first);
    if (first < n) memcpy(static_cast<char*>(out) + first, data, n - first);
  }

  Fd fd_;
  char* base_ = nullptr;
  size_t page_ = 0, data_size_ = 0, map_size_ = 0;
  std::vector<char> rec_;
};

}  // namespace mntscale
