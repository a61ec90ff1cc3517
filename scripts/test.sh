#!/usr/bin/env bash
# `pnpm test`: services reachable, everything built, then every package's tests, one package at a time
# (each file spins up real servers; 2 cores stay usable).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ensure-services.sh
pnpm build
# Through the leftovers check: a test file that leaves Redis keys behind fails the run, naming its prefix.
node scripts/check-redis-leftovers.mjs pnpm exec turbo run test --concurrency=1 --output-logs=new-only "$@"
