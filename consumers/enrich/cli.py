"""``shoppulse run enrich``: build the stage from settings and flags, serve health, run."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from shoppulse.consumers import metrics
from shoppulse.consumers.settings import Settings, with_updates

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bootstrap", help="HOST:PORT[,...] (default: settings kafka.bootstrap_servers)")
    parser.add_argument("--bundle", type=Path, help="model bundle directory (default: the packaged default)")
    parser.add_argument("--group", help="consumer group id (default: shoppulse-enrich)")
    parser.add_argument("--exactly-once", action="store_true", help="transactional consume-transform-produce")
    parser.add_argument("--max-batch", type=int)
    parser.add_argument("--max-wait-ms", type=int)
    parser.add_argument("--http-port", type=int, help="metrics/health port (default: settings http.enrich_port)")


def settings_for(args: argparse.Namespace) -> Settings:
    from shoppulse.consumers.cli import settings_from_args

    settings = settings_from_args(args)
    settings.enrich = with_updates(
        settings.enrich,
        bundle_dir=args.bundle,
        group_id=args.group,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        exactly_once=True if args.exactly_once else None,
    )
    settings.http = with_updates(settings.http, enrich_port=args.http_port)
    return settings


def load_predictor(settings: Settings) -> Any:
    """The enrich stage's model: one bundle, or its heads taken from several (``models.serving.composed``).

    A bundle without an interest head (a user's own sentiment model) gets the packaged default's
    interest head unless ``enrich.default_interest`` is false; ``enrich.interest_bundle_dir``
    names another bundle to serve the interest head instead.
    """
    from shoppulse.models.serving.composed import ComposedPredictor, load_sources
    from shoppulse.models.serving.inference import Predictor

    enrich = settings.enrich
    options = {"intra_op_threads": enrich.intra_op_threads, "sessions": enrich.sessions, "providers": enrich.providers}
    sources = load_sources(enrich.bundle_dir, enrich.interest_bundle_dir, enrich.default_interest)
    [(only, heads), *others] = sources
    if not others and heads == list(only.heads):  # one bundle serving all its heads: no composition
        return Predictor(only, **options)
    return ComposedPredictor([(Predictor(bundle, **options), heads) for bundle, heads in sources])


def build_stage(settings: Settings, install_signals: bool = True):
    from shoppulse.consumers.enrich.enricher import STAGE, Enricher
    from shoppulse.consumers.enrich.stage import EnrichStage
    from shoppulse.consumers.tracing import stage_tracer
    from shoppulse.models.serving.bundle import BundleError
    from shoppulse.models.serving.keywords import init_jieba, load_aspects
    from shoppulse.models.serving.taxonomy import default_taxonomy

    try:
        predictor = load_predictor(settings)
    except (BundleError, FileNotFoundError, RuntimeError) as exc:
        raise SystemExit(f"cannot load the model bundle at {settings.enrich.bundle_dir}: {exc}") from exc
    bundle = predictor.bundle
    metrics.MODEL_INFO.labels(STAGE, bundle.name, bundle.version, predictor.precision).set(1)
    metrics.MODEL_LOADED.labels(STAGE).set(1)
    log.info(
        "model %s %s (%s, %d session(s) x %d thread(s), heads %s)",
        bundle.name,
        bundle.version,
        predictor.precision,
        predictor.sessions,
        predictor.intra_op_threads,
        list(bundle.heads),
    )
    init_jieba()
    enricher = Enricher(
        predictor,
        default_taxonomy(),
        load_aspects(),
        title_cache_size=settings.enrich.title_cache_size,
        keywords_top_k=settings.enrich.keywords_top_k,
        batch_size=min(settings.enrich.max_batch, 64),
    )
    tracer = stage_tracer(settings.tracing, STAGE)
    return EnrichStage(settings, enricher, install_signals=install_signals, tracer=tracer)


def run(args: argparse.Namespace) -> int:
    """Serve /metrics and the probes first, then load the model: a slow load is visible, not silent.

    While the bundle loads (seconds for the default, much longer for a large model on a slow
    volume) ``shoppulse_model_loaded`` is 0 and /readyz says why, which is what the
    ``ShoppulseModelNotLoaded`` alert watches. A bundle that fails verification still exits at
    once with the reason (the pod restarts; Kubernetes reports the crash loop).
    """
    from shoppulse.consumers.enrich.enricher import STAGE
    from shoppulse.consumers.health import HealthServer

    settings = settings_for(args)
    stage: Any = None

    def readiness() -> tuple[bool, dict[str, Any]]:
        if stage is None:
            return False, {"model_loaded": False, "reason": f"loading the model bundle {settings.enrich.bundle_dir}"}
        return stage.readiness()

    metrics.MODEL_LOADED.labels(STAGE).set(0)
    health = HealthServer(settings.http.host, settings.http.enrich_port, readiness).start()
    print(f"enrich: metrics http://{settings.http.host}:{health.port}/metrics", file=sys.stderr, flush=True)
    try:
        stage = build_stage(settings)
        return stage.run()
    finally:
        health.stop()
