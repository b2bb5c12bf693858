"""A process pool with a per-item deadline: a worker stuck on one item is killed and replaced, the rest go on.

`multiprocessing.Pool` and `concurrent.futures` cannot cancel a running task, so one pathological video
(a decoder loop, a gigantic file) would stall a shard forever. Here each worker is a long-lived process
(so per-process state such as the OCR model loads once) fed one item at a time over its own pipe.

Each worker runs under a memory limit (RLIMIT_DATA: the private writable memory a process may map, i.e.
heap, anonymous mmaps and thread stacks, without counting shared libraries or address space merely
reserved; RLIMIT_AS would count the ~1 GB of reserved-but-unused address space every worker has), set to
what it maps at start plus `memory_limit_mb`. An
allocation over it fails with MemoryError (FFmpeg: ENOMEM) in that worker only, which reports RESOURCE_LIMIT
and is replaced; the pod's OOM killer never sees it. Every outcome carries the worker's peak RSS.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import multiprocessing.util
import os
import resource
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from kangaroo.process_memory import data_segment_bytes, peak_rss_kb

log = logging.getLogger(__name__)

OK, ERROR, TIMEOUT, CRASHED = "ok", "error", "timeout", "crashed"
RESOURCE_LIMIT = "resource_limit"  # the item ran the worker out of its memory limit
FAILED = "failed"  # the item raised one of the pool's `fail_on` errors: the caller should stop


@dataclass
class Outcome:
    """What happened to one item: status OK with `value`, or ERROR/TIMEOUT/CRASHED with `error` text."""

    index: int
    status: str
    value: Any = None
    error: str | None = None
    peak_rss_kb: int = 0


READY = "ready"
SOCKET_PATH_MAX = 107  # bytes in a Unix socket's sun_path, without the trailing NUL
SOCKET_NAME_ROOM = 40  # what multiprocessing appends: "/pymp-xxxxxxxx/listener-xxxxxxxx"
SHORT_TEMP_DIRS = ("/tmp", "/var/tmp", "/dev/shm")


def keep_socket_paths_short() -> None:
    """Give multiprocessing a short temp dir when TMPDIR is too deep for a Unix socket path.

    The fork server listens on a socket under multiprocessing's temp dir, and the local pipeline run sets
    TMPDIR inside the project (`work/tmp/...`): in a deep checkout that passes the 107-byte limit and every
    worker start fails with "AF_UNIX path too long". multiprocessing creates its dir once per process, so
    creating it here, under a short base, is enough.
    """
    if len(os.fsencode(tempfile.gettempdir())) + SOCKET_NAME_ROOM <= SOCKET_PATH_MAX:
        return
    short = next((d for d in SHORT_TEMP_DIRS if os.access(d, os.W_OK | os.X_OK)), None)
    if short is None:
        log.warning(
            "TMPDIR %s is too long for Unix socket paths and no short temp dir is writable",
            tempfile.gettempdir(),
        )
        return
    previous, tempfile.tempdir = tempfile.tempdir, short
    try:
        multiprocessing.util.get_temp_dir()
    finally:
        tempfile.tempdir = previous


def limit_memory(limit_mb: int | None) -> None:
    """Let this process allocate at most `limit_mb` MiB of private writable memory beyond what it maps now
    (RLIMIT_DATA; None: no cap). Relative to the start, so a worker forked from a big parent (start method
    `fork`) gets the same budget as one from the small fork server."""
    if limit_mb:
        limit = data_segment_bytes() + limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _worker_loop(
    conn: Connection,
    fn: Callable[[Any], Any],
    initializer: Callable[[], None] | None,
    memory_limit_mb: int | None = None,
    fail_on: tuple[type[BaseException], ...] = (),
) -> None:
    # The limit covers start-up too: the worker's whole footprint must fit, not just one item's.
    limit_memory(memory_limit_mb)
    # Start-up (imports, model loads) happens before READY, so it never counts against an item's deadline.
    if initializer is not None:
        initializer()
    conn.send(READY)
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        index, item = task
        try:
            result = fn(item)
        except Exception as err:  # noqa: BLE001 - any failure of one item is reported, never fatal
            detail = "".join(traceback.format_exception_only(type(err), err)).strip()
            if isinstance(err, MemoryError):
                status = RESOURCE_LIMIT
            elif isinstance(err, fail_on):
                status = FAILED
            else:
                status = ERROR
            conn.send((index, status, None, detail, peak_rss_kb()))
        else:
            conn.send((index, OK, result, None, peak_rss_kb()))


@dataclass
class _Worker:
    process: mp.process.BaseProcess
    conn: Connection
    index: int | None = None
    deadline: float = 0.0
    ready: bool = False


class DeadlinePool:
    """Run `fn(item)` in `workers` processes; each call gets at most `timeout_s` seconds."""

    def __init__(
        self,
        fn: Callable[[Any], Any],
        workers: int,
        timeout_s: float,
        start_method: str,
        initializer: Callable[[], None] | None = None,
        startup_timeout_s: float = 600.0,
        memory_limit_mb: int | None = None,
        fail_on: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.fn = fn
        self.memory_limit_mb = memory_limit_mb
        self.fail_on = fail_on
        self.peak_rss_kb = 0
        self.initializer = initializer
        self.startup_timeout_s = startup_timeout_s
        self.num_workers = max(1, workers)
        self.timeout_s = timeout_s
        self.context = mp.get_context(start_method)
        if start_method == "forkserver":
            keep_socket_paths_short()
            # Preload the worker's modules in the fork server (new workers start in milliseconds), and not
            # `__main__`, its default: re-importing a caller's unguarded script there would recurse.
            self.context.set_forkserver_preload([fn.__module__])
        self.replaced = 0

    def _start(self) -> _Worker:
        parent, child = self.context.Pipe()
        process = self.context.Process(
            target=_worker_loop,
            args=(child, self.fn, self.initializer, self.memory_limit_mb, self.fail_on),
            daemon=True,
        )
        process.start()
        child.close()
        # Until READY arrives, `deadline` bounds the start-up instead of an item.
        return _Worker(process, parent, deadline=time.monotonic() + self.startup_timeout_s)

    @staticmethod
    def _stop(worker: _Worker, kill: bool) -> None:
        if kill:
            worker.process.kill()
        else:
            try:
                worker.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        worker.process.join(timeout=10)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.conn.close()

    def map_unordered(self, items: Iterable[Any]) -> Iterator[Outcome]:
        """Yield one Outcome per item, in completion order."""
        pending = list(enumerate(items))
        pending.reverse()
        workers = [self._start() for _ in range(min(self.num_workers, len(pending)))]
        try:
            while pending or any(w.index is not None for w in workers):
                for worker in workers:
                    if worker.ready and worker.index is None and pending:
                        index, item = pending.pop()
                        worker.conn.send((index, item))
                        worker.index, worker.deadline = index, time.monotonic() + self.timeout_s
                waiting = [w for w in workers if w.index is not None or not w.ready]
                timeout = max(0.0, min(w.deadline for w in waiting) - time.monotonic())
                ready = wait([w.conn for w in waiting], timeout=timeout)
                for position, worker in enumerate(workers):
                    if not worker.ready:
                        self._check_started(worker, worker.conn in ready)
                        continue
                    if worker.index is None:
                        continue
                    if worker.conn in ready:
                        outcome = self._receive(worker)
                    elif time.monotonic() >= worker.deadline:
                        outcome = Outcome(
                            worker.index, TIMEOUT, error=f"no result after {self.timeout_s:g} s"
                        )
                    else:
                        continue
                    self.peak_rss_kb = max(self.peak_rss_kb, outcome.peak_rss_kb)
                    if outcome.status in (TIMEOUT, CRASHED, RESOURCE_LIMIT):
                        log.warning(
                            "item %d: %s (%s); replacing worker", outcome.index, outcome.status, outcome.error
                        )
                        self._stop(worker, kill=True)
                        workers[position] = self._start()
                        self.replaced += 1
                    else:
                        worker.index = None
                    yield outcome
        finally:
            for worker in workers:
                self._stop(worker, kill=worker.index is not None or not worker.ready)

    def _check_started(self, worker: _Worker, has_message: bool) -> None:
        """Mark a starting worker ready, or raise if it died or hung while starting (a broken install,
        not a bad video: nothing could run)."""
        if has_message:
            try:
                message = worker.conn.recv()
            except (EOFError, OSError) as err:
                worker.process.join(timeout=5)
                raise RuntimeError(
                    f"worker process died while starting (exit code {worker.process.exitcode})"
                ) from err
            worker.ready = message == READY
        elif time.monotonic() >= worker.deadline:
            raise RuntimeError(f"worker process not ready after {self.startup_timeout_s:g} s")

    @staticmethod
    def _receive(worker: _Worker) -> Outcome:
        try:
            index, status, value, error, rss_kb = worker.conn.recv()
            return Outcome(index, status, value, error, rss_kb)
        except (EOFError, OSError):
            worker.process.join(timeout=5)
            code = worker.process.exitcode
            return Outcome(worker.index, CRASHED, error=f"worker process died (exit code {code})")
