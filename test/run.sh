#!/usr/bin/env bash
# The whole test suite: brings up the dev stack (installing what is missing), then runs every test.
# test/stack.test.ts stops and restarts a shared server, so it runs alone before the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run -s stack -- up
if [[ $# -gt 0 ]]; then
  exec npx vitest run "$@"
fi
npx vitest run test/stack.test.ts
npx vitest run --exclude test/stack.test.ts
