// hwloc XML files, through the same path --topology FILE takes: the data-file
// checks, the PU cap, hwloc's XML loader, the topology builder.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <string>

#include "mntscale/sys/sys.h"
#include "mntscale/run/topology.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path =
      std::string(getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") + "/mntscale-fuzz-topo." +
      std::to_string(getpid()) + ".xml";
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 0;
  bool ok = write(fd, data, size) == static_cast<ssize_t>(size);
  close(fd);
  if (ok) {
    try {
      mntscale::Topology t = mntscale::Topology::Xml(path);
      mntscale::PlanPlacement(t, mntscale::PlacementSpec::Parse("spread,share"), 2);
    } catch (const mntscale::UsageError&) {
    } catch (const mntscale::SysError&) {
    }
  }
  unlink(path.c_str());
  return 0;
}
