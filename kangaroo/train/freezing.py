"""Which module groups a stage trains: freeze the rest, and fingerprint frozen weights for checks."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import torch
from torch import nn

from kangaroo.train.errors import TrainInputError

log = logging.getLogger(__name__)


def apply_trainable_groups(model: nn.Module, trainable: Iterable[str]) -> dict[str, int]:
    """Set requires_grad per `model.module_groups()`: True for the listed groups, False elsewhere.

    Parameters outside every group (none in Kangaroo) are frozen. Returns trainable counts per group.
    """
    groups = model.module_groups()
    wanted = set(trainable)
    unknown = wanted - set(groups)
    if unknown:
        raise TrainInputError(
            f"trainable: unknown module groups {sorted(unknown)}; the model has {sorted(groups)}"
        )
    model.requires_grad_(False)
    counts = {}
    for name, module in groups.items():
        module.requires_grad_(name in wanted)
        counts[name] = sum(p.numel() for p in module.parameters()) if name in wanted else 0
    log.info("trainable parameters per group: %s", counts)
    return counts


def frozen_parameter_names(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if not p.requires_grad]


def snapshot(model: nn.Module, names: Iterable[str]) -> dict[str, torch.Tensor]:
    """Detached copies of the named parameters (for before/after comparisons)."""
    wanted = set(names)
    return {name: p.detach().clone() for name, p in model.named_parameters() if name in wanted}
