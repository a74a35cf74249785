"""The package layout: three folders installed under one import name, ``shoppulse``."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def test_every_package_folder_is_installed_under_shoppulse() -> None:
    mapping = SETUPTOOLS["package-dir"]
    assert mapping == {f"shoppulse.{folder}": folder for folder in ("consumers", "models", "export", "devkit")}
    on_disk = {
        "shoppulse." + init.parent.relative_to(ROOT).as_posix().replace("/", ".")
        for folder in mapping.values()
        for init in (ROOT / folder).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert set(SETUPTOOLS["packages"]) == on_disk, "pyproject's [tool.setuptools] packages list is out of date"


def _imported(folder: str) -> set[str]:
    """Every ``shoppulse.*`` module named by an import anywhere under ``folder`` (lazy imports too)."""
    names: set[str] = set()
    for path in (ROOT / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
    return {name for name in names if name.startswith("shoppulse.")}


def test_no_import_cycle_between_the_packages() -> None:
    """consumers → models ← export, devkit → all; inside models: training → evaluation → serving."""
    layers = ["models/serving", "models/evaluation", "models/training", "export", "consumers", "devkit"]
    upward = {}
    for i, folder in enumerate(layers):
        later = {"shoppulse." + other.replace("/", ".") for other in layers[i + 1 :]}
        upward[folder] = sorted(n for n in _imported(folder) if any(n == p or n.startswith(p + ".") for p in later))
    assert upward == {folder: [] for folder in layers}, "a package imports one that depends on it"


def test_the_product_never_imports_the_dev_kit() -> None:
    """consumers/, models/ and export/ ship in every pod; devkit/ (brokers, simulator, benchmarks,
    demo) only joins the CLI through its entry points."""
    offenders = []
    for folder in ("consumers", "models", "export"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [node.module or ""]
                elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                    names = [node.value] if node.value.startswith("shoppulse.devkit") else []
                offenders += [f"{path.relative_to(ROOT)}:{node.lineno}" for n in names if "devkit" in n.split(".")]
    assert offenders == []


def test_the_dev_kit_commands_are_entry_points_the_cli_finds() -> None:
    entry_points = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["entry-points"]
    commands = entry_points["shoppulse.commands"]
    assert set(commands) == {"broker", "simulate", "bench", "demo"}
    assert all(module.startswith("shoppulse.devkit.") for module in commands.values())


def test_class_names_are_unique_across_the_packages() -> None:
    """One name, one thing: two ``OffsetTracker`` classes (a commit tracker and a hole finder) once
    made a reader guess which was meant."""
    import ast
    from collections import defaultdict

    where: dict[str, list[str]] = defaultdict(list)
    for folder in ("consumers", "models", "export", "devkit"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in tree.body:
                if isinstance(node, ast.ClassDef):
                    where[node.name].append(str(path.relative_to(ROOT)))
    assert len(where) > 50  # the walk found the packages' classes
    assert {name: paths for name, paths in where.items() if len(paths) > 1} == {}
