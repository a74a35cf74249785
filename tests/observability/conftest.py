"""promtool and prometheus for the observability tests: required in CI, skipped locally when missing."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import require

REMEDY = "run scripts/install-tools.sh (make tools)"


def _tool(name: str) -> str:
    found = shutil.which(name)
    require(found is not None, name, REMEDY)
    assert found is not None
    return found


@pytest.fixture(scope="session")
def promtool() -> str:
    return _tool("promtool")


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return _tool("prometheus")
