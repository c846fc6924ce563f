// JSON data files that ship in the source tree (profiles/, presets/).
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mntscale {

// `spec` is a path, or a NAME (with or without .json) in the source tree's
// `dir` (profiles, presets). Returns the parsed JSON and sets *path to the
// file it came from. A file that cannot be read, or is not valid JSON, is a
// UsageError naming `kind` ("profile", "preset") and the file.
nlohmann::json LoadDataFile(const std::string& spec, const std::string& dir,
                            const std::string& kind, std::string* path);

}  // namespace mntscale
