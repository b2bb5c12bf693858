"""Seeded, resumable order of packed rows: which samples each rank trains on, micro-batch by micro-batch.

Every epoch: shuffle the samples with a generator seeded by (seed, epoch), pack them into rows, shuffle the
rows, and deal them round-robin to the ranks. With `groups` (the shard of each sample) the epoch first
shuffles the shards and packs window by window (`window` shards each), so a rank reads a few shards at a time
instead of every shard for every row (the tail that does not divide evenly is dropped so all ranks
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
        groups: Sequence[int] | None = None,
        window: int = 1,
    ) -> None:
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.groups = np.asarray(groups, dtype=np.int64) if groups is not None else None
        self.window = window
        self._members: dict[int, np.ndarray] = {}  # group -> its sample indices (ascending)
        if self.groups is not None:
            order = np.argsort(self.groups, kind="stable")
            keys, starts = np.unique(self.groups[order], return_index=True)
            self._members = dict(zip(keys.tolist(), np.split(order, starts[1:]), strict=True))
        self.capacity = capacity
        self.seed = seed
        self.packing = packing
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.cursor = 0
        self._rows: list[list[int]] | None = None
        self._planned: tuple[int, list[list[int]]] | None = None
        if self.rows_per_rank() == 0:
            raise ValueError(
                f"{len(self.global_rows(0))} rows of {capacity} tokens cannot feed {world_size} ranks: "
                "more data needed"
            )

    def global_rows(self, epoch: int) -> list[list[int]]:
        """All ranks' rows of one epoch, in training order (the last epoch asked for is kept: set-up asks
        for epoch 0 several times)."""
        if self._planned is None or self._planned[0] != epoch:
            self._planned = (epoch, self._plan_epoch(epoch))
        return self._planned[1]

    def _plan_epoch(self, epoch: int) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, epoch])
        if self.groups is None:
            return self._pack_window(np.arange(len(self.lengths)), rng)
        shards = np.asarray(sorted(self._members))
        shards = shards[rng.permutation(len(shards))]
        rows = []
        for start in range(0, len(shards), self.window):
            window = shards[start : start + self.window].tolist()
            members = np.sort(np.concatenate([self._members[s] for s in window]))
            rows += self._pack_window(members, rng)
        return rows

    def _pack_window(self, members: np.ndarray, rng: np.random.Generator) -> list[list[int]]:
        """Shuffle `members`, pack them, shuffle the rows."""
        order = members[rng.permutation(len(members))]
        ordered_lengths = self.lengths[order].tolist()
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
