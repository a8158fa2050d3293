#!/usr/bin/env bash
# Rehearses the Dockerfile's build on this host (no container engine needed), into a temp folder:
#   build stage    npm ci, npm run build (tsc + prebundled workflow code)
#   deps stage     npm ci --omit=dev (offline from the npm cache when it can)
#   runtime stage  production node_modules + dist + bin + migrations, then `dbops --help` from it
# What it cannot rehearse: the PGDG apt packages (postgresql-client-$PG_MAJOR) and the base image.
# Usage: deploy/scripts/rehearse-image-build.sh
#   KEEP=1               keep the temp folder
#   CONTEXT=HEAD         build a commit (any git revision) instead of the working tree
#   REUSE_NODE_MODULES=1 build stage uses the checkout's node_modules instead of its own npm ci
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/dbops-image-rehearsal.XXXXXX")"
cleanup() {
  if [ -n "${DEPS_PID:-}" ]; then kill "$DEPS_PID" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
step() { echo "== $* ($(( SECONDS ))s)"; }
NPM_FLAGS=(--no-audit --no-fund --loglevel=error)

step "context: the files the Dockerfile copies"
CONTEXT_FILES=(package.json package-lock.json tsconfig.json tsconfig.build.json bin common workflows activities src scripts migrations)
mkdir -p "$WORK/build"
CONTEXT="${CONTEXT:-worktree}"
if [ "$CONTEXT" != worktree ]; then
  # A commit (e.g. CONTEXT=HEAD), without uncommitted work in the checkout.
  mapfile -t committed < <(git -C "$ROOT" ls-tree --name-only "$CONTEXT" "${CONTEXT_FILES[@]}")
  git -C "$ROOT" archive "$CONTEXT" "${committed[@]}" | tar -x -C "$WORK/build"
  mkdir -p "$WORK/build/migrations"
else
  for f in "${CONTEXT_FILES[@]}"; do cp -R "$ROOT/$f" "$WORK/build/$f"; done
fi

# The deps stage does not depend on the build stage: run it alongside, as BuildKit does.
deps_stage() {
  mkdir -p "$WORK/deps"
  cp "$WORK/build/package.json" "$WORK/build/package-lock.json" "$WORK/deps/"
  if ! (cd "$WORK/deps" && npm ci "${NPM_FLAGS[@]}" --omit=dev --offline); then
    echo "offline install from the npm cache failed; installing from the registry"
    (cd "$WORK/deps" && npm ci "${NPM_FLAGS[@]}" --omit=dev --prefer-offline)
  fi
  find "$WORK/deps/node_modules/@temporalio/core-bridge/releases" -mindepth 1 -maxdepth 1 \
    ! -name "$(uname -m)-unknown-linux-gnu" -exec rm -rf {} +
}
step "deps stage (in the background): npm ci --omit=dev"
deps_stage > "$WORK/deps.log" 2>&1 &
DEPS_PID=$!

if [ "${REUSE_NODE_MODULES:-0}" = 1 ]; then
  # Faster (tests): the checkout's node_modules, installed by `npm ci` from the same lockfile.
  step "build stage: reusing $ROOT/node_modules (REUSE_NODE_MODULES=1)"
  ln -s "$ROOT/node_modules" "$WORK/build/node_modules"
else
  step "build stage: npm ci"
  (cd "$WORK/build" && npm ci "${NPM_FLAGS[@]}" --prefer-offline)
fi
step "build stage: npm run build"
(cd "$WORK/build" && npm run -s build)
for f in workflow-bundle.js workflow-bundle.sealed.js; do
  test -s "$WORK/build/dist/$f" || { echo "dist/$f missing after npm run build" >&2; exit 1; }
done

if ! wait "$DEPS_PID"; then
  cat "$WORK/deps.log" >&2
  echo "deps stage failed" >&2
  exit 1
fi
cat "$WORK/deps.log"

step "runtime stage: assemble /app"
APP="$WORK/app"
mkdir -p "$APP"
mv "$WORK/deps/node_modules" "$APP/node_modules"
cp -R "$WORK/build/dist" "$APP/dist"
cp -R "$WORK/build/bin" "$WORK/build/migrations" "$WORK/build/package.json" "$APP/"

step "checks"
for dev in typescript vitest tsx eslint; do
  if [ -e "$APP/node_modules/$dev" ]; then
    echo "dev dependency $dev is in the runtime node_modules" >&2
    exit 1
  fi
done
(cd "$APP" && node bin/dbops.js --help) | tee "$WORK/help.txt"
grep -q "worker" "$WORK/help.txt" || { echo "dbops --help does not list the worker command" >&2; exit 1; }
# The worker must load the prebundled workflow code (no webpack at startup) from the image layout
# (by default: a DBOPS_WORKFLOW_BUNDLE of the caller, e.g. the test run's bundle, does not count).
(cd "$APP" && env -u DBOPS_WORKFLOW_BUNDLE node -e '
  require("@temporalio/core-bridge");
  for (const sealed of [false, true]) {
    const s = require("./dist/src/worker/create.js").workflowSource(sealed);
    if (!s.workflowBundle || !require("node:fs").existsSync(s.workflowBundle.codePath)) {
      console.error("worker would not use the prebundled workflow code:", JSON.stringify(s)); process.exit(1);
    }
    console.log(sealed ? "sealed workflow bundle:" : "workflow bundle:", s.workflowBundle.codePath);
  }
  // With DBOPS_PAYLOAD_KEYS the worker loads the sealing failure converter by path: it must be in dist.
  const { SEALED_FAILURES_PATH } = require("./dist/src/codec/data-converter.js");
  if (!require(SEALED_FAILURES_PATH).failureConverter) {
    console.error("no failureConverter export in", SEALED_FAILURES_PATH); process.exit(1);
  }
  console.log("sealed failure converter:", SEALED_FAILURES_PATH);
')
echo "runtime /app: $(du -sh "$APP" | cut -f1) (production node_modules $(du -sh "$APP/node_modules" | cut -f1))"
step "image build rehearsal passed"
