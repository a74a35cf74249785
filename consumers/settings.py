"""The one typed settings object for every shoppulse process.

Why one object: the enrich stage (librdkafka), the profiles stage (aiokafka under
faust), the Helm chart and the docs must agree on every knob. Values come, in
rising priority, from the defaults below, an optional YAML file named by
``SHOPPULSE_CONFIG``, and environment variables ``SHOPPULSE_<GROUP>__<FIELD>``
(for example ``SHOPPULSE_ENRICH__MAX_BATCH=64``). Command-line flags override
individual fields at the call site.

Kafka client options that are not shoppulse's business (``security.protocol``,
``sasl.*``, ``ssl.*``, ...) pass through untouched: put them under
``kafka.options`` in YAML, or set ``SHOPPULSE_KAFKA__OPTIONS`` to a JSON object,
or set one per variable as ``SHOPPULSE_KAFKA_OPT_<KEY>`` where ``_`` becomes ``.``
(``SHOPPULSE_KAFKA_OPT_SASL_MECHANISM=SCRAM-SHA-512`` → ``sasl.mechanism``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shoppulse.models.serving.bundle import (
    DEFAULT_BUNDLE,  # the default of enrich.bundle_dir; importers read it here too
)

ENV_PREFIX = "SHOPPULSE_"
KAFKA_OPT_PREFIX = "SHOPPULSE_KAFKA_OPT_"
CONFIG_FILE_ENV = "SHOPPULSE_CONFIG"


class _Group(BaseModel):
    """A settings group: unknown keys are errors, so a typo never silently falls back to a default."""

    model_config = ConfigDict(extra="forbid")


class KafkaSettings(_Group):
    """Where the cluster is and how to talk to it."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="HOST:PORT[,HOST:PORT...] of the cluster")
    options: dict[str, str] = Field(
        default_factory=dict,
        description="librdkafka passthrough (security.protocol, sasl.*, ssl.*); also mapped for aiokafka",
    )
    session_timeout_ms: int = Field(10_000, ge=1_000, description="consumer group session timeout")
    max_poll_interval_ms: int = Field(300_000, ge=10_000, description="max time between polls before eviction")
    replication_factor: int = Field(1, ge=1, description="used by `topics ensure`")
    partitions: int = Field(6, ge=1, description="used by `topics ensure`")
    input_retention_ms: int = Field(
        7 * 24 * 3600 * 1000,
        ge=60_000,
        description="retention of inputs, insights and signals (`topics ensure`)",
    )

    @field_validator("options", mode="before")
    @classmethod
    def _options_as_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value


class TopicSettings(_Group):
    """Topic names, so a shared cluster can prefix or rename them."""

    reviews: str = "reviews"
    clicks: str = "clicks"
    orders: str = "orders"
    review_insights: str = "review-insights"
    user_signals: str = "user-signals"
    user_profiles: str = "user-profiles"
    dead_letter: str = "dead-letter"
    insight_facts: str = "insight-facts"
    product_insights: str = "product-insights"
    category_insights: str = "category-insights"
    alerts: str = "alerts"

    def inputs(self) -> list[str]:
        return [self.reviews, self.clicks, self.orders]

    def outputs(self) -> list[str]:
        return [self.review_insights, self.user_signals, self.dead_letter]


