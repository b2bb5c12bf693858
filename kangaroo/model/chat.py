"""`model.chat(video_path, query, history=...)`: the official release's one-call inference, on our classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif"}


def load_clip(video: Any, size: int, max_frames: int, sampling_fps: float):
    """A path (video or image) -> SampledFrames at `size` px; SampledFrames-like objects pass through.

    Videos use Kangaroo's dynamic sampling (a frame every 1/fps s, at most `max_frames` spread uniformly).
    """
    if not isinstance(video, (str, Path)):
        return video
    from kangaroo.video import open_video, read_image

    path = Path(video)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return read_image(path, size=size)
    with open_video(path) as reader:
        return reader.sample_fps(fps=sampling_fps, max_frames=max_frames, size=size)


def chat_once(
    model,
    video: Any,
    query: str,
    processor=None,
    history: list[dict] | None = None,
    max_new_tokens: int = 512,
    num_frames: int | None = None,
    sampling_fps: float = 1.0,
    system: str | None = None,
    **generate_kwargs,
) -> tuple[str, list[dict]]:
    """One chat turn about `video`; returns `(answer, history)` with the new user/assistant turns appended."""
    processor = processor or getattr(model, "processor", None)
    if processor is None:
        from kangaroo.model.processing_kangaroo import KangarooProcessor

        processor = KangarooProcessor.from_pretrained(model.name_or_path)
    clip = load_clip(video, processor.image_size, num_frames or 64, sampling_fps)
    messages = processor.build_prompt(query, history=history, system=None if history else system)
    inputs = processor(messages, videos=[clip], add_generation_prompt=True, return_labels=False)
    inputs = inputs.to(model.device)
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)
    if "temperature" in generate_kwargs and "do_sample" not in generate_kwargs:
        generate_kwargs["do_sample"] = generate_kwargs["temperature"] > 0
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, **generate_kwargs)
    answer = processor.tokenizer.decode(
        output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True
    ).strip()
    return answer, [*messages, {"role": "assistant", "content": answer}]
