/* Copies /proc/self/mountinfo to stdout. Linked statically, it is the one
 * file `mntscale profile capture` puts in a container's rootfs: the process
 * the runtime starts, so the mount table is read from inside.
 * MNTSCALE_HOLD=1 in its environment keeps it running afterwards (the SIGKILL
 * test kills the harness while a container is alive). */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(void) {
  char buf[65536];
  int fd = open("/proc/self/mountinfo", O_RDONLY);
  if (fd < 0) return 1;
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) {
    if (write(1, buf, (size_t)n) != n) return 1;
  }
  if (getenv("MNTSCALE_HOLD")) {
    struct timespec ts = {3600, 0};
    for (;;) nanosleep(&ts, NULL);
  }
  return n < 0 ? 1 : 0;
}
