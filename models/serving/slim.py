"""Keep one precision of a bundle, in place: the serving image ships the INT8 model only.

    python -m shoppulse.models.serving.slim [--precision int8] [DIR]   # DIR: the packaged default

The enrich stage serves INT8 by default, so the FP32 graph (about four times larger) only costs
image size there. Slimming drops the other ONNX files and their manifest entries; the remaining
files keep their hashes, so ``load_bundle`` still verifies the bundle, and a request for the
dropped precision resolves to the kept one (``Bundle.resolved_precision``). Tools that need FP32
(parity checks, rebuilding the torch model) need an unslimmed copy.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from shoppulse.models.serving.bundle import DEFAULT_BUNDLE, MANIFEST, PRECISIONS, BundleError, load_bundle


def keep_only(bundle_dir: Path, precision: str) -> list[str]:
    """Remove every model file but ``precision``'s from ``bundle_dir``; return the names removed."""
    bundle = load_bundle(bundle_dir, verify=True)
    if precision not in bundle.models:
        raise BundleError(f"{bundle_dir}: has no {precision} model (it has {', '.join(bundle.models)})")
    manifest = dict(bundle.manifest)
    dropped = [name for p, name in bundle.models.items() if p != precision]
    manifest["models"] = {precision: bundle.models[precision]}
    manifest["files"] = {name: digest for name, digest in manifest["files"].items() if name not in dropped}
    (bundle.path / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    for name in dropped:
        (bundle.path / name).unlink(missing_ok=True)
    load_bundle(bundle.path, verify=True)
    return dropped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shoppulse.models.serving.slim", description=__doc__)
    parser.add_argument("bundle", nargs="?", type=Path, default=DEFAULT_BUNDLE, help="default: the packaged bundle")
    parser.add_argument("--precision", choices=PRECISIONS, default="int8", help="the one to keep (default int8)")
    args = parser.parse_args(argv)
    try:
        dropped = keep_only(args.bundle, args.precision)
    except (BundleError, OSError) as exc:
        print(f"python -m shoppulse.models.serving.slim: {exc}", file=sys.stderr)
        return 2
    print(f"{args.bundle}: kept {args.precision}; removed {', '.join(dropped) or 'nothing'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
