"""Sequence packing: put variable-length samples into rows of `capacity` tokens.

`pack_first_fit_decreasing` is the classic bin-packing heuristic (within 11/9 of optimal rows): samples
sorted longest first, each placed in the first row with room. A sample is never split across rows; one
longer than the row gets a row of its own (the data layer drops such samples before packing, because cutting
a multimodal sample would cut its visual tokens). `pack_one_per_row` is the padded baseline.

`collate_packed_row` builds the model's packed contract: input_ids/labels/position_ids [1, capacity] with
position ids restarting at 0 at every sample (and at the trailing padding run), labels -100 on the padding
and on each sample's first token, visual inputs concatenated in placeholder order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100


def pack_first_fit_decreasing(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """Rows of sample indices, each row's total length <= capacity (except a lone over-long sample).

    Ties keep input order (stable sort), so a shuffled input order gives a shuffled, reproducible packing.
    Rows come out in creation order; samples inside a row in placement order.
    """
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    rows: list[list[int]] = []
    rooms = _RoomTree(len(lengths))
    for index in order:
        length = lengths[index]
        row = rooms.first_with_room(length) if length <= capacity else -1
        if row >= 0:
            rows[row].append(index)
            rooms.set(row, rooms.room(row) - length)
        else:  # no row has room (or the sample is longer than any row): a new row
            rooms.set(len(rows), max(capacity - length, 0))
            rows.append([index])
    return rows


class _RoomTree:
    """Free room per row in a max segment tree: the first row with room >= n in O(log rows), so first-fit
    stays exact at hundreds of thousands of samples (a linear scan of the rows is quadratic)."""

    def __init__(self, max_rows: int) -> None:
        self.size = 1
        while self.size < max(max_rows, 1):
            self.size *= 2
        self.tree = [-1] * (2 * self.size)  # -1: a row not created yet has no room for anything

    def room(self, row: int) -> int:
        return self.tree[self.size + row]

    def set(self, row: int, room: int) -> None:
        node = self.size + row
        self.tree[node] = room
        node //= 2
        while node:
            self.tree[node] = max(self.tree[2 * node], self.tree[2 * node + 1])
            node //= 2

    def first_with_room(self, needed: int) -> int:
        """The lowest-numbered row with room >= needed, or -1."""
        if self.tree[1] < needed:
            return -1
        node = 1
        while node < self.size:
            node = 2 * node if self.tree[2 * node] >= needed else 2 * node + 1
        return node - self.size


def pack_one_per_row(lengths: Sequence[int], capacity: int) -> list[list[int]]:
    """The padded baseline: one sample per row, in input order."""
    if capacity <= 0:
        raise ValueError(f"capacity must be positive, got {capacity}")
    return [[i] for i in range(len(lengths))]


def length_grouped_batches(lengths: Sequence[int], token_budget: int, megabatch: int = 64) -> list[list[int]]:
    """The strongest padding baseline (LLaVA's length-grouped sampler + dynamic padding): megabatches of
    `megabatch` samples in input order, each sorted longest first and cut into batches padded to their
    longest sample, as many samples per batch as fit `token_budget` padded tokens (the same budget as one
    packed row)."""
    batches: list[list[int]] = []
    for start in range(0, len(lengths), megabatch):
        group = sorted(range(start, min(start + megabatch, len(lengths))), key=lambda i: -lengths[i])
        batch: list[int] = []
        for index in group:
            if batch and (len(batch) + 1) * lengths[batch[0]] > token_budget:
                batches.append(batch)
                batch = []
            batch.append(index)
        if batch:
            batches.append(batch)
    return batches


def padded_utilisation(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """Non-pad fraction of batches each padded to its longest sample."""
    slots = sum(len(batch) * max(lengths[i] for i in batch) for batch in batches)
    return sum(lengths[i] for batch in batches for i in batch) / max(slots, 1)


def utilisation(rows: Sequence[Sequence[int]], lengths: Sequence[int], capacity: int) -> float:
    """Fraction of the rows' token slots holding real (non-pad) tokens (over-long samples fill their row)."""
    if not rows:
        return 0.0
    used = sum(min(sum(lengths[i] for i in row), capacity) for row in rows)
    return used / (len(rows) * capacity)


@dataclass(frozen=True)
class PackedBatch:
    """One packed row and what it holds (tensors are [1, capacity]; visual tensors may be None)."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    position_ids: torch.Tensor
    pixel_values: torch.Tensor | None
    frame_timestamps: torch.Tensor | None
    video_frame_counts: torch.Tensor | None
    real_tokens: int  # non-pad tokens in the row
    num_samples: int
    num_frames: int  # frames of all videos/images in the row

    def model_inputs(self) -> dict[str, torch.Tensor]:
        """Keyword arguments for the model's forward (attention_mask None: blocks come from position_ids)."""
        inputs = {"input_ids": self.input_ids, "labels": self.labels, "position_ids": self.position_ids}
        if self.pixel_values is not None:
            inputs["pixel_values"] = self.pixel_values
            inputs["frame_timestamps"] = self.frame_timestamps
            inputs["video_frame_counts"] = self.video_frame_counts
        return inputs


def collate_packed_row(samples: Sequence, capacity: int, pad_token_id: int) -> PackedBatch:
    """Concatenate `samples` (objects with `input_ids`/`labels` 1-D tensors and optional `pixel_values`
    [T,3,H,W], `frame_timestamps` [T], `video_frame_counts` [V]) into one row of exactly `capacity` tokens.

    An over-long single sample is cut to `capacity` (text-only samples; multimodal ones are dropped earlier).
    """
    import torch

    ids, labels, positions = [], [], []
    for sample in samples:
        sample_labels = sample.labels.clone()
        sample_labels[0] = IGNORE_INDEX  # never predict a sample's first token from the previous sample
        ids.append(sample.input_ids)
        labels.append(sample_labels)
        positions.append(torch.arange(sample.input_ids.numel(), dtype=torch.long))
    input_ids = torch.cat(ids)[:capacity]
    label_row = torch.cat(labels)[:capacity]
    position_row = torch.cat(positions)[:capacity]
    real = input_ids.numel()
    pad = capacity - real
    if pad > 0:  # the trailing padding is its own "sample": positions restart, nothing to predict
        input_ids = torch.cat([input_ids, torch.full((pad,), pad_token_id, dtype=torch.long)])
        label_row = torch.cat([label_row, torch.full((pad,), IGNORE_INDEX, dtype=torch.long)])
        position_row = torch.cat([position_row, torch.arange(pad, dtype=torch.long)])

    visual = [s for s in samples if getattr(s, "pixel_values", None) is not None]
    pixel_values = torch.cat([s.pixel_values for s in visual]) if visual else None
    timestamps = torch.cat([s.frame_timestamps for s in visual]) if visual else None
    counts = torch.cat([s.video_frame_counts for s in visual]) if visual else None
    return PackedBatch(
        input_ids=input_ids[None],
        labels=label_row[None],
        position_ids=position_row[None],
        pixel_values=pixel_values,
        frame_timestamps=timestamps,
        video_frame_counts=counts,
        real_tokens=real,
        num_samples=len(samples),
        num_frames=int(counts.sum()) if counts is not None else 0,
    )
