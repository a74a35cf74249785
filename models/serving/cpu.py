"""How many CPUs this process may really use, for sizing ONNX Runtime's thread pool.

Why not ``os.cpu_count()``: in a Kubernetes pod with ``limits.cpu: 2`` on a 64-core node,
``os.cpu_count()`` says 64. ONNX Runtime would start 64 spinning intra-op threads, the CFS
quota would throttle them, and latency would collapse. The quota lives in the cgroup:

* cgroup v2: ``<cgroup dir>/cpu.max`` holds ``"<quota> <period>"`` or ``"max <period>"``;
  the limit of a nested cgroup is the tightest of it and its ancestors.
* cgroup v1: ``cpu.cfs_quota_us`` (``-1`` = none) and ``cpu.cfs_period_us`` under the
  ``cpu`` controller mount.

Then the CPU affinity mask (``taskset``, cpusets: ``os.sched_getaffinity``), then
``os.cpu_count()``. A fractional quota is rounded *down* (at least 1): 1.5 CPUs of quota
with 2 busy threads means being throttled every period.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")
_V1_CPU_DIRS = ("cpu", "cpu,cpuacct", "cpuacct,cpu")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None


def _own_cgroup_paths(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """(v2 path, v1 cpu-controller path) of this process, from ``/proc/self/cgroup``."""
    text = _read(proc_cgroup)
    v2_path = v1_path = None
    for line in (text or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            v2_path = path
        elif "cpu" in controllers.split(","):
            v1_path = path
    return v2_path, v1_path


def _candidate_dirs(base: Path, own_path: str | None) -> list[Path]:
    """The process's own cgroup dir and its ancestors up to ``base`` (only those that exist).

    Inside a container with a cgroup namespace ``own_path`` is ``/`` and only ``base`` counts;
    on a host or without a namespace the nested directories carry the limits.
    """
    dirs = [base]
    if own_path and own_path != "/":
        current = base
        for part in Path(own_path.lstrip("/")).parts:
            current = current / part
            dirs.append(current)
    return [d for d in dirs if d.is_dir()]


def _v2_limit(dirs: list[Path]) -> float | None:
    limits = []
    for directory in dirs:
        text = _read(directory / "cpu.max")
        if not text:
            continue
        fields = text.split()
        if len(fields) != 2 or fields[0] == "max":
            continue
        try:
            quota, period = int(fields[0]), int(fields[1])
        except ValueError:
            continue
        if quota > 0 and period > 0:
            limits.append(quota / period)
    return min(limits) if limits else None


def _v1_limit(dirs: list[Path]) -> float | None:
    limits = []
    for directory in dirs:
        quota_text = _read(directory / "cpu.cfs_quota_us")
        period_text = _read(directory / "cpu.cfs_period_us")
        if quota_text is None or period_text is None:
            continue
        try:
            quota, period = int(quota_text), int(period_text)
        except ValueError:
            continue
        if quota > 0 and period > 0:
            limits.append(quota / period)
    return min(limits) if limits else None


def cgroup_cpu_limit(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> float | None:
    """The CPU quota in CPUs (may be fractional), or ``None`` when no quota is set."""
    root = Path(root)
    v2_path, v1_path = _own_cgroup_paths(Path(proc_cgroup))
    if (root / "cgroup.controllers").exists() or (root / "cpu.max").exists():
        return _v2_limit(_candidate_dirs(root, v2_path))
    for name in _V1_CPU_DIRS:
        base = root / name
        if base.is_dir():
            limit = _v1_limit(_candidate_dirs(base, v1_path))
            if limit is not None:
                return limit
    return None


def _affinity_count() -> int:
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return max(1, os.cpu_count() or 1)


def available_cpus(root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_SELF_CGROUP) -> int:
    """CPUs this process can use: min(cgroup quota rounded down, affinity mask), at least 1."""
    usable = _affinity_count()
    limit = cgroup_cpu_limit(root, proc_cgroup)
    if limit is not None:
        usable = min(usable, max(1, math.floor(limit)))
    return usable
