"""docs/observability.md describes what ships: every metric, dashboard, panel, rule and alert by name."""

from __future__ import annotations

import yaml

from tests.observability.promql import DASHBOARDS, ROOT, RULES, dashboard_panels, defined_series, load_dashboard

SECTION = ROOT / "docs" / "observability.md"


def test_observability_page_names_every_metric_panel_and_rule() -> None:
    text = SECTION.read_text(encoding="utf-8")
    bases = {
        name.removesuffix(s) for name in defined_series() for s in ("_bucket", "_sum", "_count") if name.endswith(s)
    }
    names = {n for n in defined_series() if not n.endswith("_created")} - {
        b + s for b in bases for s in ("_bucket", "_sum", "_count")
    }
    for name in names | bases:
        assert f"`{name}`" in text, f"metric {name} is not documented"
    for path in DASHBOARDS:
        dashboard = load_dashboard(path)
        assert f"`helm/shoppulse/dashboards/{path.name}`" in text, f"dashboard {path.name} is not documented"
        assert f"uid `{dashboard['uid']}`" in text, f"{path.name}: its uid is not documented"
        for panel in dashboard_panels(dashboard):
            assert f"*{panel['title']}*" in text, f"{path.name}: panel {panel['title']!r} is not documented"
    for group in yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule["alert"]
            assert f"`{name}`" in text, f"rule {name} is not documented"
