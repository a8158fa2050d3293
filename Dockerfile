# syntax=docker/dockerfile:1
# dbops worker / CLI image. Build:
#   docker build --build-arg PG_MAJOR=18 --build-arg DBOPS_COMMIT=$(git rev-parse --short=12 HEAD) -t dbops:<version> .
# PG_MAJOR = the major version of the PostgreSQL client tools (pg_dump, pg_restore, psql) from the
# PGDG apt repository (apt.postgresql.org). It must be >= the newest server major you back up:
# pg_dump refuses to dump a server newer than itself. deploy/scripts/rehearse-image-build.sh
# performs the same build steps on a host without a container engine.
ARG NODE_VERSION=20.20.2

# ---- build: all dependencies, TypeScript compile, prebundled workflow code ----
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY common ./common
COPY workflows ./workflows
COPY activities ./activities
COPY src ./src
COPY scripts ./scripts
# The commit the worker names in its build id (<version>+<commit>, dist/build-info.json): the
# context has no .git, so it comes in as an argument.
ARG DBOPS_COMMIT=unknown
RUN npm run build && test -s dist/workflow-bundle.js && test -s dist/workflow-bundle.sealed.js && test -s dist/build-info.json

# ---- deps: production dependencies only ----
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# The Temporal native bridge ships prebuilt binaries for five platforms (~140 MB): keep this one.
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force \
 && find node_modules/@temporalio/core-bridge/releases -mindepth 1 -maxdepth 1 \
      ! -name "$(uname -m)-unknown-linux-gnu" -exec rm -rf {} +

# ---- runtime ----
FROM node:${NODE_VERSION}-bookworm-slim AS runtime
ARG PG_MAJOR=18
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# PostgreSQL of PG_MAJOR from PGDG (Debian's own is 15): the client tools, and the server with
# pgvector, which a point-in-time restore starts as a temporary instance on the recovered copy
# (its pg_dump reads vector columns through the extension); no cluster is created at install.
# zstd for compressed dumps,
# age for encrypted ones (DBOPS_BACKUP_AGE_RECIPIENTS), openssh-client for ssh-keygen alone: the
# worker proves signed restore decisions with `ssh-keygen -Y find-principals/verify` against
# DBOPS_APPROVERS_FILE (no ssh, no sshd is used).
# ssh-keygen refuses to run for a uid without a passwd entry, hence the dbops user below.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && install -d /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/dbops.conf \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
      https://www.postgresql.org/media/keys/ACCC4CF8.asc \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends "postgresql-client-${PG_MAJOR}" "postgresql-${PG_MAJOR}" \
      "postgresql-${PG_MAJOR}-pgvector" zstd age openssh-client \
 && apt-get purge -y --auto-remove curl \
 && rm -rf /var/lib/apt/lists/* \
 && "/usr/lib/postgresql/${PG_MAJOR}/bin/pg_dump" --version \
 && "/usr/lib/postgresql/${PG_MAJOR}/bin/postgres" --version \
 && "/usr/lib/postgresql/${PG_MAJOR}/bin/pg_combinebackup" --version \
 && command -v ssh-keygen \
 && groupadd --gid 10001 dbops \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin dbops
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY migrations ./migrations
COPY package.json ./
ENV NODE_ENV=production \
    DBOPS_PG_BIN_DIR=/usr/lib/postgresql/${PG_MAJOR}/bin \
    DBOPS_HTTP_PORT=9464 \
    TMPDIR=/tmp \
    NODE_OPTIONS="--max-old-space-size=768 --max-semi-space-size=2" \
    MALLOC_ARENA_MAX=2
USER 10001:10001
EXPOSE 9464
ENTRYPOINT ["node", "/app/bin/dbops.js"]
CMD ["worker"]
