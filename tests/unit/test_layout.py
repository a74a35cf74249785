"""The package layout: three folders installed under one import name, ``shoppulse``."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_folder_is_installed_under_shoppulse() -> None:
    mapping = SETUPTOOLS["package-dir"]
    assert mapping == {f"shoppulse.{folder}": folder for folder in ("consumers", "models", "export")}
    on_disk = {
        "shoppulse." + init.parent.relative_to(ROOT).as_posix().replace("/", ".")
        for folder in mapping.values()
        for init in (ROOT / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert set(SETUPTOOLS["packages"]) == on_disk, "pyproject's [tool.setuptools] packages list is out of date"
