// Profile JSON: the parser and its range checks. Any input must end in a
// Profile or a UsageError, never a crash, a sanitizer report or a hang.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "mntscale/model/profile.h"
#include "mntscale/sys/sys.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, false, true);
  if (j.is_discarded()) return 0;
  try {
    mntscale::Profile p = mntscale::Profile::FromJson(j, "fuzz");
    (void)p.ToJson().dump();
  } catch (const mntscale::UsageError&) {
  }
  return 0;
}
