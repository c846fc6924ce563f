// Preset JSON: fields, scenario lists and axis values. Any input must end in
// a Preset or a UsageError.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "mntscale/suite/preset.h"
#include "mntscale/sys/sys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false, true);
  if (j.is_discarded()) return 0;
  try {
    mntscale::Preset p = mntscale::Preset::FromJson(j, "fuzz");
    (void)p.ToJson().dump();
  } catch (const mntscale::UsageError&) {
  }
  return 0;
}
