"""`make bench`: run every benchmarks/bench_*.py in turn (or the ones named on the command line)."""

import importlib
import logging
import pkgutil
import sys
import time

import benchmarks
from kangaroo.logs import setup_logging

log = logging.getLogger("benchmarks")


def main(argv: list[str]) -> int:
    setup_logging("INFO")
    names = argv or sorted(
        m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_")
    )
    failed = []
    for name in names:
        log.info("=== %s ===", name)
        started = time.perf_counter()
        try:
            importlib.import_module(f"benchmarks.{name}").main()
        except Exception:  # one broken benchmark must not hide the others' numbers
            log.exception("%s failed", name)
            failed.append(name)
        log.info("%s took %.1f s", name, time.perf_counter() - started)
    if failed:
        log.error("failed benchmarks: %s", ", ".join(failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
