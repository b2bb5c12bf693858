"""SIGTERM for a job launcher: Argo stops a KFP task (the run was terminated in the UI) with SIGTERM; raising
LauncherStopped in the main thread lets the launcher's `finally` delete its cluster job before it exits."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from kangaroo.k8s.errors import LauncherStopped


@contextmanager
def sigterm_stops_launcher() -> Iterator[None]:
    """Within the block, SIGTERM raises LauncherStopped (main thread only: signals go there)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame):
        raise LauncherStopped(f"launcher got signal {signal.Signals(signum).name}")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