class EnrichSettings(_Group):
    """Stage 1: consume, infer, emit."""

    group_id: str = Field("shoppulse-enrich", description="consumer group of stage 1")
    bundle_dir: Path = Field(DEFAULT_BUNDLE, description="model bundle directory (default: the packaged bundle)")
    interest_bundle_dir: Path | None = Field(
        None, description="a bundle whose interest head replaces bundle_dir's (two bundles served side by side)"
    )
    default_interest: bool = Field(
        True, description="a bundle without an interest head gets the packaged default's (false: no interest tags)"
    )
    max_batch: int = Field(64, ge=1, le=4096, description="events per micro-batch, at most")
    max_wait_ms: int = Field(20, ge=0, le=60_000, description="latency budget to fill a micro-batch")
    max_in_flight: int = Field(2_000, ge=1, description="events buffered before partitions are paused")
    commit_interval_ms: int = Field(
        1_000, ge=0, le=60_000, description="at-least-once: commit delivered offsets at most this often (0: each batch)"
    )
    exactly_once: bool = Field(False, description="transactional consume-transform-produce")
    transactional_id: str = Field("shoppulse-enrich", description="prefix; the host name is appended")
    title_cache_size: int = Field(50_000, ge=0, description="product titles whose interest tags are cached")
    intra_op_threads: int = Field(
        0, ge=0, description="ONNX Runtime threads per session; 0 = 1 (CPU) or the CPU quota ÷ sessions"
    )
    sessions: int = Field(
        0, ge=0, description="ONNX Runtime sessions run side by side; 0 = CPU quota ÷ threads per session (CUDA: 1)"
    )
    providers: Literal["cpu", "auto", "cuda"] = Field(
        "cpu", description="ONNX Runtime execution provider; auto = CUDA when onnxruntime-gpu has it"
    )
    shutdown_timeout_s: float = Field(30.0, gt=0, description="SIGTERM drain budget")
    keywords_top_k: int = Field(5, ge=0, le=50, description="jieba keywords per review")


class ProfileSettings(_Group):
    """Stage 2: per-user profiles."""

    app_id: str = Field("shoppulse-profiles", description="faust app id = consumer group of stage 2")
    half_life_days: float = Field(7.0, gt=0, description="interest decay half-life (event time)")
    top_k: int = Field(5, ge=1, le=100, description="top interest tags in a profile")
    recent_products: int = Field(20, ge=0, le=200, description="recent products kept per user")
    dedup_window: int = Field(
        256, ge=1, le=1024, description="event_ids remembered per user (a shop's repeated events; replays are exact)"
    )
    max_interests: int = Field(64, ge=1, le=256, description="interest tags kept per user (the strongest)")
    interest_floor: float = Field(1e-6, ge=0, lt=1, description="decayed interest scores below this are forgotten")
    publish_interval_s: float = Field(1.0, ge=0, description="at most one publish per user per interval")
    store: Literal["memory", "rocksdb"] = Field("memory", description="table store; rocksdb in production")
    data_dir: Path = Field(Path("./.cache/profiles"), description="local table store (one per worker)")
    advertised_host: str | None = Field(
        None, description="host other profile workers use to reach this one (default: http.host)"
    )


class InsightSettings(_Group):
    """Stage 3: product and category figures in event-time windows, and alerts."""

    app_id: str = Field("shoppulse-insights", description="faust app id = consumer group of stage 3")
    window_s: int = Field(3600, ge=1, le=86_400, description="tumbling window length (event time)")
    rolling_s: int = Field(86_400, ge=1, le=30 * 86_400, description="the rolling figures' span (whole windows)")
    retention_s: int = Field(
        172_800, ge=1, le=90 * 86_400, description="windows kept per product/category (>= rolling_s + window_s)"
    )
    grace_s: int = Field(600, ge=0, le=86_400, description="how late after its window's end an event still counts")
    publish_interval_s: float = Field(1.0, ge=0, description="at most one publish per product/category per interval")
    alert_z: float = Field(3.29, gt=0, le=10, description="z of the Wilson bounds an alert compares")
    alert_min_reviews: int = Field(20, ge=1, description="reviews a window needs before it can alert")
    alert_min_complaints: int = Field(5, ge=1, description="negative mentions of an aspect before it can surge")
    alert_baseline_windows: int = Field(24, ge=1, le=720, description="trailing windows an alert compares to")
    alert_min_baseline_reviews: int = Field(30, ge=1, description="reviews the baseline needs before alerting")
    alert_min_products: int = Field(
        3, ge=2, le=16, description="products a category's complaints must span for a category-wide aspect surge"
    )
    store: Literal["memory", "rocksdb"] = Field("memory", description="table store; rocksdb in production")
    data_dir: Path = Field(Path("./.cache/insights"), description="local table store (one per worker)")
    advertised_host: str | None = Field(
        None, description="host other insights workers use to reach this one (default: http.host)"
    )

    @model_validator(mode="after")
    def _retention_holds_the_rolling_span(self) -> InsightSettings:
        if self.retention_s < self.rolling_s + self.window_s:
            raise ValueError(f"retention_s ({self.retention_s}) must be at least rolling_s + window_s")
        return self


