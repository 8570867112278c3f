#!/bin/bash
# Builds zerowatt's runtime image without a container registry or daemon:
#   1. the zerowatt wheel and every dependency's wheel (pip, from the configured package index);
#   2. a Debian root file system from Debian packages (mmdebstrap), zerowatt installed into it by
#      install.sh in a chroot (no network: the wheels only);
#   3. an OCI image layout from that tarball (umoci), and an oci-archive tarball (skopeo) that
#      `podman load`, `ctr images import`, `kind load image-archive` or `skopeo copy` to a registry accept.
#
# Usage: deploy/runtime/build.sh [--tag TAG] [--out FILE] [--suite bookworm] [--mirror URL]
#                                [--work DIR] [--rootfs-tar FILE] [--wheels-only] [--dry-run]
#   --work DIR         where wheels, the root file system and the OCI layout go (default deploy/runtime/build)
#   --rootfs-tar FILE  skip steps 1-2 and package FILE as the image's root file system (tests, custom roots)
#   --wheels-only      stop after step 1 (then build deploy/runtime/Containerfile with podman/buildah)
#   --dry-run          print the commands instead of running them
# Needs: python3 with pip, mmdebstrap, umoci, skopeo (Debian packages); run as root (or use
# mmdebstrap's unshare mode with subuids).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tag=$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -1)
image=ghcr.io/zerowatt/runtime
suite=bookworm
mirror=http://deb.debian.org/debian
out=""
rootfs_tar=""
wheels_only=0
dry=0
build="$here/build"
python=${PYTHON:-python3}

while [ $# -gt 0 ]; do
  case "$1" in
    --tag) tag=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --suite) suite=$2; shift 2 ;;
    --mirror) mirror=$2; shift 2 ;;
    --rootfs-tar) rootfs_tar=$2; shift 2 ;;
    --wheels-only) wheels_only=1; shift ;;
    --dry-run) dry=1; shift ;;
    --work) build=$2; shift 2 ;;
    -h|--help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
out=${out:-$build/runtime-$tag.oci.tar}

run() {
  if [ "$dry" = 1 ]; then printf '%q ' "$@"; echo; else "$@"; fi
}

packages() {  # the non-comment lines of a list, comma-separated (mmdebstrap --include)
  grep -v '^#' "$1" | grep -v '^$' | paste -sd, -
}

if [ -z "$rootfs_tar" ]; then
  run rm -rf "$build/wheels"
  run mkdir -p "$build/wheels"
  run "$python" -m pip wheel --quiet --no-deps --wheel-dir "$build/wheels" "$root"
  run "$python" -m pip wheel --quiet --wheel-dir "$build/wheels" "$build"/wheels/zerowatt-*.whl
  run cp "$here/build-packages.txt" "$build/wheels/"
  run cp "$here/packages.txt" "$here/build-packages.txt" "$here/install.sh" "$here/Containerfile" "$build/"
  if [ "$wheels_only" = 1 ]; then
    echo "wheels in $build/wheels; now: podman build -f $build/Containerfile -t $image:$tag $build"
    exit 0
  fi
  rootfs_tar="$build/rootfs.tar"
  run mmdebstrap --variant=apt --mode=root --format=tar \
    --include="$(packages "$here/packages.txt"),$(packages "$here/build-packages.txt")" \
    --customize-hook='mkdir -p "$1/tmp/wheels"' \
    --customize-hook="copy-in $build/wheels/. /tmp/wheels" \
    --customize-hook="copy-in $here/install.sh /tmp" \
    --customize-hook='chroot "$1" sh /tmp/install.sh /tmp/wheels' \
    --customize-hook='rm -f "$1/tmp/install.sh"' \
    "$suite" "$rootfs_tar" "$mirror"
fi

layout="$build/oci"
run rm -rf "$layout"
run umoci init --layout "$layout"
run umoci new --image "$layout:$tag"
run umoci raw add-layer --image "$layout:$tag" "$rootfs_tar"
run umoci config --image "$layout:$tag" \
  --config.entrypoint zerowatt \
  --config.user 65532:65532 \
  --config.workingdir /app \
  --config.env PATH=/opt/zerowatt/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --config.env ZEROWATT_CACHE_DIR=/var/cache/zerowatt \
  --config.env PYTHONDONTWRITEBYTECODE=1 \
  --config.label org.opencontainers.image.title=zerowatt-runtime \
  --config.label org.opencontainers.image.version="$tag" \
  --config.label org.opencontainers.image.licenses=Apache-2.0 \
  --architecture amd64 --os linux
run umoci gc --layout "$layout"
run rm -f "$out"
run skopeo copy --quiet "oci:$layout:$tag" "oci-archive:$out:$image:$tag"
echo "built $image:$tag → $out"
