#!/usr/bin/env bash
# The whole check: lint, typecheck and format first (fail fast), then the dev stack (installing what
# is missing), then every test. test/stack.test.ts stops and restarts a shared server, so it runs
# alone before the rest. The suite leaves the user's dev state as it found it: a snapshot taken
# here, before any test, is compared with the state after the last one (test/isolation/).
# `npm test -- FILE...` runs just those test files (no checks, no isolation snapshot).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $# -gt 0 ]]; then
  npm run -s stack -- up
  exec npx vitest run "$@"
fi

step() { printf '\n==> %s\n' "$*"; }
step "lint";         npm run -s lint
step "typecheck";    npm run -s typecheck
step "format:check"; npm run -s format:check

step "dev stack"
npm run -s stack -- up

snapshot_dir=$(mktemp -d)
trap 'rm -rf "$snapshot_dir"' EXIT
export DBOPS_TEST_ISOLATION_SNAPSHOT="$snapshot_dir/before.json"
npx tsx test/isolation/snapshot.ts >"$DBOPS_TEST_ISOLATION_SNAPSHOT"

status=0
step "tests: dev stack restarts"
npx vitest run test/stack.test.ts || status=$?
step "tests: everything else"
npx vitest run --exclude test/stack.test.ts --exclude 'test/isolation/**' || status=$?
# Always, even after a failure: a failed test must not leave the user's state changed either.
step "tests: the dev state is as it was"
npx vitest run test/isolation/ || status=$?
exit "$status"
