#!/usr/bin/env bash
# Fresh Debian/Ubuntu machine with Node 20 -> everything installed and built.
#   bash scripts/bootstrap.sh          install: pnpm, ffmpeg, Chromium, promtool, MariaDB + Redis (when absent), dependencies, build
#   bash scripts/bootstrap.sh start    the same, then run the stack (migrations, api, ingest)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[bootstrap] %s\n' "$*"; }
as_root() { [ "$(id -u)" -eq 0 ]; }

command -v node >/dev/null 2>&1 || { say "Node.js 20 or newer is required (https://nodejs.org)"; exit 1; }
node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 20 ? 0 : 1)' || { say "Node.js 20 or newer is required, found $(node -v)"; exit 1; }

PNPM_VERSION=$(node -p 'require("./package.json").packageManager.split("@")[1]')
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm -v 2>/dev/null)" != "$PNPM_VERSION" ]; then
  say "installing pnpm $PNPM_VERSION"
  npm install -g "pnpm@$PNPM_VERSION" >/dev/null
fi

if ! command -v ffmpeg >/dev/null 2>&1 && [ -z "${FFMPEG_PATH:-}" ]; then
  if as_root; then
    say "installing ffmpeg"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg >/dev/null 2>&1 || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg >/dev/null
    }
  else
    say "ffmpeg is missing: install it (sudo apt-get install ffmpeg) or set FFMPEG_PATH"; exit 1
  fi
fi

# The player tests and bench:latency drive real players in Debian's Chromium (playwright cannot download a browser here).
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  if as_root; then
    say "installing chromium (player tests)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null
    }
  else
    say "chromium is missing: the player tests need it (sudo apt-get install chromium, or set CHROMIUM_PATH)"
  fi
fi

# `pnpm lint` checks infra/prometheus with promtool (Debian's prometheus package: a 19 MB download, no service started).
if ! command -v promtool >/dev/null 2>&1; then
  if as_root; then
    say "installing promtool (prometheus, for the infra checks)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null 2>&1 || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus >/dev/null
    }
  else
    say "promtool is missing: pnpm lint skips the Prometheus checks without it (sudo apt-get install --no-install-recommends prometheus)"
  fi
fi

bash scripts/ensure-services.sh

say "installing dependencies"
pnpm install --frozen-lockfile

if [ "${1:-}" = "start" ]; then
  exec pnpm start   # builds, migrates, runs
fi
say "building"
pnpm build
say "done: 'pnpm start' runs the stack, 'pnpm test' runs every test"
