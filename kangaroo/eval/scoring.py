"""The two scoring modes, batched: greedy generation and per-option log-likelihood.

Both take `PreparedQuestion`s (question + sampled frames + prompt) and a model/processor pair with the
Kangaroo interface: ``processor(conversations, videos=[frames...], add_generation_prompt=...)`` returning
``input_ids``/``attention_mask``/``labels``/``pixel_values``/``frame_timestamps``/``video_frame_counts``,
and ``model(**inputs).logits`` / ``model.generate(**inputs)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from kangaroo.eval.benchmarks import MCQuestion


@dataclass
class PreparedQuestion:
    """A question ready for the model: its frames (SampledFrames-like) and the user prompt."""

    question: MCQuestion
    frames: Any
    prompt: str

    @property
    def num_frames(self) -> int:
        return int(len(self.frames.frames))


@dataclass
class Generated:
    text: str
    num_input_tokens: int
    num_new_tokens: int


@dataclass
class OptionScore:
    """Log-likelihood of one option's continuation: its sum over tokens, and the token count."""

    sum_logprob: float
    num_tokens: int

    @property
    def mean_logprob(self) -> float:
        return self.sum_logprob / max(self.num_tokens, 1)


def _conversation(prompt: str, reply: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": prompt}]
    if reply is not None:
        messages.append({"role": "assistant", "content": reply})
    return messages


def _to_device(batch: Any, device: torch.device) -> dict[str, torch.Tensor]:
    return {key: value.to(device) for key, value in batch.items()}


@torch.inference_mode()
def generate_answers(
    model: Any, processor: Any, items: Sequence[PreparedQuestion], image_size: int, max_new_tokens: int
) -> list[Generated]:
    """Greedy generation for a batch of questions (left-padded, one video per question)."""
    inputs = processor(
        [_conversation(item.prompt) for item in items],
        videos=[item.frames for item in items],
        add_generation_prompt=True,
        image_size=image_size,
        padding_side="left",
        return_labels=False,
    )
    inputs = _to_device(inputs, model.device)
    tokenizer = processor.tokenizer
    # Stop tokens come from the checkpoint's generation_config (<|eot_id|> and <|end_of_text|>).
    output = model.generate(
        **inputs,
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        pad_token_id=tokenizer.pad_token_id,
    )
    stops = model.generation_config.eos_token_id
    stops = set(stops if isinstance(stops, list) else [stops]) | {
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    }
    prompt_length = inputs["input_ids"].shape[1]
    new_tokens = output[:, prompt_length:].tolist()
    results = []
    for row, attention in zip(new_tokens, inputs["attention_mask"], strict=True):
        end = next((i for i, token in enumerate(row) if token in stops), len(row))
        kept = row[:end]
        results.append(
            Generated(
                text=tokenizer.decode(kept, skip_special_tokens=True),
                num_input_tokens=int(attention.sum()),
                num_new_tokens=len(kept),
            )
        )
    return results


def scored_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions whose logits predict a label in some row (labels [B, L], -100 = unscored): an option's few
    reply tokens out of a prompt of video and question, so only these need the LM head."""
    return torch.nonzero((labels[:, 1:] != -100).any(dim=0)).flatten()


def sequence_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row sum of log p(target) over scored positions, and the number of scored tokens.

    logits [B, K, V] each predict targets [B, K] (the next token; -100 = not scored)."""
    mask = targets != -100
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    picked = log_probs.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(dim=1), mask.sum(dim=1)


@torch.inference_mode()
def score_options(
    model: Any,
    processor: Any,
    items: Sequence[PreparedQuestion],
    continuations: Sequence[Sequence[str]],
    image_size: int,
) -> list[list[OptionScore]]:
    """Log-likelihood of every option continuation of every question, in one forward pass.

    Each (question, option) pair is one row: the user prompt with the video, then the option as the
    assistant reply; only the reply tokens (and its end-of-turn token) are scored.
    """
    conversations, videos, owners = [], [], []
    for index, (item, options) in enumerate(zip(items, continuations, strict=True)):
        for option in options:
            conversations.append(_conversation(item.prompt, option))
            videos.append(item.frames)
            owners.append(index)
    inputs = processor(conversations, videos=videos, image_size=image_size, padding_side="right")
    inputs = _to_device(inputs, model.device)
    labels = inputs.pop("labels")
    positions = scored_positions(labels)
    logits = model(**inputs, logits_to_keep=positions).logits
    sums, counts = sequence_logprobs(logits, labels[:, positions + 1])
    scores: list[list[OptionScore]] = [[] for _ in items]
    for owner, total, count in zip(owners, sums.tolist(), counts.tolist(), strict=True):
        scores[owner].append(OptionScore(sum_logprob=float(total), num_tokens=int(count)))
    return scores


def rank_options(scores: Sequence[OptionScore], normalisation: str) -> int:
    """Index of the most likely option ("mean": per-token log-prob, "sum": total); ties go to the first."""
    values = [s.mean_logprob if normalisation == "mean" else s.sum_logprob for s in scores]
    return max(range(len(values)), key=values.__getitem__)
