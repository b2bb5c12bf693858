"""Worker functions for the curation pool tests, in a module with no heavy imports so that worker
processes start in milliseconds."""

import os
import time


def slow_or_dying(item: str) -> str:
    if item == "hang":
        time.sleep(3600)
    if item == "die":
        os._exit(3)  # a decoder segfault looks like this to the parent
    return item.upper()
