// The command line's list values, as the harness parses them: the input's
// lines are a placement, an axis value list (expanded into points, each value
// checked by its typed axis) and an --events list (resolved through libpfm4).
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "mntscale/observe/counters.h"
#include "mntscale/suite/scenario.h"
#include "mntscale/sys/sys.h"
#include "mntscale/run/topology.h"

namespace {

const mntscale::ScenarioInfo& FuzzScenario() {
  static const mntscale::ScenarioInfo s{
      .name = "fuzz",
      .mechanism = "",
      .expect = "",
      .axes = {mntscale::axes::Layers("10"), mntscale::axes::Containers("1"),
               mntscale::axes::Workers("1"), mntscale::axes::Op("stat"),
               mntscale::EnumAxis("method", "a", {"a", "b"}).ValueAlias("old", "a"),
               mntscale::BoolAxis("churn", "0"),
               mntscale::DurationAxis("period", "1s", 1, 60000),
               mntscale::IntAxis("peers", "1", 1, 100000).Alias("N")},
      .run = nullptr};
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  std::string placement, axis, list, events;
  std::getline(in, placement);
  std::getline(in, axis);
  std::getline(in, list);
  std::getline(in, events);
  try {
    mntscale::PlacementSpec::Parse(placement).ToString();
  } catch (const mntscale::UsageError&) {
  }
  if (list.size() < 512) {  // the cartesian product is the input's own size
    try {
      for (const mntscale::Point& p : mntscale::ExpandPoints(FuzzScenario(), {{axis, list}})) {
        (void)p.Params().dump();
        (void)p.Name("fuzz");
      }
    } catch (const mntscale::UsageError&) {
    }
  }
  std::vector<std::string> names;
  std::stringstream es(events);
  for (std::string n; std::getline(es, n, ',');) names.push_back(n);
  try {
    mntscale::ValidateEvents(names);
  } catch (const mntscale::UsageError&) {
  }
  return 0;
}
