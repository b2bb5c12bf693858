"""Packer, collator and sampler: no sample split across rows, positions restart, utilisation, exact resume."""

from __future__ import annotations

import random
from dataclasses import dataclass

import pytest
import torch

from kangaroo.train.packing import (
    IGNORE_INDEX,
    collate_packed_row,
    length_grouped_batches,
    pack_first_fit_decreasing,
    pack_one_per_row,
    padded_utilisation,
    utilisation,
)
from kangaroo.train.sampler import PackedRowSampler
from kangaroo.train.stream import RecentFrames


def test_first_fit_decreasing_keeps_samples_whole_and_within_capacity():
    rng = random.Random(0)
    lengths = [rng.randint(5, 120) for _ in range(300)]
    rows = pack_first_fit_decreasing(lengths, capacity=256)
    placed = sorted(i for row in rows for i in row)
    assert placed == list(range(len(lengths)))  # every sample exactly once, none split
    assert all(sum(lengths[i] for i in row) <= 256 for row in rows)
    # FFD is within 11/9 OPT + 1 rows; OPT >= total / capacity
    assert len(rows) <= 11 / 9 * (sum(lengths) / 256) + 1
    assert utilisation(rows, lengths, 256) >= 0.95


def test_overlong_sample_gets_its_own_row():
    rows = pack_first_fit_decreasing([10, 300, 20], capacity=100)
    assert [1] in rows
    assert sorted(i for row in rows for i in row) == [0, 1, 2]
    assert utilisation(rows, [10, 300, 20], 100) == pytest.approx((100 + 30) / 200)


def test_padded_baseline_wastes_what_packing_saves():
    lengths = [40, 60, 30, 70, 50, 50]
    padded = pack_one_per_row(lengths, 100)
    packed = pack_first_fit_decreasing(lengths, 100)
    assert utilisation(padded, lengths, 100) == pytest.approx(0.5)
    assert utilisation(packed, lengths, 100) == pytest.approx(1.0)
    assert len(packed) == 3


@dataclass
class _Sample:
    input_ids: torch.Tensor
    labels: torch.Tensor
    pixel_values: torch.Tensor | None = None
    frame_timestamps: torch.Tensor | None = None
    video_frame_counts: torch.Tensor | None = None


def _sample(length: int, frames: int, value: int) -> _Sample:
    ids = torch.full((length,), value)
    return _Sample(
        input_ids=ids,
        labels=ids.clone(),
        pixel_values=torch.full((frames, 3, 4, 4), float(value)),
        frame_timestamps=torch.arange(frames, dtype=torch.float32),
        video_frame_counts=torch.tensor([frames]),
    )


def test_collated_row_restarts_positions_and_masks_boundaries():
    row = collate_packed_row([_sample(5, 2, 1), _sample(3, 1, 2)], capacity=12, pad_token_id=0)
    assert row.input_ids.shape == row.labels.shape == row.position_ids.shape == (1, 12)
    assert row.position_ids[0].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3]
    labels = row.labels[0].tolist()
    assert labels[0] == IGNORE_INDEX and labels[5] == IGNORE_INDEX  # first token of each sample
    assert labels[1:5] == [1] * 4 and labels[6:8] == [2] * 2
    assert labels[8:] == [IGNORE_INDEX] * 4  # the padding run predicts nothing
    assert row.input_ids[0, 8:].tolist() == [0] * 4
    assert row.real_tokens == 8 and row.num_samples == 2 and row.num_frames == 3
    # visual inputs in placeholder order
    assert row.pixel_values[:, 0, 0, 0].tolist() == [1.0, 1.0, 2.0]
    assert row.video_frame_counts.tolist() == [2, 1]
    assert "attention_mask" not in row.model_inputs()  # packed contract: blocks from position_ids


def test_sampler_shards_ranks_disjointly_and_resumes_exactly():
    rng = random.Random(1)
    lengths = [rng.randint(10, 90) for _ in range(80)]
    ranks = [PackedRowSampler(lengths, 128, seed=3, rank=r, world_size=2) for r in range(2)]
    per_rank = ranks[0].rows_per_rank()
    first = [[ranks[r].next_row() for _ in range(per_rank)] for r in range(2)]
    seen = [i for rows in first for row in rows for i in row]
    assert len(seen) == len(set(seen))  # no sample on two ranks in one epoch

    uninterrupted = PackedRowSampler(lengths, 128, seed=3)
    expected = [uninterrupted.next_row() for _ in range(3 * uninterrupted.rows_per_rank())]
    interrupted = PackedRowSampler(lengths, 128, seed=3)
    head = [interrupted.next_row() for _ in range(7)]
    resumed = PackedRowSampler(lengths, 128, seed=3)
    resumed.load_state_dict(interrupted.state_dict())
    tail = [resumed.next_row() for _ in range(len(expected) - 7)]
    assert head + tail == expected
    # epochs differ in order (reshuffled), but each epoch covers every sample
    epoch0 = sorted(i for row in expected[: uninterrupted.rows_per_rank()] for i in row)
    assert epoch0 == list(range(80))
    assert expected[: uninterrupted.rows_per_rank()] != expected[uninterrupted.rows_per_rank() :][:per_rank]


