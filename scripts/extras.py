"""Print the requirements of the named extras in pyproject.toml, one per line (for the Makefile).

Why: the train/export extras (transformers → huggingface-hub → click>=8.4.2) and the runtime
(faust-streaming pins click<8.4) cannot be resolved in one pip call, although both work with
either click. The Makefile installs them in two steps; this keeps pyproject the single list.
"""

import sys
import tomllib
from pathlib import Path

extras = tomllib.loads(Path(__file__).resolve().parent.parent.joinpath("pyproject.toml").read_text())[
    "project"
]["optional-dependencies"]
seen: list[str] = []
for name in sys.argv[1:]:
    for requirement in extras[name]:
        if requirement not in seen:
            seen.append(requirement)
print("\n".join(seen))
