#!/usr/bin/env bash
# The README's first command: build dbops, bring up the embedded dev stack, start a worker in the
# background, check every dependency, migrate and seed the dev database, create the Milvus
# collections, take a first backup, apply the schedules, and print where to look in the Web UI.
# Idempotent: running it again reuses what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# Bold headings only on a terminal, and never with NO_COLOR set (no-color.org).
if [[ -t 1 && -z ${NO_COLOR:-} ]]; then
  step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
else
  step() { printf '\n==> %s\n' "$*"; }
fi

step "build"
npm run -s build

step "dev stack (PostgreSQL 18 + pgvector, Temporal + Web UI, Milvus 2.3, versitygw S3)"
npm run -s stack -- up
eval "$(npm run -s stack -- env)"
# The dev default keeps backups in a local folder; unset the S3 bucket so the default store is used.
unset DBOPS_S3_BUCKET
dbops() { node bin/dbops.js "$@"; }

step "worker (background)"
# With this shell's settings (local backups); `npm run stack -- down` stops it with the servers.
npm run -s stack -- worker

step "doctor"
dbops doctor

step "database: init + migrations"
dbops db init

step "demo data (only if the database is empty)"
rows=$("$DBOPS_PG_BIN_DIR/psql" -Atq -c "SELECT count(*) FROM users" 2>/dev/null || echo 0)
if [[ ${rows:-0} == 0 ]]; then
  dbops db seed --scale 0.01
else
  echo "users already has $rows rows: not seeding"
fi

step "milvus collections"
dbops milvus init

step "first backup"
dbops backup --wait

step "schedules (daily backup, nightly Milvus maintenance, daily partition maintenance)"
dbops schedules apply

step "done"
dbops backups list
echo
echo "Temporal Web UI: $DBOPS_TEMPORAL_UI_URL/namespaces/default/workflows"
echo "Schedules:       $DBOPS_TEMPORAL_UI_URL/namespaces/default/schedules"