class HttpSettings(_Group):
    """Metrics and health endpoints (and the profile lookup on stage 2)."""

    host: str = Field("127.0.0.1", description="bind address; 0.0.0.0 in containers")
    enrich_port: int = Field(9464, ge=0, le=65535, description="stage 1 /metrics /healthz /readyz")
    profiles_port: int = Field(6066, ge=0, le=65535, description="stage 2 HTTP: metrics, health, profiles")
    insights_port: int = Field(6067, ge=0, le=65535, description="stage 3 HTTP: metrics, health, insights, alerts")


class TracingSettings(_Group):
    """OpenTelemetry spans, one per enrich batch; off unless an endpoint is set."""

    otlp_endpoint: str = Field(
        "", description="OTLP/HTTP traces URL, e.g. http://collector:4318/v1/traces (empty: no tracing)"
    )
    service_name: str = Field("shoppulse", description="service.name of the spans (the stage is an attribute)")


class Settings(BaseSettings):
    """Everything a shoppulse process can be told; see the settings table in docs/operations.md."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    enrich: EnrichSettings = Field(default_factory=EnrichSettings)
    profiles: ProfileSettings = Field(default_factory=ProfileSettings)
    insights: InsightSettings = Field(default_factory=InsightSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING, ERROR")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _YamlAndKafkaOptSource(settings_cls))

    def librdkafka(self, **overrides: Any) -> dict[str, Any]:
        """Client config for confluent-kafka: bootstrap plus passthrough options, and librdkafka's
        own log lines sent through Python logging (``consumers.kafka_log``) instead of stderr."""
        from shoppulse.consumers.kafka_log import kafka_logger

        conf: dict[str, Any] = {"bootstrap.servers": self.kafka.bootstrap_servers, "logger": kafka_logger()}
        conf.update(self.kafka.options)
        conf.update(overrides)
        return conf


class _YamlAndKafkaOptSource(PydanticBaseSettingsSource):
    """Lowest-priority source: the YAML file, then ``SHOPPULSE_KAFKA_OPT_*`` variables."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        path = os.environ.get(CONFIG_FILE_ENV)
        if path:
            file = Path(path)
            if not file.is_file():
                raise FileNotFoundError(f"{CONFIG_FILE_ENV}={path}: no such file")
            loaded = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{path}: the settings file must hold a mapping at the top level")
            data = loaded
        opts = kafka_opts_from_env(os.environ)
        if opts:
            kafka = dict(data.get("kafka") or {})
            kafka["options"] = {**(kafka.get("options") or {}), **opts}
            data["kafka"] = kafka
        return data


def kafka_opts_from_env(environ: dict[str, str] | os._Environ[str]) -> dict[str, str]:
    """``SHOPPULSE_KAFKA_OPT_SASL_MECHANISM=X`` → ``{"sasl.mechanism": "X"}``."""
    return {
        key[len(KAFKA_OPT_PREFIX) :].lower().replace("_", "."): value
        for key, value in environ.items()
        if key.upper().startswith(KAFKA_OPT_PREFIX)
    }


_G = TypeVar("_G", bound=BaseModel)


def with_updates(group: _G, **updates: Any) -> _G:
    """A validated copy of a settings group with the given fields changed; ``None`` means "flag not given".

    A ValidationError names the field with its group (``kafka.replication_factor``), as one raised by
    ``Settings`` does, so ``describe_validation_error`` names the variable that really sets it.
    """
    given = {key: value for key, value in updates.items() if value is not None}
    if not given:
        return group
    try:
        return group.model_validate(group.model_dump() | given)
    except ValidationError as exc:
        name = next((n for n, f in Settings.model_fields.items() if f.annotation is type(group)), None)
        if name is None:
            raise
        kept = ("type", "input", "ctx")
        details = [{key: e[key] for key in kept if key in e} | {"loc": (name, *e["loc"])} for e in exc.errors()]
        raise ValidationError.from_exception_data(exc.title, details) from None  # type: ignore[arg-type]


