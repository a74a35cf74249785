"""The interest taxonomy: fine categories (what the interest head predicts) and coarse tags.

It lives in a data file so a shop can remap categories without touching code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

_DATA_PACKAGE = __package__.rpartition(".")[0]  # data/ sits beside serving/ in the models package


@dataclass(frozen=True)
class Taxonomy:
    fine_to_tag: dict[str, str]

    @property
    def categories(self) -> list[str]:
        """Fine categories in a stable order (the order of the file)."""
        return list(self.fine_to_tag)

    @property
    def tags(self) -> list[str]:
        return sorted(set(self.fine_to_tag.values()))

    def tag_of(self, category: str) -> str:
        try:
            return self.fine_to_tag[category]
        except KeyError:
            raise KeyError(f"unknown category {category!r}; known: {', '.join(self.fine_to_tag)}") from None


def load_taxonomy(path: Path | None = None) -> Taxonomy:
    if path is None:
        return default_taxonomy()
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return Taxonomy(dict(data["categories"]))


@cache
def default_taxonomy() -> Taxonomy:
    text = resources.files(_DATA_PACKAGE).joinpath("data/taxonomy.json").read_text(encoding="utf-8")
    return Taxonomy(dict(json.loads(text)["categories"]))
