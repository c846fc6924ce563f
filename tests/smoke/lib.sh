# Shared by the smoke tests: skip (77) unless root, a temp dir, and a JSON
# checker on Debian's python3 (never a pyenv one without the packages).
PY=/usr/bin/python3
require_root() {
  if [ "$(id -u)" -ne 0 ]; then echo "SKIP: needs root for real mounts"; exit 77; fi
}
TMP=$(mktemp -d /tmp/mntscale-smoke.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