def test_sampler_refuses_a_checkpoint_from_other_data():
    sampler = PackedRowSampler([10] * 20, 64, seed=0)
    with pytest.raises(ValueError, match="data or the seed changed"):
        sampler.load_state_dict({"epoch": 0, "cursor": 1, "seed": 0, "num_samples": 21})


def test_length_grouped_dynamic_padding_baseline():
    lengths = [100, 10, 90, 20, 95, 15]
    batches = length_grouped_batches(lengths, token_budget=200, megabatch=6)
    assert batches == [[0, 4], [2, 3], [5, 1]]  # longest first, each batch within 200 padded tokens
    assert all(len(b) * max(lengths[i] for i in b) <= 200 for b in batches)
    assert padded_utilisation(batches, lengths) == pytest.approx(330 / (200 + 180 + 30))
    # FFD packing of the same samples into 200-token rows wastes less
    assert utilisation(pack_first_fit_decreasing(lengths, 200), lengths, 200) > padded_utilisation(
        batches, lengths
    )


def test_sampler_packs_within_shard_windows():
    """With shards given, an epoch packs window by window: each row reads at most `window` shards, and every
    sample still comes exactly once per epoch."""
    rng = random.Random(2)
    lengths = [rng.randint(10, 90) for _ in range(400)]
    shards = [i // 40 for i in range(400)]  # 10 shards of 40 samples
    sampler = PackedRowSampler(lengths, 128, seed=5, groups=shards, window=2)
    rows = sampler.global_rows(0)
    assert sorted(i for row in rows for i in row) == list(range(400))
    assert all(len({shards[i] for i in row}) <= 2 for row in rows)
    windows = [frozenset(shards[i] for i in row) for row in rows]
    assert len(set().union(*windows)) == 10 and max(len(w) for w in windows) == 2
    assert sampler.global_rows(1) != rows  # a new shard order and shuffle every epoch


def _first_fit_by_scanning(lengths: list[int], capacity: int) -> list[list[int]]:
    """Textbook first-fit decreasing, scanning every row: the reference the indexed version must match."""
    rows: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        fits = [r for r, free in enumerate(room) if lengths[index] <= free]
        if fits and lengths[index] <= capacity:
            rows[fits[0]].append(index)
            room[fits[0]] -= lengths[index]
        else:
            rows.append([index])
            room.append(max(capacity - lengths[index], 0))
    return rows


@pytest.mark.parametrize("seed", range(5))
def test_indexed_first_fit_places_every_sample_where_scanning_first_fit_does(seed):
    rng = random.Random(seed)
    lengths = [rng.choice([rng.randint(1, 40), rng.randint(60, 130), 300]) for _ in range(700)]
    assert pack_first_fit_decreasing(lengths, 128) == _first_fit_by_scanning(lengths, 128)


def test_recent_frames_stay_within_their_byte_bound_and_evict_the_least_recent():
    import numpy as np

    from kangaroo.video.frames import SampledFrames

    def medium(frames: int) -> SampledFrames:  # 1 KiB per frame
        return SampledFrames(
            np.zeros((frames, 16, 16, 4), np.uint8), np.zeros(frames), np.zeros(frames, np.int64)
        )

    cache = RecentFrames(max_bytes=4096)
    cache.put(1, (medium(2), {"key": "a"}))
    cache.put(2, (medium(1), {"key": "b"}))
    cache.put(3, ("undecodable", {"key": "c"}))  # a skip reason holds no bytes
    assert cache.held_bytes == 3072
    assert cache.get(1)[1] == {"key": "a"}  # 1 is now the most recent, 2 the least
    cache.put(4, (medium(2), {"key": "d"}))
    assert cache.get(2) is None and cache.get(1) is not None and cache.get(3) is not None
    assert cache.held_bytes == 4096
    cache.put(5, (medium(8), {"key": "e"}))  # larger than the bound: kept alone, the newest always stays
    assert cache.held_bytes == 8192 and cache.get(5) is not None and cache.get(1) is None
