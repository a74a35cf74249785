"""The soak report's summary: memory first/last/max, the largest lag, the errors at the end."""

from shoppulse.devkit.bench.soak import summarise


def test_summary_of_minutes() -> None:
    minutes = [
        {"enrich_rss_mib": 300.0, "profiles_rss_mib": 90.0, "enrich_lag": 12, "profiles_lag": 0,
         "enrich_errors": 0.0, "profiles_errors": 0.0, "alive": True},
        {"enrich_rss_mib": 310.0, "profiles_rss_mib": None, "enrich_lag": 40, "profiles_lag": 3,
         "enrich_errors": 1.0, "profiles_errors": 0.0, "alive": True},
        {"enrich_rss_mib": 305.0, "profiles_rss_mib": 95.0, "enrich_lag": 8, "profiles_lag": None,
         "enrich_errors": 2.0, "profiles_errors": 0.0, "alive": False},
    ]
    summary = summarise(minutes)
    assert (summary["enrich_rss_mib_first"], summary["enrich_rss_mib_last"], summary["enrich_rss_mib_max"]) == (
        300.0,
        305.0,
        310.0,
    )
    assert summary["profiles_rss_mib_last"] == 95.0  # a missing sample is skipped
    assert (summary["enrich_lag_max"], summary["profiles_lag_max"]) == (40, 3)
    assert (summary["enrich_errors"], summary["profiles_errors"]) == (2.0, 0.0)
    assert summary["all_alive_throughout"] is False
