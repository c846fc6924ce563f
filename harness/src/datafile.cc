#include "mntscale/datafile.h"

#include <sys/stat.h>

#include "mntscale/sys.h"

namespace mntscale {

nlohmann::json LoadDataFile(const std::string& spec, const std::string& dir,
                            const std::string& kind, std::string* path) {
  *path = spec;
  struct stat st;
  if (stat(path->c_str(), &st) != 0) {
    const std::string base = std::string(MNTSCALE_SOURCE_DIR) + "/" + dir + "/" + spec;
    for (const std::string& cand : {base, base + ".json"}) {
      if (stat(cand.c_str(), &st) == 0) {
        *path = cand;
        break;
      }
    }
  }
  std::string text;
  if (!TryReadFile(*path, &text)) {
    throw UsageError("cannot read " + kind + " '" + spec + "': " + ErrnoName(errno) +
                     " (looked for it as a path and in " + dir + "/)");
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false, true);
  if (j.is_discarded()) throw UsageError(*path + ": not valid JSON");
  return j;
}

}  // namespace mntscale
