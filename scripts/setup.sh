#!/usr/bin/env bash
# Prepares a fresh Debian 12/13 machine with Node 20 to run lsc: npm ci, build, and a Vulkan
# driver for Dawn when no WebGPU adapter is found (Mesa lavapipe, which needs Mesa >= 24:
# bookworm-backports on Debian 12). Safe to run again: each step is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'setup: %s\n' "$*" >&2; }

if ! command -v node >/dev/null; then
  log "node is not installed: install Node.js 20 (https://nodejs.org) and run this again"; exit 1
fi
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 20 ]; then log "Node.js $(node -v) is too old: lsc needs Node.js 20 or newer"; exit 1; fi

# dependencies: only when the lockfile changed since the last install
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi

log "building (tsc)"
# npm run build also makes dist/cli/main.js executable, which `npx lsc` needs
npm run --silent build

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else log "need root to run: $*"; exit 1; fi
}

# The deb URI the machine already uses for the main bookworm suite (one-line or deb822 sources).
bookworm_uri() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk '$1=="deb" && $0 ~ / bookworm( |$)/ { for (i=2;i<=NF;i++) if ($i ~ /^(https?|file|cdrom):/) { print $i; exit } }' "$f"
  done | head -n1
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # deb822: a paragraph whose Suites field lists plain "bookworm"
    awk 'BEGIN { RS = ""; FS = "\n" } {
      uri = ""; ok = 0
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^URIs:/) { split($i, u, /[ \t]+/); uri = u[2] }
        if ($i ~ /^Suites:/) { n = split($i, w, /[ \t]+/); for (j = 2; j <= n; j++) if (w[j] == "bookworm") ok = 1 }
      }
      if (ok && uri != "") { print uri; exit }
    }' "$f"
  done | head -n1
}

install_vulkan() {
  local version codename
  version=$(cut -d. -f1 /etc/debian_version 2>/dev/null || echo unknown)
  export DEBIAN_FRONTEND=noninteractive
  case "$version" in
    12)
      local uri
      uri=$(bookworm_uri | head -n1)
      uri=${uri:-http://deb.debian.org/debian}
      if ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
        log "adding bookworm-backports ($uri) for Mesa >= 24"
        printf 'Types: deb\nURIs: %s\nSuites: bookworm-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" \
          | as_root tee /etc/apt/sources.list.d/lsc-bookworm-backports.sources >/dev/null
      fi
      as_root apt-get update -qq
      as_root apt-get install -y -qq libvulkan1 >/dev/null
      as_root apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers >/dev/null
      ;;
    1[3-9]|trixie*|forky*|sid*)
      as_root apt-get update -qq
      as_root apt-get install -y -qq libvulkan1 mesa-vulkan-drivers >/dev/null
      ;;
    *)
      codename=$(. /etc/os-release 2>/dev/null && echo "${PRETTY_NAME:-unknown}")
      log "no WebGPU adapter, and $codename is not Debian 12/13: install a Vulkan driver (Mesa >= 24 lavapipe, or your GPU's) yourself"
      exit 1
      ;;
  esac
}

if ! node scripts/probe-adapter.mjs 2>/dev/null; then
  log "no WebGPU adapter: installing the Vulkan loader and Mesa's lavapipe driver"
  install_vulkan
  if ! node scripts/probe-adapter.mjs; then
    log "still no WebGPU adapter after installing Mesa; check 'vulkaninfo --summary' (lavapipe needs Mesa >= 24)"
    exit 1
  fi
fi

# On a CPU adapter (lavapipe) the "GPU" buffers are shmem (memfd), and loading first-touches every
# page of them: with 4 KiB pages a 1.3 GB model takes ~330k page faults (costly on a VM), with
# 2 MiB pages ~650. The setting is machine-wide (the driver owns the mappings: nothing per process),
# so it is set here, only from the default 'never', only where the file is writable, never failing
# set-up (BENCHMARKS.md "Loading speed"). within_size: huge pages only inside a file's size, so
# small shmem objects do not grow to 2 MiB.
thp=/sys/kernel/mm/transparent_hugepage/shmem_enabled
if [ -f "$thp" ] && grep -q '\[never\]' "$thp" && node scripts/probe-adapter.mjs 2>/dev/null | grep -qiE 'llvmpipe|lavapipe|swiftshader'; then
  if [ -w "$thp" ] && echo within_size > "$thp" 2>/dev/null; then
    log "set $thp to within_size (was never): shmem huge pages for the CPU driver's buffers, model loading ~1.5-2x faster on this machine; 'echo never > $thp' undoes it"
  else
    log "tip: 'echo within_size | sudo tee $thp' makes model loading on this CPU adapter ~1.5-2x faster (machine-wide shmem huge pages; not set: no permission)"
  fi
fi

# The browser tests (test/inspect-browser.test.ts, the viewer; test/web-browser.test.ts, lsc web
# with WebGPU on chromium's SwiftShader) drive Debian's chromium headless with puppeteer-core,
# which downloads no browser. Only when asked (scripts/test.sh does): the quick
# start needs no browser.
if [ "${LSC_SETUP_BROWSER:-0}" = "1" ] && [ ! -x /usr/bin/chromium ]; then
  log "installing chromium for the browser tests"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  as_root apt-get install -y -qq chromium >/dev/null
fi
