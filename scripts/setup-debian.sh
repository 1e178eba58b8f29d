#!/usr/bin/env bash
# Installs what building and testing Palisade needs on a Debian or Ubuntu machine, if missing.
# Idempotent and quick when everything is already there. Run as root (or with sudo available).
#
#   scripts/setup-debian.sh          # build and run needs
#   scripts/setup-debian.sh --test   # also what the test suite needs
set -euo pipefail

want_test=false
[ "${1:-}" = "--test" ] && want_test=true

here=$(cd "$(dirname "$0")/.." && pwd)

# System packages: build needs, then test needs.
# protoc for the contract; zlib and zstd for image layers; clang, llvm, libbpf and bpftool for the
# node agent's eBPF programs.
packages=(protobuf-compiler libprotobuf-dev pkg-config curl ca-certificates zlib1g-dev libzstd-dev
  clang llvm libbpf-dev bpftool)
if $want_test; then
  # Python clients and format validators; real images (a Debian rootfs, OCI tools, a registry,
  # containerd and runc); busybox for the agent's containers; Debian's Python packages whose
  # egg-info metadata the scanner's tests read; iproute2 and util-linux (nsenter) for the
  # fleet test's network namespaces; npm for scripts/install-deploy-tools.sh (helm); Chromium
  # and its WebDriver server (/usr/bin/chromium, /usr/bin/chromedriver) for the console's
  # browser tests.
  packages+=(python3 python3-venv debootstrap skopeo umoci docker-registry apache2-utils
    containerd runc openssl binutils busybox-static
    python3-pip python3-six python3-pygments python3-toml iproute2 util-linux
    chromium chromium-driver)
fi

missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
# npm may come with a Node.js installed outside Debian's packages; only install Debian's when
# there is none
if $want_test && ! command -v npm >/dev/null; then
  missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo_cmd=(sudo)
  fi
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "setup: cargo not found: install a Rust toolchain >= 1.95 (rustup)" >&2; exit 1; }

if $want_test; then
  # Clients the project did not write, for the interoperability tests, in a private venv.
  venv="$here/target/e2e-venv"
  if [ ! -x "$venv/bin/python3" ] || ! "$venv/bin/python3" -c "import grpc, grpc_health, grpc_reflection, grpc_tools, cyclonedx, spdx_tools" 2>/dev/null; then
    echo "setup: installing Python test clients into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$here/e2e/python/requirements.txt"
  fi
fi
echo "setup: ready"
