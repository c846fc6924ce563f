// JSON data files that ship in the source tree (profiles/, presets/), and the
// rules every data file read by the harness obeys (topologies too).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace mntscale {

// A data file (profile, preset, topology) is a regular file of at most this
// many bytes. The largest one shipped is a few KiB; an hwloc XML export of a
// 2-socket 384-PU machine is about 300 KiB.
inline constexpr size_t kMaxDataFileBytes = 4 << 20;

// Reads a data file, refusing anything that is not a regular file (a device
// such as /dev/zero, a FIFO, a directory) or that is larger than
// kMaxDataFileBytes, without reading past the cap. Throws UsageError naming
// `kind` and the path.
std::string ReadDataFile(const std::string& path, const std::string& kind);

// `spec` is a path, or a NAME (with or without .json) in the source tree's
// `dir` (profiles, presets). Returns the parsed JSON and sets *path to the
// file it came from. A file that cannot be read, or is not valid JSON, is a
// UsageError naming `kind` ("profile", "preset") and the file.
nlohmann::json LoadDataFile(const std::string& spec, const std::string& dir,
                            const std::string& kind, std::string* path);

// A JSON integer that fits an int, else UsageError "<where> must be ..., got
// <the value as written>" (never the wrapped value).
int JsonInt(const nlohmann::json& v, const std::string& where);

}  // namespace mntscale
