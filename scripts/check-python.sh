#!/usr/bin/env bash
# Install the package from a wheel on another Python (default 3.13) and run the unit tests there.
#   scripts/check-python.sh [VERSION]      e.g. 3.13 or 3.12; venv at .venv-py<VERSION without dot>
# The full suite runs on the lowest supported Python (3.11, `make test`); this checks that a plain
# `pip install` of the wheel resolves and works on a newer one: serving extras only (no torch), so
# the tests that export a bundle from torch skip there. With CI=true a missing interpreter fails.
set -euo pipefail

VERSION="${1:-3.13}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv-py${VERSION//./}"

find_python() {
    local candidate
    for candidate in "$HOME"/.pyenv/versions/"$VERSION"*/bin/python"$VERSION" "$(command -v "python$VERSION" || true)"; do
        [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" --version >/dev/null 2>&1 && { echo "$candidate"; return; }
    done
}

PYTHON="$(find_python)"
if [[ -z "$PYTHON" ]]; then
    if [[ -n "${CI:-}" ]]; then
        echo "python$VERSION is required in CI (pyenv install $VERSION)" >&2
        exit 1
    fi
    echo "python$VERSION not found: skipping the check on Python $VERSION"
    exit 0
fi

[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check --upgrade pip
# A wheel install, not editable: what a user on this Python gets.
"$VENV/bin/pip" install -q --disable-pip-version-check --force-reinstall --no-deps "$ROOT"
"$VENV/bin/pip" install -q --disable-pip-version-check "$ROOT[dev,rocksdb,otel]"
echo "Python $VERSION: $(cd / && "$VENV/bin/shoppulse" --version) installed from the wheel"
cd "$ROOT"
"$VENV/bin/python" -m pytest -q -p no:cacheprovider -m "not integration" tests/unit
