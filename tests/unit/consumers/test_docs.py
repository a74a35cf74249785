"""The docs document the code that exists: settings table generated from the settings object, links resolve."""

import re
from pathlib import Path

from shoppulse.consumers.settings import env_var_names, settings_table_markdown

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"
OPERATIONS = ROOT / "docs" / "operations.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]

FENCE = re.compile(r"^```.*?^```", re.S | re.M)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)


def test_settings_table_is_generated_from_the_settings_object() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    match = re.search(r"<!-- settings:start -->\n(.*?)\n<!-- settings:end -->", text, re.S)
    assert match, "docs/operations.md lacks the settings markers"
    assert match.group(1).strip() == settings_table_markdown().strip(), (
        "docs/operations.md settings table is stale: regenerate it with "
        "python -c 'from shoppulse.consumers.settings import settings_table_markdown as t; print(t())'"
    )
    for name in env_var_names():
        assert f"`{name}`" in match.group(1)


def test_readme_names_the_two_commands_and_ci_calls_one_of_them() -> None:
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci


def slug(heading: str) -> str:
    """GitHub's anchor for a heading, simplified: lower case, punctuation out (not - or _), spaces to -."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def prose(text: str) -> str:
    """The text without code blocks, where `[x](y)` and `# x` are not links or headings."""
    return FENCE.sub("", text)


def anchors(page: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(prose(page.read_text(encoding="utf-8")))}


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(INLINE_CODE.sub("", prose(page.read_text(encoding="utf-8")))):
        if re.match(r"(https?|mailto):", target):
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_relative_to(ROOT) or not file.exists():
            broken.append(f"{target}: no such file in the repository")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    return broken


def test_slug_follows_github() -> None:
    assert slug("Capacity (2-core machine)") == "capacity-2-core-machine"
    assert slug("`user-profiles` (compacted, one live record per user)") == (
        "user-profiles-compacted-one-live-record-per-user"
    )
    assert slug("The Helm chart (`helm/shoppulse`)") == "the-helm-chart-helmshoppulse"
    assert slug("物流 complaints: a_b") == "物流-complaints-a_b"


def test_every_relative_link_in_the_readme_and_docs_resolves() -> None:
    assert len(PAGES) > 1
    broken = {page.relative_to(ROOT).as_posix(): broken_links(page) for page in PAGES}
    assert not {page: links for page, links in broken.items() if links}
