"""Seeded, resumable order of packed rows: which samples each rank trains on, micro-batch by micro-batch.

Every epoch: shuffle the samples with a generator seeded by (seed, epoch), pack them into rows, shuffle the
rows, and deal them round-robin to the ranks (the tail that does not divide evenly is dropped so all ranks
take the same number of steps). The state is just (epoch, cursor), saved with every checkpoint, so a resumed
run continues with exactly the rows the uninterrupted run would have seen.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from kangaroo.train.packing import pack_first_fit_decreasing, pack_one_per_row, utilisation


class PackedRowSampler:
    """Iterates rows (lists of sample indices) for one rank, epoch after epoch, forever."""

    def __init__(
        self,
        lengths: Sequence[int],
        capacity: int,
        seed: int,
        packing: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.lengths = list(lengths)
        self.capacity = capacity
        self.seed = seed
        self.packing = packing
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.cursor = 0
        self._rows: list[list[int]] | None = None
        if self.rows_per_rank() == 0:
            raise ValueError(
                f"{len(self.global_rows(0))} rows of {capacity} tokens cannot feed {world_size} ranks: "
                "more data needed"
            )

    def global_rows(self, epoch: int) -> list[list[int]]:
        """All ranks' rows of one epoch, in training order."""
        rng = np.random.default_rng([self.seed, epoch])
        order = rng.permutation(len(self.lengths))
        ordered_lengths = [self.lengths[i] for i in order]
        pack = pack_first_fit_decreasing if self.packing else pack_one_per_row
        rows = [[int(order[i]) for i in row] for row in pack(ordered_lengths, self.capacity)]
        return [rows[i] for i in rng.permutation(len(rows))]

    def rows_per_rank(self) -> int:
        return len(self.global_rows(0)) // self.world_size

    def rank_rows(self, epoch: int) -> list[list[int]]:
        rows = self.global_rows(epoch)
        usable = (len(rows) // self.world_size) * self.world_size
        return rows[self.rank : usable : self.world_size]

    def epoch_utilisation(self, epoch: int = 0) -> float:
        """Non-pad token fraction of one epoch's rows (all ranks)."""
        return utilisation(self.global_rows(epoch), self.lengths, self.capacity)

    def next_row(self) -> list[int]:
        """The next row of sample indices; moves to the next epoch when this one is used up."""
        if self._rows is None:
            self._rows = self.rank_rows(self.epoch)
        if self.cursor >= len(self._rows):
            self.epoch += 1
            self.cursor = 0
            self._rows = self.rank_rows(self.epoch)
        row = self._rows[self.cursor]
        self.cursor += 1
        return row

    def state_dict(self) -> dict[str, int]:
        return {
            "epoch": self.epoch,
            "cursor": self.cursor,
            "seed": self.seed,
            "num_samples": len(self.lengths),
        }

    def load_state_dict(self, state: dict[str, int]) -> None:
        if state["num_samples"] != len(self.lengths) or state["seed"] != self.seed:
            raise ValueError(
                f"checkpoint sampler state is for {state['num_samples']} samples / seed {state['seed']}, "
                f"this run has {len(self.lengths)} / {self.seed}: the data or the seed changed"
            )
        self.epoch, self.cursor, self._rows = state["epoch"], state["cursor"], None
