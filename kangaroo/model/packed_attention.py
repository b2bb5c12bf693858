"""`sdpa_packed`: PyTorch SDPA that attends within each packed sample only (CPUs, GPUs without flash-attn).

Training rows pack many samples (a still question is ~70 tokens of a 1,024-token row). Plain `sdpa` gets the
row's block-diagonal causal mask from transformers and computes all L x L scores, then masks most of them
away; flash-attention's varlen kernel (paper profile) computes only the blocks. This does the same with SDPA:
the samples, which transformers' `find_packed_sequence_indices` reads from the position_ids restarts, are
gathered into padded [samples, heads, length, dim] batches (samples of similar length together, so one long
sample does not pad the short ones), attended causally, and scattered back. The result is what `sdpa` computes
for the row (tests/test_packed_attention.py), at a fraction of the cost (benchmarks/bench_model.py).

Anything that is not a packed training row (a padded batch, a KV cache, bidirectional vision attention)
goes to transformers' own `sdpa` with the mask transformers builds for it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, find_packed_sequence_indices, sdpa_mask

NAME = "sdpa_packed"
MIN_BUCKET = 32  # samples up to this many tokens share one bucket: tiny blocks are not worth an SDPA call


def sample_bounds(position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(starts, lengths) of the samples of a [1, L] packed row, or None when the row is one sequence.

    The samples are transformers' own (`find_packed_sequence_indices`: a sample starts wherever the position
    does not follow the previous one by 1), so this kernel splits a row exactly where sdpa's mask does."""
    sequence = find_packed_sequence_indices(position_ids)
    if sequence is None:
        return None
    lengths = torch.bincount(sequence[0])
    return torch.cumsum(lengths, 0) - lengths, lengths


def _length_buckets(lengths: torch.Tensor) -> list[torch.Tensor]:
    """Sample indices grouped by the power of two their length rounds up to (padding < 2x per sample)."""
    rounded = torch.clamp(lengths, min=MIN_BUCKET)
    bucket = torch.ceil(torch.log2(rounded.to(torch.float64))).to(torch.int64)
    return [torch.nonzero(bucket == b).flatten() for b in torch.unique(bucket)]


def packed_causal_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    starts: torch.Tensor,
    lengths: torch.Tensor,
    scaling: float | None,
    dropout: float,
) -> torch.Tensor:
    """Causal attention within each sample of one packed row.

    query [1, H, L, D], key/value [1, Hkv, L, D] (grouped-query heads allowed) -> [1, L, H, D], the layout
    transformers' attention functions return."""
    pieces, token_order = [], []
    for members in _length_buckets(lengths):
        bucket_starts, bucket_lengths = starts[members], lengths[members]
        width = int(bucket_lengths.max())
        offsets = torch.arange(width, device=query.device)
        valid = offsets[None] < bucket_lengths[:, None]  # [n, width]
        tokens = torch.where(valid, bucket_starts[:, None] + offsets[None], 0)
        q, k, v = (t[0][:, tokens].transpose(0, 1) for t in (query, key, value))  # [n, H, width, D]
        # causal within the sample, and no key from the padding after it (padded queries see real keys only)
        allowed = (offsets[None, :] <= offsets[:, None])[None] & valid[:, None, :]
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=allowed[:, None],
            dropout_p=dropout,
            scale=scaling,
            enable_gqa=q.shape[1] != k.shape[1],
        )
        pieces.append(out.transpose(1, 2)[valid])  # [tokens of the bucket, H, D]
        token_order.append(tokens[valid])
    order = torch.cat(token_order)
    inverse = torch.empty_like(order)
    inverse[order] = torch.arange(order.numel(), device=order.device)
    return torch.cat(pieces)[inverse][None]


def sdpa_packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    position_ids: torch.Tensor | None = None,
    **kwargs,
) -> tuple[torch.Tensor, None]:
    """transformers attention-interface function (see the module docstring)."""
    packed = (
        position_ids is not None
        and getattr(module, "is_causal", False)
        and query.shape[0] == 1
        and position_ids.dim() == 2
        and position_ids.shape[-1] == query.shape[2] == key.shape[2]  # no KV cache
    )
    bounds = sample_bounds(position_ids) if packed else None
    if bounds is None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    return packed_causal_attention(query, key, value, *bounds, scaling, dropout), None


AttentionInterface.register(NAME, sdpa_packed_attention)
# The mask transformers builds for sdpa serves the fallback; packed rows ignore it (their blocks come from
# the position_ids, the same information transformers built it from).
AttentionMaskInterface.register(NAME, sdpa_mask)