def load_settings(**overrides: Any) -> Settings:
    """Build settings from file and env; ``overrides`` are nested dicts from CLI flags."""
    return Settings(**overrides)


# Variables shoppulse reads outside the settings object.
OTHER_ENV_VARS = frozenset({"SHOPPULSE_CACHE_DIR"})


def unknown_env_vars(environ: Mapping[str, str]) -> list[str]:
    """Each ``SHOPPULSE_*`` variable no setting reads, with the likeliest intended name.

    pydantic-settings ignores a variable whose group is misspelt (``SHOPPULSE_ENRCH__MAX_BATCH``),
    so a typo would silently leave the default in force.
    """
    import difflib

    known = env_var_names() | OTHER_ENV_VARS
    problems = []
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX.upper()) or upper in known or upper.startswith(KAFKA_OPT_PREFIX):
            continue
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.75)
        problems.append(f"{name} (did you mean {close[0]}?)" if close else name)
    return problems


def describe_validation_error(exc: ValidationError) -> str:
    """One line for a person: which setting, what is wrong with it, where settings come from."""
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "settings"
    loc = tuple(str(p) for p in first.get("loc", ()))
    variable = f"{ENV_PREFIX}{'__'.join(loc)}".upper()
    if len(loc) == 1 and loc[0] in Settings.model_fields:  # a check across the group's fields
        variable += "__*"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    message = first.get("msg", "invalid")
    return f"setting {where}: {message}{more}; it comes from {variable}, the {CONFIG_FILE_ENV} file or a flag"


def env_var_names() -> set[str]:
    """Every environment variable name a settings field can be set by (for docs and the chart test)."""
    names: set[str] = {CONFIG_FILE_ENV}
    for group_name, group_field in Settings.model_fields.items():
        annotation = group_field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            for field_name in annotation.model_fields:
                names.add(f"{ENV_PREFIX}{group_name}__{field_name}".upper())
        else:
            names.add(f"{ENV_PREFIX}{group_name}".upper())
    return names


def to_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce ``settings`` in a child process (or a pod)."""
    import json

    env: dict[str, str] = {}
    for group_name, group in settings.model_dump(mode="json").items():
        if isinstance(group, dict):
            for field_name, value in group.items():
                if value is None:
                    continue  # unset optional field (every one defaults to None): absent, not the string "None"
                key = f"{ENV_PREFIX}{group_name}__{field_name}".upper()
                env[key] = json.dumps(value) if isinstance(value, dict | list) else str(value)
        else:
            env[f"{ENV_PREFIX}{group_name}".upper()] = str(group)
    return env


def settings_table_markdown() -> str:
    """The settings table of docs/operations.md, generated from the fields so the docs cannot drift from the code."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for group_name, group_field in Settings.model_fields.items():
        annotation = group_field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            defaults = annotation()
            for field_name, field in annotation.model_fields.items():
                default = getattr(defaults, field_name)
                if isinstance(default, Path) and default == DEFAULT_BUNDLE:
                    shown = "packaged `models/bundles/default`"
                else:
                    shown = f"`{default}`" if default not in (None, {}, "") else "—"
                meaning = field.description or (
                    f"name of the `{field_name.replace('_', '-')}` topic" if group_name == "topics" else ""
                )
                rows.append(f"| `{ENV_PREFIX}{group_name.upper()}__{field_name.upper()}` | {shown} | {meaning} |")
        else:
            rows.append(
                f"| `{ENV_PREFIX}{group_name.upper()}` | `{group_field.default}` | {group_field.description or ''} |"
            )
    rows.append(f"| `{CONFIG_FILE_ENV}` | — | path of an optional YAML file with the same structure |")
    rows.append(
        f"| `{KAFKA_OPT_PREFIX}<KEY>` | — | one librdkafka option, `_` → `.` "
        "(e.g. `SHOPPULSE_KAFKA_OPT_SASL_MECHANISM`) |"
    )
    return "\n".join(rows)
