#include "mntscale/sys/datafile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <climits>
#include <cstring>

#include "mntscale/sys/sys.h"

namespace mntscale {

std::string ReadDataFile(const std::string& path, const std::string& kind) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer.
  Fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (fd.get() < 0) {
    throw UsageError("cannot read " + kind + " '" + path + "': " + ErrnoName(errno) + " (" +
                     strerror(errno) + ")");
  }
  struct stat st;
  if (fstat(fd.get(), &st) != 0) {
    throw UsageError("cannot read " + kind + " '" + path + "': fstat: " + ErrnoName(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    const char* what = NonRegularKind(st.st_mode);
    throw UsageError(kind + " '" + path + "' is " + (what ? what : "not a regular file") +
                     "; a data file must be a regular file");
  }
  const std::string cap = std::to_string(kMaxDataFileBytes) + " bytes";
  if (static_cast<size_t>(st.st_size) > kMaxDataFileBytes) {
    throw UsageError(kind + " '" + path + "' is " + std::to_string(st.st_size) +
                     " bytes; data files are capped at " + cap);
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw UsageError("cannot read " + kind + " '" + path + "': " + ErrnoName(errno));
    }
    if (n == 0) break;
    text.append(buf, static_cast<size_t>(n));
    // A file that grows while read (or a procfs-like file with size 0).
    if (text.size() > kMaxDataFileBytes) {
      throw UsageError(kind + " '" + path + "' is larger than the data file cap of " + cap);
    }
  }
  return text;
}

nlohmann::json LoadDataFile(const std::string& spec, const std::string& dir,
                            const std::string& kind, std::string* path) {
  *path = spec;
  struct stat st;
  if (!spec.empty() && stat(path->c_str(), &st) != 0) {
    const std::string base = std::string(MNTSCALE_SOURCE_DIR) + "/" + dir + "/" + spec;
    for (const std::string& cand : {base, base + ".json"}) {
      if (stat(cand.c_str(), &st) == 0) {
        *path = cand;
        break;
      }
    }
  }
  std::string text;
  try {
    text = ReadDataFile(*path, kind);
  } catch (const UsageError& e) {
    if (stat(path->c_str(), &st) == 0) throw;
    throw UsageError(std::string(e.what()) + " (looked for it as a path and in " + dir + "/)");
  }
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false, true);
  if (j.is_discarded()) throw UsageError(*path + ": not valid JSON");
  return j;
}

int JsonInt(const nlohmann::json& v, const std::string& where) {
  bool fits = (v.is_number_unsigned() && v.get<uint64_t>() <= INT_MAX) ||
              (v.is_number_integer() && !v.is_number_unsigned() &&
               v.get<int64_t>() >= INT_MIN && v.get<int64_t>() <= INT_MAX);
  if (!fits) {
    throw UsageError(where + (v.is_number_integer() ? " is out of range for a whole number, got "
                                                    : " must be a whole number, got ") +
                     v.dump());
  }
  return v.get<int>();
}

}  // namespace mntscale
