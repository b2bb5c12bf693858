"""The AdamW every trainer here uses (curriculum stages, the tiny vision tower, the alignment model)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


def adamw(params: Iterable[Any], **kwargs: Any) -> torch.optim.AdamW:
    """torch AdamW with the fused kernel (CPU and CUDA): one pass over all tensors per step instead of a
    Python loop of small ops per tensor, which is most of a tiny model's optimizer step
    (benchmarks/bench_model.py)."""
    return torch.optim.AdamW(params, fused=True, **kwargs)
