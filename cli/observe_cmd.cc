#include "observe_cmd.h"

#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <memory>

#include "mntscale/live/observe.h"
#include "mntscale/suite/results.h"
#include "mntscale/suite/session.h"
#include "mntscale/sys/sys.h"
#include "mntscale/run/topology.h"

namespace mntscale {
namespace {

constexpr const char* kHelp =
    "Read the live host's mount pressure, changing nothing (issue 25; docs/observe.md). Each "
    "interval: every mount namespace (through each process's /proc/PID/ns/mnt and each open fd "
    "on one), its mounts (count, overlay mounts and their layers, idmapped mounts) by "
    "listmount/statmount where the kernel has them (6.11+) or mountinfo, mount attach and "
    "detach per second from fanotify mount events (6.15+) or from the difference between two "
    "censuses, and user, system and steal CPU from /proc/stat. With --capacity, the host's "
    "containers are related to a measured capacity of this kernel, CPU and container size. "
    "Output: a summary on stdout, --json and --prom files (OpenMetrics text for node_exporter's "
    "textfile collector), each rewritten atomically every interval. Needs root "
    "(CAP_SYS_ADMIN and CAP_SYS_PTRACE).";

double Mono() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

// Sleeps until the monotonic time `until`, waking early on an interrupt.
void SleepUntil(double until) {
  while (!InterruptFlag().load()) {
    double left = until - Mono();
    if (left <= 0) return;
    double step = std::min(left, 0.1);
    timespec ts{static_cast<time_t>(step), static_cast<long>((step - std::floor(step)) * 1e9)};
    nanosleep(&ts, nullptr);
  }
}

}  // namespace

ObserveCommand::ObserveCommand(CLI::App* app) {
  cmd_ = app->add_subcommand("observe", kHelp);
  cmd_->add_option("--interval", interval_s_, "Seconds between censuses")
      ->capture_default_str()
      ->check(CLI::Range(0.05, 86400.0));
  cmd_->add_option("--count", count_,
                   "Intervals to observe; 0 runs until SIGINT/SIGTERM (default 1, or 0 with "
                   "--watch)")
      ->check(CLI::Range(0, 100000000));
  cmd_->add_option("--source", source_,
                   "How mount tables are read: auto | listmount | mountinfo")
      ->capture_default_str();
  cmd_->add_option("--ops", ops_,
                   "Mount attach/detach rates from: diff (mount ids at one census and not the "
                   "next; misses a mount that comes and goes within an interval) | fanotify "
                   "(every attach and detach, Linux 6.15+; each mount then queues an event, which "
                   "cost a churn of 17,000 mount writes/s 4% [1-7%] here: docs/observe.md) | auto "
                   "(fanotify where the kernel has it, else diff)")
      ->capture_default_str();
  cmd_->add_option("--json", json_, "JSON file, rewritten atomically every interval");
  cmd_->add_option("--prom", prom_,
                   "OpenMetrics text file for node_exporter's textfile collector (name it "
                   "*.prom), rewritten atomically every interval");
  cmd_->add_option("--capacity", capacity_,
                   "Capacity result files (mntscale capacity --out) to relate the host to")
      ->expected(1, -1);
  cmd_->add_option("--top", top_, "Largest namespaces to list in the summary")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  cmd_->add_flag("--watch", watch_, "Redraw the summary every interval (a terminal screen)");
  cmd_->add_flag("--quiet", quiet_, "No summary on stdout");
  cmd_->add_flag("--no-fd-scan", no_fd_scan_,
                 "Find namespaces through processes only, not through open fds on them");
}

int ObserveCommand::Run(int, char**) {
  try {
    CensusSource source = ParseCensusSource(source_);
    if (ops_ != "auto" && ops_ != "fanotify" && ops_ != "diff") {
      throw UsageError("--ops must be auto, fanotify or diff, not '" + ops_ + "'");
    }
    std::vector<CapacityRef> refs;
    for (const std::string& f : capacity_) refs.push_back(LoadCapacityRef(f));
    for (const std::string* out : {&json_, &prom_}) {
      if (out->empty()) continue;
      std::string dir = out->find('/') == std::string::npos ? "." : out->substr(0, out->rfind('/'));
      if (dir.empty()) dir = "/";
      if (access(dir.c_str(), W_OK) != 0) {
        throw UsageError("cannot write '" + *out + "': its directory " + dir + ": " +
                         ErrnoName(errno));
      }
    }
    int count = count_ >= 0 ? count_ : (watch_ ? 0 : 1);

    CensusReader reader(source, !no_fd_scan_);
    std::unique_ptr<MountEventCounter> events;
    std::string ops_why;
    if (ops_ != "diff") {  // fanotify, or auto
      ops_why = MountEventCounter::Unavailable();
      if (ops_ == "fanotify" && !ops_why.empty()) throw UsageError("--ops fanotify: " + ops_why);
      if (ops_why.empty()) events = std::make_unique<MountEventCounter>();
    }
    InstallInterruptHandler();

    ObserveSample base;
    base.kernel = KernelRelease();
    const char* m = getenv("MNTSCALE_MACHINE");
    char host[256] = "";
    gethostname(host, sizeof(host) - 1);
    base.machine = m ? m : host;
    base.cpu_model = Topology::Host().summary().cpu_model;
    base.cpus = static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));

    auto emit = [&](const ObserveSample& s) {
      if (!json_.empty()) WriteFileAtomic(json_, ObserveJson(s, refs).dump(2) + "\n");
      if (!prom_.empty()) WriteFileAtomic(prom_, ObserveOpenMetrics(s, refs));
      if (quiet_) return;
      std::string text = ObserveText(s, refs, top_);
      if (watch_) text = "\033[H\033[2J" + text;  // home, clear
      fputs(text.c_str(), stdout);
      if (!watch_) fputs("\n", stdout);
      fflush(stdout);
    };

    ObserveCycle cycle(&reader, std::move(events), ops_why, base);
    const double t0 = Mono();
    for (int i = 1; count == 0 || i <= count; ++i) {
      SleepUntil(t0 + i * interval_s_);
      if (InterruptFlag().load()) break;
      emit(cycle.Step());
    }
    return 0;
  } catch (const UsageError& e) {
    fprintf(stderr, "mntscale observe: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fprintf(stderr, "mntscale observe: %s\n", e.what());
    return 1;
  }
}

std::unique_ptr<Command> MakeObserveCommand(CLI::App* root) {
  return std::make_unique<ObserveCommand>(root);
}

}  // namespace mntscale
