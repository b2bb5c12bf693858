"""This process's memory as the kernel counts it: the data segment RLIMIT_DATA limits, and peak RSS."""

from __future__ import annotations

import os
import resource


def data_segment_bytes() -> int:
    """Private writable memory mapped now (/proc/self/statm `data`: what RLIMIT_DATA counts), 0 if unknown."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[5]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, IndexError, ValueError):
        return 0


def data_limit_bytes() -> int | None:
    """This process's RLIMIT_DATA in bytes, None if unlimited."""
    limit, _ = resource.getrlimit(resource.RLIMIT_DATA)
    return None if limit == resource.RLIM_INFINITY else limit


def peak_rss_kb() -> int:
    """Peak resident set size of this process (KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
