"""How many CPUs this process may use: the cgroup CPU quota and affinity, not the node's core count.

In a pod with `limits.cpu: 4` on a 64-core node, `os.cpu_count()` says 64: sizing a worker pool from it
starts 64 decoders that the CFS quota throttles to 4 cores' worth, with 16x the memory.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_limit(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs allowed by the cgroup quota (cgroup v2 `cpu.max`, else v1 `cpu.cfs_quota_us`), None if
    unlimited or unknown."""
    v2 = root / "cpu.max"
    try:
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = next(
            (d for d in (root / "cpu", root / "cpu,cpuacct", root) if (d / "cpu.cfs_quota_us").is_file()),
            None,
        )
        if v1 is not None:
            quota = int((v1 / "cpu.cfs_quota_us").read_text())
            period = int((v1 / "cpu.cfs_period_us").read_text())
            return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None
    return None


def available_cpus(root: Path = CGROUP_ROOT) -> int:
    """Whole CPUs this process can use: min(affinity, cgroup quota rounded down), at least 1."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    limit = cgroup_cpu_limit(root)
    if limit is not None:
        cpus = min(cpus, math.floor(limit))
    return max(1, cpus)
