"""The words a dead letter carries for every rejection in the contract and signal tables.

``message`` and ``field`` are what a person reads in ``dead-letter`` to fix their producer, so
they are part of the contract: this pins them (``rejection_messages.json``). After a deliberate
change, rewrite the file with ``SHOPPULSE_UPDATE_MESSAGES=1 pytest tests/unit/consumers/test_rejection_messages.py``
and review its diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from shoppulse.consumers.contracts import ContractError, parse_event
from shoppulse.consumers.records import Signal, SignalError
from tests.unit.consumers.profiles.streams import make_signals
from tests.unit.consumers.profiles.test_profile import test_bad_signals_are_refused_with_a_reason as signal_case
from tests.unit.consumers.test_contracts import BAD_CASES, BOUNDARIES, NOW, raw

SNAPSHOT = Path(__file__).with_name("rejection_messages.json")


def _signal_cases() -> list[dict]:
    marks = signal_case.pytestmark  # type: ignore[attr-defined]
    [params] = [m for m in marks if m.name == "parametrize"]
    return [patch for patch, _ in params.args[1]]


def current_messages() -> dict[str, list]:
    out: dict[str, list] = {}
    rejected = [(kind, payload) for kind, payload, _, _ in BAD_CASES]
    rejected += [(kind, raw(body)) for kind, body, accepted in BOUNDARIES if not accepted]
    for i, (kind, payload) in enumerate(rejected):
        try:
            parse_event(kind, payload, now=NOW)  # type: ignore[arg-type]
        except ContractError as err:
            out[f"contract-{i:03d}"] = [err.reason, err.field, err.message, str(err)]
    base = make_signals(seed=1, users=1, n=1)[0]
    for i, patch in enumerate(_signal_cases()):
        try:
            Signal.from_json({**base, **patch})
        except SignalError as err:
            out[f"signal-{i:03d}"] = [err.reason, str(err)]
    return out


def test_rejection_messages_are_the_documented_ones() -> None:
    current = current_messages()
    if os.environ.get("SHOPPULSE_UPDATE_MESSAGES"):
        SNAPSHOT.write_text(json.dumps(current, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    expected = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    changed = {k: (expected.get(k), v) for k, v in current.items() if expected.get(k) != v}
    missing = sorted(set(expected) - set(current))
    assert not changed and not missing, f"changed: {changed}; gone: {missing} (see this module's docstring)"
