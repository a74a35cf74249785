"""promtool for the rule and dashboard tests: required in CI, skipped locally when missing."""

from __future__ import annotations

import os
import shutil

import pytest


@pytest.fixture(scope="session")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("promtool is required in CI: run scripts/install-tools.sh (make tools)")
        pytest.skip("promtool not installed: run scripts/install-tools.sh")
    return found
