#!/usr/bin/env bash
# Install everything the project needs on Debian 12 (bookworm): host packages,
# a virtualenv in .venv, and this package (editable) with its test extras.
# Idempotent: packages already installed are not touched, an existing .venv is reused.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  # kernel build
  build-essential flex bison bc libelf-dev libssl-dev dwarves cpio ccache xz-utils rsync git
  # guest: QEMU, sshd (runs inside the guest from the host's /), ip (the guest's address)
  qemu-system-x86 openssh-server busybox-static iproute2 kmod
  # scratch disks
  e2fsprogs util-linux
  # the soak suite's load (the guest runs the host's /usr)
  stress-ng
  # the kernel's mm selftests (--suite mm): migration, ksm_tests link libnuma;
  # mlock-random-test, memfd_secret link libcap
  libnuma-dev libcap-dev
  # Python
  python3 python3-venv python3-pip
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "install: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "install: creating .venv"
  "$PY" -m venv .venv
fi
echo "install: pip install -e '.[test]'"
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if ! .venv/bin/python -m pip install -q -e '.[test]' >.venv/pip-install.log 2>&1; then
  cat .venv/pip-install.log >&2
  echo "install: pip install failed (log: .venv/pip-install.log)" >&2
  exit 1
fi
echo "install: done ($(.venv/bin/vng --version 2>/dev/null || echo 'vng missing'))"
