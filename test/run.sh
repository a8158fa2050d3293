#!/usr/bin/env bash
# The whole test suite: brings up the dev stack (installing what is missing), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run -s stack -- up
npx vitest run "$@"
