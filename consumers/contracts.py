"""Input event contracts: parsing and validation with precise reasons.

Why hand-written rather than a schema library: every rejection must carry a stable
reason code (a metric label and the dead-letter's ``reason``), the field at fault and
a human message, and the hot path must stay cheap. Money is parsed as ``Decimal``
(never float) so order totals add up exactly downstream.

See ``docs/events.md`` for every contract with a JSON example.
"""

from __future__ import annotations

import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from shoppulse.models.serving.text import clean_text

SCHEMA_VERSION = 1
SUPPORTED_SCHEMA_VERSIONS = frozenset({1})

MAX_PAYLOAD_BYTES = 512 * 1024  # a 10,000-item order fits (and is refused for its size)
MAX_TEXT_CHARS = 2_000  # longer review texts are clipped (the model reads 128 tokens anyway)
MAX_TITLE_CHARS = 200
MAX_ID_CHARS = 128
MAX_ORDER_ITEMS = 1_000
MIN_TS_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
MAX_FUTURE_SKEW_MS = 24 * 3600 * 1000  # a day of clock skew is tolerated, the year 3000 is not

CLICK_ACTIONS = ("view", "click", "add_to_cart", "favorite", "search")
EventKind = Literal["review", "click", "order"]

# Reason codes: stable strings, used as metric labels and in dead-letter records.
R_TOO_LARGE = "too_large"
R_NOT_UTF8 = "not_utf8"
R_BAD_JSON = "bad_json"
R_NOT_OBJECT = "not_object"
R_MISSING = "missing_field"
R_WRONG_TYPE = "wrong_type"
R_BAD_VALUE = "bad_value"
R_TS_RANGE = "ts_out_of_range"
R_SCHEMA = "unsupported_schema_version"
R_TOO_MANY_ITEMS = "too_many_items"
R_EMPTY = "empty_payload"
R_PARSE_FAILED = "parse_failed"  # the validator itself failed: a bug to fix, never a crash of the stage
# Reasons only stage 2 gives (a user-signals record it cannot fold).
R_MISSING_KEY = "missing_key"
R_KEY_MISMATCH = "key_mismatch"
R_FOLD_FAILED = "fold_failed"

MAX_AMOUNT = Decimal("1e12")  # prices and totals
MAX_NUMBER_EXPONENT = 20  # numbers are ids, counts, times or money: nothing needs 10^20 or more
_LONE_SURROGATE_ESCAPE = re.compile(rb"\\[uU][dD][89a-fA-F]")
# Control and format characters (NUL, zero-width space and joiners, BOM, bidi marks): not in an id.
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")
MAX_AMOUNT_PLACES = 4  # ISO 4217 minor units go to 3; more would be rounded away in exact sums
REASONS = (
    R_TOO_LARGE,
    R_NOT_UTF8,
    R_BAD_JSON,
    R_NOT_OBJECT,
    R_MISSING,
    R_WRONG_TYPE,
    R_BAD_VALUE,
    R_TS_RANGE,
    R_SCHEMA,
    R_TOO_MANY_ITEMS,
    R_EMPTY,
)


