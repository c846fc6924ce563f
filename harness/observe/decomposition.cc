#include "mntscale/observe/decomposition.h"

#include <cmath>

#include "attribution_internal.h"
#include "waits_internal.h"

namespace mntscale {

bool WithinTolerance(double residual_s, double wall_s, int tasks, double switches) {
  return std::fabs(residual_s) <= kDecompositionTolerance * wall_s +
                                      kDecompositionToleranceAbsS * tasks +
                                      kDecompositionTolerancePerSwitchS * switches;
}

DecompositionInput DecompositionInputFrom(const nlohmann::json& entry, const WaitTimes& waits) {
  DecompositionInput in;
  in.waits = &waits;
  const size_t n = waits.tasks.size();
  in.roles.assign(n, "worker");
  const bool runner = entry.contains("workers") && entry["workers"].is_array() &&
                      entry["workers"].size() == n;
  if (runner) {
    std::vector<RunnerClocks> clocks;
    for (size_t i = 0; i < n; ++i) {
      const auto& wk = entry["workers"][i];
      const auto& r = wk.value("role", nlohmann::json());
      if (r.is_string() && !r.get<std::string>().empty()) in.roles[i] = r.get<std::string>();
      auto num = [&](const char* k) {
        return wk.contains(k) && wk[k].is_number() ? wk[k].get<double>() : 0.0;
      };
      clocks.push_back({num("cpu_s"), num("user_s"), num("sys_s")});
    }
    in.runner = std::move(clocks);
  }
  if (entry.contains("attribution") && entry["attribution"].contains("worker_bucket_samples") &&
      entry["attribution"]["worker_bucket_samples"].size() == n) {
    std::vector<std::map<std::string, uint64_t>> samples;
    for (const auto& w : entry["attribution"]["worker_bucket_samples"]) {
      std::map<std::string, uint64_t> m;
      for (auto& [b, c] : w.items()) m[b] = c.get<uint64_t>();
      samples.push_back(std::move(m));
    }
    in.bucket_samples = std::move(samples);
  } else if (entry.contains("attribution") && entry["attribution"].contains("unsupported")) {
    in.kernel_split_unsupported = entry["attribution"]["unsupported"].get<std::string>();
  } else {
    in.kernel_split_unsupported = "cpu-clock sampling not enabled";
  }
  return in;
}

nlohmann::json Decompose(const DecompositionInput& in) {
  const WaitTimes& wt = *in.waits;
  nlohmann::json d;
  d["tolerance"] = {{"fraction_of_wall", kDecompositionTolerance},
                    {"absolute_s", kDecompositionToleranceAbsS},
                    {"per_switch_s", kDecompositionTolerancePerSwitchS}};
  if (!wt.offcpu_unsupported.empty()) {
    d["unsupported"] = "off-CPU time: " + wt.offcpu_unsupported;
    return d;
  }
  const bool sampled = in.bucket_samples.has_value();
  d["kernel_split"] = sampled ? "samples" : "unsupported: " + in.kernel_split_unsupported;
  const double wall = wt.wall_s;
  nlohmann::json workers = nlohmann::json::array();
  std::map<std::string, nlohmann::json> role_sum;
  for (size_t i = 0; i < wt.tasks.size(); ++i) {
    const TracedTask& task = wt.tasks[i];
    double runner_cpu = -1, user_frac = -1;
    if (in.runner) {
      const RunnerClocks& c = (*in.runner)[i];
      runner_cpu = c.cpu_s;
      // No runner clocks (an observed actor, not a worker): the samples split it.
      user_frac = c.user_s + c.sys_s > 0 ? c.user_s / (c.user_s + c.sys_s) : -1;
    }
    uint64_t us = 0, ks = 0;
    if (sampled) {
      for (const auto& [b, n] : (*in.bucket_samples)[i]) (b == attribution::kUserBucket ? us : ks) += n;
      if (user_frac < 0 && us + ks) user_frac = static_cast<double>(us) / (us + ks);
    }
    // On-CPU time over exactly the traced window: the scheduler's own
    // sum_exec_runtime. The runner's thread clocks cover a slightly longer
    // span, so they come second and otherwise only give the user/kernel ratio.
    const char* source;
    double on_cpu;
    if (task.sched_on_cpu_s) {
      on_cpu = *task.sched_on_cpu_s;
      source = "schedstat";
    } else if (in.runner) {
      on_cpu = runner_cpu;
      source = "runner thread clock";
    } else {
      on_cpu = task.traced_on_cpu_s;
      source = "switch records";
    }
    const bool split = user_frac >= 0;
    const double user = split ? on_cpu * user_frac : 0, kernel = on_cpu - user;
    nlohmann::json kb = nlohmann::json::object();
    if (sampled && split) {
      for (const auto& [b, n] : (*in.bucket_samples)[i]) {
        if (b != attribution::kUserBucket && ks) kb[b] = kernel * n / ks;
      }
      if (!ks && kernel > 0) kb["unattributed"] = kernel;
    } else if (split) {
      kb["unattributed"] = kernel;
    }
    nlohmann::json blocked = nlohmann::json::object();
    double preempted = 0, unknown = 0, blocked_sum = 0;
    for (const auto& [label, s] : task.off_cpu_s) {
      if (label == waits::kPreempted) {
        preempted += s;
      } else if (label == waits::kOffUnknown) {
        unknown += s;
      } else {
        blocked[label] = s;
        blocked_sum += s;
      }
    }
    const std::string& role = in.roles[i];
    nlohmann::json wj;
    wj["worker"] = i;
    wj["tid"] = task.tid;
    wj["role"] = role;
    wj["wall_s"] = wall;
    wj["on_cpu_source"] = source;
    if (split) {
      wj["user_s"] = user;
      wj["kernel_s"] = kb;
    } else {
      wj["on_cpu_s"] = on_cpu;  // not split: no runner clocks, no samples
    }
    // Cross-checks of the on-CPU figure.
    wj["traced_on_cpu_s"] = task.traced_on_cpu_s;
    if (in.runner) wj["runner_cpu_s"] = runner_cpu;
    wj["blocked_s"] = blocked;
    wj["preempted_s"] = preempted;
    wj["off_cpu_unknown_s"] = unknown;
    const double residual = wall - (user + kernel + blocked_sum + preempted + unknown);
    wj["residual_s"] = residual;
    wj["switches_out"] = task.switches_out;
    wj["within_tolerance"] = WithinTolerance(residual, wall, 1, task.switches_out);
    workers.push_back(wj);
    nlohmann::json& r = role_sum[role];
    if (r.is_null()) r = nlohmann::json::object();
    auto add = [](nlohmann::json& obj, const std::string& k, double v) {
      obj[k] = obj.value(k, 0.0) + v;
    };
    add(r, "wall_s", wall);
    add(r, "user_s", user);
    add(r, "preempted_s", preempted);
    add(r, "off_cpu_unknown_s", unknown);
    add(r, "residual_s", residual);
    if (!r.contains("kernel_s")) r["kernel_s"] = nlohmann::json::object();
    if (!r.contains("blocked_s")) r["blocked_s"] = nlohmann::json::object();
    for (auto& [b, v] : kb.items()) add(r["kernel_s"], b, v.get<double>());
    if (!split) add(r["kernel_s"], "unattributed", on_cpu);
    for (auto& [b, v] : blocked.items()) add(r["blocked_s"], b, v.get<double>());
    r["workers"] = r.value("workers", 0) + 1;
    r["switches_out"] = r.value("switches_out", uint64_t{0}) + task.switches_out;
    r["on_cpu_source"] = source;
  }
  nlohmann::json rj = nlohmann::json::object();
  for (auto& [role, r] : role_sum) {
    const double w = r["wall_s"].get<double>();
    r["within_tolerance"] = WithinTolerance(r["residual_s"].get<double>(), w,
                                            r["workers"].get<int>(), r["switches_out"].get<double>());
    double mount_on = 0, mount_off = 0;
    for (auto& [b, v] : r["kernel_s"].items()) {
      if (wt.is_mount_bucket && wt.is_mount_bucket(b)) mount_on += v.get<double>();
    }
    for (auto& [b, v] : r["blocked_s"].items()) {
      if (wt.is_mount_bucket && wt.is_mount_bucket(b)) mount_off += v.get<double>();
    }
    r["mount_off_cpu_share"] = w > 0 ? mount_off / w : 0.0;
    if (sampled && w > 0) {
      r["mount_pressure_share"] = (mount_on + mount_off) / w;
    } else {
      r["mount_pressure_share"] = nullptr;  // on-CPU part unknown, not zero
    }
    rj[role] = r;
  }
  d["roles"] = rj;
  d["workers"] = workers;
  return d;
}

}  // namespace mntscale
