#!/usr/bin/env bash
# `pnpm start`: services reachable, build, migrate, then api + ingest in the foreground. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { printf '[start] %s\n' "$*"; }

bash scripts/ensure-services.sh
# shellcheck source=/dev/null
[ -f envs/.env ] && { say "loading envs/.env"; set -a; . envs/.env; set +a; }

mkdir -p .run
if [ -z "${JWT_SECRET:-}" ]; then
  # A development secret, kept across restarts so tokens survive; never committed (.run/ is ignored).
  [ -s .run/jwt-secret ] || node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("hex"))' > .run/jwt-secret
  JWT_SECRET=$(cat .run/jwt-secret)
  export JWT_SECRET
fi
export DATABASE_URL=${DATABASE_URL:-mysql://livestream:livestream@127.0.0.1:3306/livestream}
export MEDIA_ROOT=${MEDIA_ROOT:-$PWD/media}

pnpm build
pnpm db:migrate

# Each app in its own process group (job control on): Ctrl-C reaches this script only, which then sends each app one
# SIGTERM. Had the terminal's SIGINT reached them too, our SIGTERM would be a second signal and cut their graceful stop.
set -m
node apps/api/dist/server.js &
API_PID=$!
# A fixed glibc mmap threshold: see ALLOCATOR_ENV in apps/ingest/src/rtmp-limits.ts.
MALLOC_MMAP_THRESHOLD_=131072 node apps/ingest/dist/server.js &
INGEST_PID=$!
set +m

stop() {
  trap - INT TERM
  kill -TERM "$API_PID" "$INGEST_PID" 2>/dev/null || true
  wait "$API_PID" "$INGEST_PID" 2>/dev/null || true
}
trap 'stop; exit 0' INT TERM

say "api:     http://localhost:${PORT:-3000}/api"
say "health:  http://localhost:${PORT:-3000}/healthz and /readyz"
say "rtmp:    rtmp://localhost:${RTMP_PORT:-1935}/live  + your stream key"
say "media:   http://localhost:${HTTP_PORT:-8000}/hls/<playback_id>/index.m3u8"

# If either stops on its own, stop the other and fail.
set +e
wait -n "$API_PID" "$INGEST_PID"
code=$?
set -e
say "a process exited ($code); stopping the stack"
stop
exit "$code"
