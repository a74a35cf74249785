"""The README documents the code that exists: settings table generated from the settings object."""

import re
from pathlib import Path

from consumers.settings import env_var_names, settings_table_markdown

README = Path(__file__).resolve().parents[3] / "README.md"


def test_readme_settings_table_is_generated_from_the_settings_object() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- settings:start -->\n(.*?)\n<!-- settings:end -->", text, re.S)
    assert match, "README lacks the settings markers"
    assert match.group(1).strip() == settings_table_markdown().strip(), (
        "README settings table is stale: regenerate it with "
        "python -c 'from consumers.settings import settings_table_markdown as t; print(t())'"
    )
    for name in env_var_names():
        assert f"`{name}`" in match.group(1)


def test_readme_names_the_two_commands_and_ci_calls_one_of_them() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
