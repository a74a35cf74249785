"""available_cpus reads the container's CPU quota, not the host's core count."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from shoppulse.models.serving.cpu import available_cpus, cgroup_cpu_limit


def affinity() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="ascii")


@pytest.fixture
def v2(tmp_path: Path) -> tuple[Path, Path]:
    """A fake cgroup v2 mount (cgroup namespace: the process sits at '/')."""
    root = tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpuset cpu io memory pids\n")
    proc = tmp_path / "proc_self_cgroup"
    write(proc, "0::/\n")
    return root, proc


def test_v2_fractional_quota_rounds_down(v2: tuple[Path, Path]) -> None:
    root, proc = v2
    write(root / "cpu.max", "150000 100000\n")
    assert cgroup_cpu_limit(root, proc) == pytest.approx(1.5)
    assert available_cpus(root, proc) == 1


def test_v2_quota_below_one_cpu_still_gives_one(v2: tuple[Path, Path]) -> None:
    root, proc = v2
    write(root / "cpu.max", "20000 100000\n")
    assert available_cpus(root, proc) == 1


def test_v2_unlimited_falls_back_to_affinity(v2: tuple[Path, Path]) -> None:
    root, proc = v2
    write(root / "cpu.max", "max 100000\n")
    assert cgroup_cpu_limit(root, proc) is None
    assert available_cpus(root, proc) == affinity()


def test_v2_quota_never_exceeds_affinity(v2: tuple[Path, Path]) -> None:
    root, proc = v2
    write(root / "cpu.max", f"{(affinity() + 8) * 100000} 100000\n")
    assert available_cpus(root, proc) == affinity()


def test_v2_nested_cgroup_takes_the_tightest_ancestor(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cgroup.controllers", "cpu\n")
    write(root / "cpu.max", "max 100000\n")
    write(root / "kubepods" / "cpu.max", "300000 100000\n")
    write(root / "kubepods" / "pod1" / "cpu.max", "max 100000\n")
    proc = tmp_path / "proc_self_cgroup"
    write(proc, "0::/kubepods/pod1\n")
    assert cgroup_cpu_limit(root, proc) == pytest.approx(3.0)
    assert available_cpus(root, proc) == min(3, affinity())


def test_v1_cfs_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu,cpuacct" / "cpu.cfs_quota_us", "50000\n")
    write(root / "cpu,cpuacct" / "cpu.cfs_period_us", "100000\n")
    proc = tmp_path / "proc_self_cgroup"
    write(proc, "4:cpu,cpuacct:/\n0::/\n")
    assert cgroup_cpu_limit(root, proc) == pytest.approx(0.5)
    assert available_cpus(root, proc) == 1


def test_v1_no_quota(tmp_path: Path) -> None:
    root = tmp_path / "cgroup"
    write(root / "cpu" / "cpu.cfs_quota_us", "-1\n")
    write(root / "cpu" / "cpu.cfs_period_us", "100000\n")
    proc = tmp_path / "proc_self_cgroup"
    write(proc, "2:cpu:/\n")
    assert cgroup_cpu_limit(root, proc) is None
    assert available_cpus(root, proc) == affinity()


def test_no_cgroup_files_at_all(tmp_path: Path) -> None:
    assert cgroup_cpu_limit(tmp_path / "nothing", tmp_path / "no_proc") is None
    assert available_cpus(tmp_path / "nothing", tmp_path / "no_proc") == affinity()


def test_garbage_in_cpu_max_is_ignored(v2: tuple[Path, Path]) -> None:
    root, proc = v2
    write(root / "cpu.max", "lots\n")
    assert available_cpus(root, proc) == affinity()
