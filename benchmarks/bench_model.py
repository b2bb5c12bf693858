"""Tiny Kangaroo training step (forward + backward + AdamW) on a 16-frame clip at 64 and 112 px, the cost of
activation checkpointing and of packing two samples into one row vs. two padded rows, and the attention
kernel on a full packed row (stage 1's still questions): sdpa with transformers' block mask vs sdpa_packed,
and the optimizer step of the tiny model: `kangaroo.train.optimizer.adamw` (fused) vs torch AdamW's
multi-tensor (foreach) kernel, the faster of its unfused ones."""

import logging
import time

import numpy as np
import torch

from kangaroo.model import build_model_and_processor
from kangaroo.model.packed_attention import NAME as SDPA_PACKED
from kangaroo.model.settings import ModelSettings
from kangaroo.train.optimizer import adamw

log = logging.getLogger(__name__)

REPEATS = 5


def clip(frames: int, size: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {
        "frames": rng.integers(0, 256, (frames, size, size, 3), dtype=np.uint8),
        "timestamps": np.arange(frames) / 2,
    }


def conversation(answer: str) -> list[dict]:
    return [{"role": "user", "content": "Describe the video."}, {"role": "assistant", "content": answer}]


def step_seconds(model, batch: dict, optimizer) -> float:
    timings = []
    for _ in range(REPEATS + 1):
        started = time.perf_counter()
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        timings.append(time.perf_counter() - started)
    return float(np.median(timings[1:]))  # the first step warms up allocators


def main() -> None:
    torch.set_num_threads(2)
    model, processor = build_model_and_processor(ModelSettings())
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    results = {}
    for size in (64, 112):
        batch = processor(
            conversation("A red circle moves left."), videos=[clip(16, size, 0)], image_size=size
        )
        results[size] = step_seconds(model, batch, optimizer)
        log.info(
            "16 frames @ %d px, %d tokens: %.3f s/step", size, batch["input_ids"].shape[1], results[size]
        )
    batch = processor(conversation("A red circle moves left."), videos=[clip(16, 112, 0)], image_size=112)
    model.activation_checkpointing_enable()
    checkpointed = step_seconds(model, batch, optimizer)
    model.activation_checkpointing_disable()
    log.info(
        "activation checkpointing at 112 px: %.3f s/step (x%.2f)", checkpointed, checkpointed / results[112]
    )

    first = processor(conversation("A red circle."), videos=[clip(16, 64, 1)])
    second = processor(conversation("A blue square moves up and then turns green."), videos=[clip(5, 64, 2)])
    padded = processor(
        [conversation("A red circle."), conversation("A blue square moves up and then turns green.")],
        videos=[clip(16, 64, 1), clip(5, 64, 2)],
    )
    len_a, len_b = first["input_ids"].shape[1], second["input_ids"].shape[1]
    packed = {
        "input_ids": torch.cat([first["input_ids"], second["input_ids"]], dim=1),
        "labels": torch.cat([first["labels"], second["labels"]], dim=1),
        "position_ids": torch.cat([torch.arange(len_a), torch.arange(len_b)])[None],
        "pixel_values": padded["pixel_values"],
        "frame_timestamps": padded["frame_timestamps"],
        "video_frame_counts": padded["video_frame_counts"],
    }
    packed_s, padded_s = step_seconds(model, packed, optimizer), step_seconds(model, padded, optimizer)
    log.info(
        "two samples packed in one row %.3f s vs two padded rows %.3f s (x%.2f); padding share %.0f%%",
        packed_s,
        padded_s,
        padded_s / packed_s,
        100 * (1 - padded["attention_mask"].float().mean().item()),
    )

    still_row = packed_still_row(processor, context=1024)
    kernels = {}
    for kernel in ("sdpa", SDPA_PACKED):
        for config in (model.config, model.language_model.config):
            config._attn_implementation = kernel
        kernels[kernel] = step_seconds(model, still_row, optimizer)
    log.info(
        "packed 1,024-token row of %d still questions: sdpa %.3f s/step, %s %.3f s/step (x%.2f)",
        int((still_row["position_ids"][0] == 0).sum()),
        kernels["sdpa"],
        SDPA_PACKED,
        kernels[SDPA_PACKED],
        kernels["sdpa"] / kernels[SDPA_PACKED],
    )

    fused_s, foreach_s = optimizer_step_seconds(adamw, model), optimizer_step_seconds(foreach_adamw, model)
    log.info(
        "AdamW step over the tiny model's %d tensors: fused %.2f ms, foreach %.2f ms (x%.2f)",
        len(list(model.parameters())),
        fused_s * 1000,
        foreach_s * 1000,
        foreach_s / fused_s,
    )


def foreach_adamw(params, **kwargs) -> torch.optim.AdamW:
    return torch.optim.AdamW(params, foreach=True, **kwargs)


def optimizer_step_seconds(make_optimizer, model, steps: int = 200) -> float:
    params = [p.detach().clone() for p in model.parameters()]
    for param in params:
        param.grad = torch.randn_like(param)
    optimizer = make_optimizer(params, lr=1e-4)
    optimizer.step()  # allocates the moments
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    return (time.perf_counter() - started) / steps


def packed_still_row(processor, context: int) -> dict:
    """Still questions (one 64 px frame, a question with four options, a short answer) packed up to `context`
    tokens, the way stage 1's rows look."""
    samples = []
    question = (
        "Question: What colour is the shape in the top left corner?\nOptions:\n(A) red\n(B) blue\n"
        "(C) green\n(D) yellow\nOnly give the best option."
    )
    while True:
        sample = processor(
            [{"role": "user", "content": question}, {"role": "assistant", "content": "blue (B)"}],
            videos=[clip(1, 64, len(samples))],
        )
        if sum(s["input_ids"].shape[1] for s in samples) + sample["input_ids"].shape[1] > context:
            break
        samples.append(sample)
    return {
        "input_ids": torch.cat([s["input_ids"] for s in samples], dim=1),
        "labels": torch.cat([s["labels"] for s in samples], dim=1),
        "position_ids": torch.cat([torch.arange(s["input_ids"].shape[1]) for s in samples])[None],
        "pixel_values": torch.cat([s["pixel_values"] for s in samples]),
        "frame_timestamps": torch.cat([s["frame_timestamps"] for s in samples]),
        "video_frame_counts": torch.cat([s["video_frame_counts"] for s in samples]),
    }
