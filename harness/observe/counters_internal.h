// Pieces of the counter observer that are pure logic, exposed for unit tests.
#pragma once

#include <cstdint>
#include <optional>

namespace mntscale::counters {

// One read(2) of a counter opened with TOTAL_TIME_ENABLED|TOTAL_TIME_RUNNING
// (or the difference of two such reads).
struct Reading {
  uint64_t value = 0;
  uint64_t enabled = 0;  // ns the event was enabled
  uint64_t running = 0;  // ns it actually sat on a hardware counter
};

struct Scaled {
  double value = 0;    // estimated full-time count
  double scaling = 1;  // running / enabled: 1.0 means no multiplexing
};

// Scales a count for multiplexing: value * enabled / running. A task-bound
// event whose thread never ran has enabled == running == 0 and a true count
// of 0. An event that was enabled but never running has no estimate at all:
// returns nullopt, never a zero.
std::optional<Scaled> ScaleCount(const Reading& delta);

// Sums scaled counts of several counters (workers, or :u and :k halves).
// scaling is the aggregate running / enabled. nullopt if any part is unknown.
class ScaledSum {
 public:
  void Add(const Reading& delta);
  std::optional<double> value() const;
  double scaling() const;

 private:
  double value_ = 0;
  uint64_t enabled_ = 0, running_ = 0;
  bool unknown_ = false;
};

// delta = later - earlier, per field.
Reading Delta(const Reading& earlier, const Reading& later);

}  // namespace mntscale::counters
