#!/usr/bin/env bash
# One-time (and idempotent) set-up for the tests and `npm run local`, for developers and CI alike:
#
#   npm ci           # the project's dependencies, Node.js 22 among them (node_modules/.bin/node)
#   npm run setup    # this script
#   npm test
#
# Steps, each logged as a `[setup]` line saying what it found and did:
#   1. Debian packages (POV-Ray, podman and what it needs to run the worker image, debootstrap, GDAL): as root, the
#      missing ones are installed (`apt-get update` + `apt-get install --no-install-recommends`, only when something
#      is missing); otherwise the `sudo apt-get install ...` line to run is printed and the script fails.
#   2. The AWS emulator `moto_server` on PATH (the tests start their own); fails with the pip line when missing.
#   3. Node.js >= 22: the `node` that npm scripts run (node_modules/.bin first on PATH, as `npm run` puts it).
#   4. The worker's container image (scripts/build-image.sh; needs root, skipped with a note otherwise). Its layers
#      are cached, so a second run takes seconds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# What `npm run` does, so that `bash scripts/setup.sh` checks the same Node as `npm run setup`.
export PATH="$ROOT/node_modules/.bin:$PATH"

NODE_MAJOR=22
# povray, povray-includes: the renderer the worker runs (and its standard include files).
# podman, runc, uidmap, slirp4netns, fuse-overlayfs: running the worker image (build-image.sh uses the runc runtime).
# catatonit: the init process `podman run --init` starts (ECS initProcessEnabled, emulated by `npm run local`).
# debootstrap: builds the image's Debian base without an image registry.
# gdal-bin: the GDAL tools (ogr2ogr, ...) for GeoJSON workers.
PACKAGES=(povray povray-includes podman runc catatonit uidmap slirp4netns fuse-overlayfs debootstrap gdal-bin)

log() { echo "[setup] $*"; }
fail() {
    echo "[setup] FAILED: $*" >&2
    exit 1
}
installed() { [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]; }

# ---- 1. Debian packages --------------------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if ((${#missing[@]} == 0)); then
    log "system packages: all ${#PACKAGES[@]} installed (${PACKAGES[*]})"
elif [[ "$(id -u)" == "0" ]]; then
    log "system packages: missing ${missing[*]}; installing (apt-get update, apt-get install --no-install-recommends)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
    for p in "${missing[@]}"; do installed "$p" || fail "apt-get did not install $p"; done
    log "system packages: installed ${missing[*]}"
else
    echo "[setup] system packages: missing ${missing[*]}. Install them with:" >&2
    echo "  sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    echo "then run \`npm run setup\` again." >&2
    exit 1
fi
log "povray: $(povray --version 2>&1 | grep -m1 '^POV-Ray' || echo "installed at $(command -v povray)")"
[[ -x /usr/libexec/podman/catatonit ]] || fail "podman's init /usr/libexec/podman/catatonit is missing (package catatonit)"
log "podman: $(dpkg-query -W -f='${Version}' podman), init for --init: /usr/libexec/podman/catatonit"

# ---- 2. moto_server ------------------------------------------------------------------------------------------------
if moto="$(command -v moto_server)"; then
    log "moto_server: $moto"
else
    echo "[setup] moto_server (the AWS emulator the tests start) is not on PATH. Install it with:" >&2
    echo "  pip install 'moto[server]'" >&2
    exit 1
fi

# ---- 3. Node.js ----------------------------------------------------------------------------------------------------
node_path="$(command -v node || true)"
[[ -n "$node_path" ]] || fail "no node on PATH: install Node.js and run \`npm ci\` (it installs Node.js $NODE_MAJOR under node_modules/)"
node_version="$(node --version)"
major="${node_version#v}"
major="${major%%.*}"
if ((major < NODE_MAJOR)); then
    fail "node $node_version ($node_path) is older than $NODE_MAJOR: run \`npm ci\` first (it installs Node.js $NODE_MAJOR as node_modules/.bin/node, which npm scripts use)"
fi
log "node: $node_version ($node_path)"

# ---- 4. worker image -----------------------------------------------------------------------------------------------
if [[ "$(id -u)" != "0" ]]; then
    log "worker image: skipped (building it needs root: sudo npm run image); its test stays pending, npm run local uses worker processes"
else
    # Its [build-image] lines here, podman's whole output in .image-build/build.log (shown when the build fails).
    mkdir -p .image-build
    log "worker image: bash scripts/build-image.sh (full log: .image-build/build.log)"
    if ! bash scripts/build-image.sh 2>&1 | tee .image-build/build.log | grep --line-buffered '^\[build-image\]'; then
        tail -n 40 .image-build/build.log >&2
        fail "worker image build failed (full log: .image-build/build.log)"
    fi
fi
log "done"
