"""Kernel matrix: run mntscale presets on other kernels in QEMU guests (issue 6).

Entry point: scripts/kernel-matrix. Modules:
  kernels    resolve a kernel argument (Debian package, image path, `native`)
  initramfs  the guest image: mntscale + its libraries, busybox, modules, /init
  accel      the timed KVM-vs-TCG probe and its decision rule
  topology   vCPU / memory / NUMA layout -> qemu options
  vm         booting a guest with a timeout, owning every qemu process
  presets    what `mntscale run` does inside the guest
  cli        the matrix and the A/B drivers
"""