class ContractError(ValueError):
    """An input that breaks its contract: ``reason`` (code), ``field`` (dotted path) and a message."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{field + ': ' if field else ''}{message}")
        self.reason = reason
        self.field = field
        self.message = message


@dataclass(frozen=True)
class OrderItem:
    product_id: str
    price: Decimal
    quantity: int
    title: str | None = None
    category: str | None = None


@dataclass(frozen=True)
class Event:
    """A validated input event; fields not used by a kind stay None/empty."""

    kind: EventKind
    event_id: str
    user_id: str
    ts_ms: int
    schema_version: int = SCHEMA_VERSION
    product_id: str | None = None
    order_id: str | None = None
    rating: int | None = None
    text: str | None = None
    action: str | None = None
    title: str | None = None
    category: str | None = None
    query: str | None = None
    items: tuple[OrderItem, ...] = ()
    total: Decimal | None = None
    currency: str | None = None
    clipped: tuple[str, ...] = field(default=())


def now_ms() -> int:
    return int(time.time() * 1000)


# --- field readers ------------------------------------------------------------------------------
def _require(obj: dict[str, Any], name: str, path: str) -> Any:
    if name not in obj or obj[name] is None:
        raise ContractError(R_MISSING, "is required", path)
    return obj[name]


def _id(obj: dict[str, Any], name: str, path: str, required: bool = True) -> str | None:
    value = _require(obj, name, path) if required else obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ContractError(R_WRONG_TYPE, f"must be a string, got {type(value).__name__}", path)
    value = str(value)
    if not value or len(value) > MAX_ID_CHARS:
        raise ContractError(R_BAD_VALUE, f"must be 1..{MAX_ID_CHARS} characters", path)
    if not value.strip() or _INVISIBLE.search(value):
        # " ", "\x00" and "\u200b" would each be a user of their own, unreadable in any output
        raise ContractError(R_BAD_VALUE, "must be visible text: no control or format characters, not blank", path)
    return value


def _opt_str(obj: dict[str, Any], name: str, path: str, limit: int, clipped: list[str]) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ContractError(R_WRONG_TYPE, f"must be a string, got {type(value).__name__}", path)
    if len(value) > limit:
        clipped.append(path)
        return value[:limit]
    return value


def _huge(number: Decimal) -> bool:
    """10^MAX_NUMBER_EXPONENT or more: never a valid number here, and too costly to turn into an int."""
    return number.adjusted() >= MAX_NUMBER_EXPONENT


def parse_ts(value: Any, path: str = "ts", now: int | None = None) -> int:
    """Epoch milliseconds, or ISO-8601 with a zone; returns epoch ms within [2000, now + 1 day]."""
    if isinstance(value, bool):
        raise ContractError(R_WRONG_TYPE, "must be epoch milliseconds or an ISO-8601 string", path)
    if isinstance(value, int | Decimal | float):
        if isinstance(value, Decimal) and (not value.is_finite() or _huge(value)):
            raise ContractError(R_BAD_VALUE, "not epoch milliseconds (too large or not finite)", path)
        try:
            ms = int(value)
        except (ValueError, OverflowError, InvalidOperation) as exc:
            raise ContractError(R_BAD_VALUE, "not a finite number", path) from exc
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as exc:
            raise ContractError(R_BAD_VALUE, f"not ISO-8601: {value[:40]!r}", path) from exc
        if parsed.tzinfo is None:
            raise ContractError(R_BAD_VALUE, "ISO-8601 timestamps need a zone (Z or +08:00)", path)
        ms = int(parsed.timestamp() * 1000)
    else:
        raise ContractError(R_WRONG_TYPE, "must be epoch milliseconds or an ISO-8601 string", path)
    limit = (now if now is not None else now_ms()) + MAX_FUTURE_SKEW_MS
    if ms < MIN_TS_MS or ms > limit:
        shown = ms if abs(ms) < 10**MAX_NUMBER_EXPONENT else "the value"
        raise ContractError(R_TS_RANGE, f"{shown} is outside [2000-01-01, now + 1 day]", path)
    return ms


def _decimal(value: Any, path: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str | float):
        raise ContractError(R_WRONG_TYPE, "must be a decimal number", path)
    try:
        number = Decimal(str(value))
    except InvalidOperation as exc:
        raise ContractError(R_BAD_VALUE, f"not a decimal number: {str(value)[:40]!r}", path) from exc
    if not number.is_finite() or number < 0 or number > MAX_AMOUNT:
        raise ContractError(R_BAD_VALUE, "must be a finite amount in [0, 1e12]", path)
    if number.as_tuple().exponent < -MAX_AMOUNT_PLACES:  # type: ignore[operator]
        raise ContractError(R_BAD_VALUE, f"at most {MAX_AMOUNT_PLACES} decimal places", path)
    return number


def _int(value: Any, path: str, low: int, high: int) -> int:
    if isinstance(value, Decimal) and value.is_finite():
        if _huge(value):  # int() of it could run for minutes
            raise ContractError(R_BAD_VALUE, f"must be in [{low}, {high}]", path)
        if value == value.to_integral_value():
            value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(R_WRONG_TYPE, "must be an integer", path)
    if not low <= value <= high:
        shown = value if abs(value) < 10**MAX_NUMBER_EXPONENT else "a larger number"
        raise ContractError(R_BAD_VALUE, f"must be in [{low}, {high}], got {shown}", path)
    return int(value)


# --- decoding -----------------------------------------------------------------------------------
def decode_json(raw: bytes | None) -> dict[str, Any]:
    """Bytes → JSON object, with money-safe decimals; the reasons a payload fails before fields."""
    if not raw:
        raise ContractError(R_EMPTY, "the message has no value")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise ContractError(R_TOO_LARGE, f"{len(raw)} bytes > {MAX_PAYLOAD_BYTES}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ContractError(R_NOT_UTF8, f"invalid UTF-8 at byte {exc.start}") from exc
    try:
        obj = json.loads(text, parse_float=Decimal)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise ContractError(R_BAD_JSON, str(exc)[:200]) from exc
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits (Python's int/str limit)
        raise ContractError(R_BAD_JSON, str(exc)[:200]) from exc
    if not isinstance(obj, dict):
        raise ContractError(R_NOT_OBJECT, f"the top level must be a JSON object, got {type(obj).__name__}")
    if _LONE_SURROGATE_ESCAPE.search(raw):
        _refuse_lone_surrogates(obj, "")
    return obj


def _refuse_lone_surrogates(value: Any, path: str) -> None:
    """JSON can escape half a UTF-16 pair (``"\\ud800"``); such a string cannot be written back as UTF-8.

    Only called when the payload has such an escape (a proper pair, e.g. an escaped emoji, decodes
    to one character and passes), so ordinary payloads pay one byte search.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ContractError(R_NOT_UTF8, "a string holds a lone UTF-16 surrogate escape", path or None) from exc
    elif isinstance(value, dict):
        for key, item in value.items():
            _refuse_lone_surrogates(key, path)
            _refuse_lone_surrogates(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_lone_surrogates(item, f"{path}[{i}]")


def _common(obj: dict[str, Any], now: int | None) -> tuple[int, str, str, int]:
    version = obj.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version not in SUPPORTED_SCHEMA_VERSIONS:
        raise ContractError(
            R_SCHEMA,
            f"schema_version {version!r} is not one of {sorted(SUPPORTED_SCHEMA_VERSIONS)}",
            "schema_version",
        )
    event_id = _id(obj, "event_id", "event_id")
    user_id = _id(obj, "user_id", "user_id")
    ts_ms = parse_ts(_require(obj, "ts", "ts"), "ts", now)
    return version, event_id or "", user_id or "", ts_ms


def parse_review(obj: dict[str, Any], now: int | None = None) -> Event:
    version, event_id, user_id, ts_ms = _common(obj, now)
    clipped: list[str] = []
    text = _require(obj, "text", "text")
    if not isinstance(text, str):
        raise ContractError(R_WRONG_TYPE, f"must be a string, got {type(text).__name__}", "text")
    if not text.strip() or not clean_text(text[:MAX_TEXT_CHARS]):
        raise ContractError(R_BAD_VALUE, "must hold readable text (not only control or zero-width characters)", "text")
    if len(text) > MAX_TEXT_CHARS:
        text = text[:MAX_TEXT_CHARS]
        clipped.append("text")
    rating = obj.get("rating")
    return Event(
        kind="review",
        schema_version=version,
        event_id=event_id,
        user_id=user_id,
        ts_ms=ts_ms,
        product_id=_id(obj, "product_id", "product_id"),
        order_id=_id(obj, "order_id", "order_id", required=False),
        rating=None if rating is None else _int(rating, "rating", 1, 5),
        text=text,
        clipped=tuple(clipped),
    )


def parse_click(obj: dict[str, Any], now: int | None = None) -> Event:
    version, event_id, user_id, ts_ms = _common(obj, now)
    clipped: list[str] = []
    action = _require(obj, "action", "action")
    if not isinstance(action, str):
        raise ContractError(R_WRONG_TYPE, f"must be a string, got {type(action).__name__}", "action")
    if action not in CLICK_ACTIONS:
        raise ContractError(R_BAD_VALUE, f"must be one of {', '.join(CLICK_ACTIONS)}", "action")
    query = _opt_str(obj, "query", "query", MAX_TITLE_CHARS, clipped)
    product_id = _id(obj, "product_id", "product_id", required=action != "search")
    if action == "search" and not (query or product_id):
        raise ContractError(R_MISSING, "a search needs a query", "query")
    return Event(
        kind="click",
        schema_version=version,
        event_id=event_id,
        user_id=user_id,
        ts_ms=ts_ms,
        product_id=product_id,
        action=action,
        title=_opt_str(obj, "title", "title", MAX_TITLE_CHARS, clipped),
        category=_opt_str(obj, "category", "category", MAX_ID_CHARS, clipped),
        query=query,
        clipped=tuple(clipped),
    )


def parse_order(obj: dict[str, Any], now: int | None = None) -> Event:
    version, event_id, user_id, ts_ms = _common(obj, now)
    clipped: list[str] = []
    raw_items = _require(obj, "items", "items")
    if not isinstance(raw_items, list):
        raise ContractError(R_WRONG_TYPE, "must be a list", "items")
    if not raw_items:
        raise ContractError(R_BAD_VALUE, "an order needs at least one item", "items")
    if len(raw_items) > MAX_ORDER_ITEMS:
        raise ContractError(R_TOO_MANY_ITEMS, f"{len(raw_items)} items > {MAX_ORDER_ITEMS}", "items")
    items = []
    for i, item in enumerate(raw_items):
        path = f"items[{i}]"
        if not isinstance(item, dict):
            raise ContractError(R_WRONG_TYPE, "must be an object", path)
        items.append(
            OrderItem(
                product_id=_id(item, "product_id", f"{path}.product_id") or "",
                price=_decimal(_require(item, "price", f"{path}.price"), f"{path}.price"),
                quantity=_int(_require(item, "quantity", f"{path}.quantity"), f"{path}.quantity", 1, 100_000),
                title=_opt_str(item, "title", f"{path}.title", MAX_TITLE_CHARS, clipped),
                category=_opt_str(item, "category", f"{path}.category", MAX_ID_CHARS, clipped),
            )
        )
    currency = _require(obj, "currency", "currency")
    if isinstance(currency, str) and not currency.isascii():
        currency = unicodedata.normalize("NFKC", currency)  # ＣＮＹ is CNY, not a currency of its own
    if (
        not isinstance(currency, str)
        or len(currency) != 3
        or not currency.isascii()
        or not currency.isalpha()
        or not currency.isupper()
    ):
        raise ContractError(R_BAD_VALUE, "must be an ISO-4217 code such as CNY", "currency")
    return Event(
        kind="order",
        schema_version=version,
        event_id=event_id,
        user_id=user_id,
        ts_ms=ts_ms,
        order_id=_id(obj, "order_id", "order_id"),
        items=tuple(items),
        total=_decimal(_require(obj, "total", "total"), "total"),
        currency=currency,
        clipped=tuple(clipped),
    )


_PARSERS = {"review": parse_review, "click": parse_click, "order": parse_order}


def parse_event(kind: EventKind, raw: bytes | None, now: int | None = None) -> Event:
    """Validate one raw Kafka value as an event of ``kind``; raises ``ContractError``."""
    obj = decode_json(raw)
    try:
        return _PARSERS[kind](obj, now)
    except RecursionError as exc:  # pathological nesting inside a field
        raise ContractError(R_BAD_VALUE, "nesting too deep") from exc


def event_to_dict(event: Event) -> dict[str, Any]:
    """The canonical JSON form of a valid event (what the simulator writes)."""
    out: dict[str, Any] = {
        "schema_version": event.schema_version,
        "event_id": event.event_id,
        "user_id": event.user_id,
        "ts": event.ts_ms,
    }
    if event.kind == "review":
        out.update(product_id=event.product_id, text=event.text)
        if event.order_id:
            out["order_id"] = event.order_id
        if event.rating is not None:
            out["rating"] = event.rating
    elif event.kind == "click":
        out.update(action=event.action)
        for name in ("product_id", "title", "category", "query"):
            if getattr(event, name) is not None:
                out[name] = getattr(event, name)
    else:
        out.update(
            order_id=event.order_id,
            items=[
                {
                    k: v
                    for k, v in {
                        "product_id": it.product_id,
                        "title": it.title,
                        "category": it.category,
                        "price": str(it.price),
                        "quantity": it.quantity,
                    }.items()
                    if v is not None
                }
                for it in event.items
            ],
            total=str(event.total),
            currency=event.currency,
        )
    return out


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; Decimals as strings (exact), non-ASCII kept readable."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
