#!/usr/bin/env bash
# Builds the static `palisade` binary, proves it is static, and builds the container image
# from deploy/images/Dockerfile with the first container tool found (docker, podman, buildah;
# or CONTAINER_TOOL).
#
#   deploy/images/build.sh                    # image palisade:VERSION
#   IMAGE=registry.example.com/palisade:1.0 deploy/images/build.sh
#   deploy/images/build.sh --binary-only      # stop after the checks (no container tool needed)
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
target=x86_64-unknown-linux-gnu
target_dir="${CARGO_TARGET_DIR:-$here/target}"
binary="$target_dir/$target/release/palisade"
context="$target_dir/image-context"
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
image="${IMAGE:-palisade:$version}"
binary_only=false
[ "${1:-}" = "--binary-only" ] && binary_only=true

fail() { echo "images: $*" >&2; exit 1; }

# glibc linked in statically; the C libraries the crates use (zlib, zstd) statically too.
echo "images: building the static binary ($target)"
RUSTFLAGS="-C target-feature=+crt-static" PKG_CONFIG_ALL_STATIC=1 LIBZ_SYS_STATIC=1 \
  cargo build --release --locked -p palisade --target "$target"

# The checks: the ELF says static, the dynamic loader refuses it, and it runs with nothing
# around it (no libc, no /etc, no /proc).
file_report=$(file -L "$binary")
case "$file_report" in
  *"statically linked"* | *"static-pie linked"*) ;;
  *) fail "not static: $file_report" ;;
esac
# glibc's ldd answers "statically linked" (static-pie) or "not a dynamic executable".
ldd_report=$(ldd "$binary" 2>&1 || true)
case "$ldd_report" in
  *"statically linked"* | *"not a dynamic executable"*) ;;
  *) fail "ldd lists shared libraries for $binary: $(tr '\n' ' ' <<<"$ldd_report")" ;;
esac
empty_root=$(mktemp -d)
trap 'rm -rf "$empty_root"' EXIT
cp "$binary" "$empty_root/palisade"
if [ "$(id -u)" -eq 0 ]; then
  chroot_run=(chroot "$empty_root" /palisade --version)
else
  chroot_run=(unshare --user --map-root-user chroot "$empty_root" /palisade --version)
fi
reported=$("${chroot_run[@]}") || fail "the binary does not run in an empty root"
case "$reported" in
  "palisade $version") ;;
  *) fail "in an empty root the binary says \"$reported\", expected \"palisade $version\"" ;;
esac
echo "images: $binary is static ($(du -h "$binary" | cut -f1)) and runs in an empty root: $reported"
$binary_only && exit 0

# The build context: the binary, the CA bundle, and the directories the image needs empty.
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[ -f "$ca_bundle" ] || fail "$ca_bundle is missing (apt-get install ca-certificates)"
rm -rf "$context"
mkdir -p "$context/rootfs/tmp" "$context/rootfs/var/lib/palisade"
chmod 1777 "$context/rootfs/tmp"
cp "$binary" "$context/palisade"
cp "$ca_bundle" "$context/ca-certificates.crt"

tool="${CONTAINER_TOOL:-}"
if [ -z "$tool" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then tool=docker
  elif command -v podman >/dev/null; then tool=podman
  elif command -v buildah >/dev/null; then tool=buildah
  else fail "no container tool: start a docker daemon, or install podman or buildah (apt-get install buildah); the context is ready in $context"
  fi
fi
case "$tool" in
  buildah) build=(buildah bud) ;;
  *) build=("$tool" build) ;;
esac
"${build[@]}" --build-arg "VERSION=$version" -f deploy/images/Dockerfile -t "$image" "$context"
echo "images: built $image with $tool"
