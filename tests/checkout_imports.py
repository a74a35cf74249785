"""Tests import the code of the checkout they sit in, under its installed name.

The folders consumers/, models/ and export/ install as ``shoppulse.consumers`` and so on
(pyproject's ``package-dir``). An editable install maps those names to this checkout, but a
mutation run (mutmut) copies the checkout and must test the copy, under the module names it derives
from file paths (``models.text``). This finder, first on ``sys.meta_path`` before any ``shoppulse``
import, makes ``shoppulse.<folder>`` resolve to the folder next to ``tests/``; under mutmut it
aliases ``shoppulse.models.serving.text`` to the copy's ``models.text`` module itself.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

CHECKOUT = Path(__file__).resolve().parents[1]
FOLDERS = ("consumers", "models", "export", "devkit")


class _Alias(importlib.abc.Loader):
    """Loads a name as an already importable module under another name (same object)."""

    def __init__(self, real_name: str) -> None:
        self.real_name = real_name

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.real_name)
        self.real_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run; only undo importlib's overwriting of ``__spec__`` (resources read it)."""
        module.__spec__ = self.real_spec


class CheckoutFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == "shoppulse":
            return importlib.machinery.ModuleSpec("shoppulse", None, is_package=True)
        top, _, rest = fullname.partition(".")
        folder = rest.partition(".")[0]
        if top != "shoppulse" or folder not in FOLDERS:
            return None
        if "mutmut" in sys.modules:
            return importlib.machinery.ModuleSpec(fullname, _Alias(rest), is_package=True)
        if rest != folder:
            return None  # a subpackage follows its parent's __path__, which points into the checkout
        package = CHECKOUT / folder
        return importlib.util.spec_from_file_location(
            fullname, package / "__init__.py", submodule_search_locations=[str(package)]
        )


if not any(isinstance(finder, CheckoutFinder) for finder in sys.meta_path):
    sys.meta_path.insert(0, CheckoutFinder())
