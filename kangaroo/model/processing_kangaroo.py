"""KangarooProcessor: videos (frames + timestamps) and chat conversations -> model tensors.

Output of `processor(conversations, videos=...)` (a `BatchFeature`):
    input_ids          [B, L]   Llama-3 chat layout; each `<video>` in a user turn is expanded to
                                `<vi_start> (<vi_token> x g) <eof> ... (<vi_token> x g) <eov> <vi_end>`
                                g = visual tokens per group of `patchify_temporal` frames
    attention_mask     [B, L]   1 = token, 0 = padding
    labels             [B, L]   assistant replies and their `<|eot_id|>` kept, everything else -100
    pixel_values       [N, 3, S, S] float, normalised; N = frames of all videos in placeholder order
    frame_timestamps   [N]      float32 seconds from each video's start (images: 0.0)
    video_frame_counts [V]      frames per video
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import BatchFeature
from transformers.processing_utils import ProcessorMixin

from kangaroo.errors import KangarooError
from kangaroo.model import tokenizer as tok


class ProcessorInputError(KangarooError):
    """A conversation or video handed to the processor is malformed (names which one and why)."""


def render_conversation(
    messages: Sequence[dict[str, Any]], bos_token: str, add_generation_prompt: bool
) -> tuple[str, list[tuple[int, int]]]:
    """The chat-template string plus the character spans of assistant replies (content + `<|eot_id|>`).

    Produces exactly what `tokenizer.CHAT_TEMPLATE` renders; the spans drive label masking.
    """
    parts, spans, cursor = [bos_token], [], len(bos_token)
    for index, message in enumerate(messages):
        role, content = message.get("role"), _content_to_text(message.get("content"), index)
        if role not in ("system", "user", "assistant"):
            raise ProcessorInputError(f"message {index}: role {role!r} is not system, user or assistant")
        header = f"{tok.START_HEADER}{role}{tok.END_HEADER}\n\n"
        body = content.strip() + tok.EOT
        parts += [header, body]
        cursor += len(header)
        if role == "assistant":
            spans.append((cursor, cursor + len(body)))
        cursor += len(body)
    if add_generation_prompt:
        parts.append(f"{tok.START_HEADER}assistant{tok.END_HEADER}\n\n")
    return "".join(parts), spans


def _content_to_text(content: Any, index: int) -> str:
    """Accept plain strings or HF-style content lists ({"type": "video"} / {"type": "text", "text": ...})."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        pieces = []
        for item in content:
            kind = item.get("type") if isinstance(item, dict) else None
            if kind in ("video", "image"):
                pieces.append(tok.VIDEO_PLACEHOLDER + "\n")
            elif kind == "text":
                pieces.append(item.get("text", ""))
            else:
                raise ProcessorInputError(
                    f"message {index}: content item {item!r} is not a video, image or text"
                )
        return "".join(pieces)
    raise ProcessorInputError(
        f"message {index}: content must be a string or a list, got {type(content).__name__}"
    )


def _frames_and_times(video: Any, index: int) -> tuple[np.ndarray, np.ndarray]:
    """SampledFrames-like (`.frames`, `.timestamps`), a dict with those keys, or a bare uint8 array."""
    if isinstance(video, dict):
        frames, times = video.get("frames"), video.get("timestamps")
    elif hasattr(video, "frames"):
        frames, times = video.frames, getattr(video, "timestamps", None)
    else:
        frames, times = video, None
    frames = np.asarray(frames)
    if frames.ndim == 3:  # an image is a one-frame video at t = 0
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.shape[0] == 0:
        raise ProcessorInputError(
            f"video {index}: expected frames [T, H, W, 3] with T >= 1, got {frames.shape}"
        )
    if times is None:
        if frames.shape[0] != 1:
            raise ProcessorInputError(f"video {index}: {frames.shape[0]} frames but no timestamps")
        times = np.zeros(1)
    times = np.asarray(times, dtype=np.float64).reshape(-1)
    if times.shape[0] != frames.shape[0]:
        raise ProcessorInputError(f"video {index}: {frames.shape[0]} frames but {times.shape[0]} timestamps")
    return frames, times


class KangarooProcessor(ProcessorMixin):
    """Chat conversations + videos -> `input_ids`/`labels`/`pixel_values`/... (see the module docstring)."""

    def __init__(
        self,
        tokenizer=None,
        chat_template: str | None = None,
        image_size: int = 448,
        patch_size: int = 14,
        patchify_temporal: int = 2,
        patchify_spatial: int = 2,
        image_mean: Sequence[float] = (0.48145466, 0.4578275, 0.40821073),
        image_std: Sequence[float] = (0.26862954, 0.26130258, 0.27577711),
        **kwargs,
    ):
        self.image_size = int(image_size)
        self.patch_size = int(patch_size)
        self.patchify_temporal = int(patchify_temporal)
        self.patchify_spatial = int(patchify_spatial)
        self.image_mean = [float(v) for v in image_mean]
        self.image_std = [float(v) for v in image_std]
        super().__init__(tokenizer, chat_template=chat_template or getattr(tokenizer, "chat_template", None))

    # ----- token arithmetic -----
    def tokens_per_group(self, height: int, width: int) -> int:
        ks = self.patchify_spatial
        return -(-(height // self.patch_size) // ks) * -(-(width // self.patch_size) // ks)

    def num_visual_tokens(self, num_frames: int, height: int | None = None, width: int | None = None) -> int:
        """Visual tokens of one video (markers excluded); default size = the processor's `image_size`."""
        height, width = height or self.image_size, width or self.image_size
        return -(-num_frames // self.patchify_temporal) * self.tokens_per_group(height, width)

    def video_token_ids(self, num_frames: int, size: int) -> list[int]:
        """The id run a `<video>` placeholder expands to for a clip of `num_frames` frames at `size` px."""
        ids = self.tokenizer.convert_tokens_to_ids
        visual, eof, eov = ids(tok.VISUAL_TOKEN), ids(tok.EOF), ids(tok.EOV)
        groups = -(-num_frames // self.patchify_temporal)
        per_group = self.tokens_per_group(size, size)
        run = [ids(tok.VI_START)]
        for group in range(groups):
            run += [visual] * per_group + [eov if group == groups - 1 else eof]
        return run + [ids(tok.VI_END)]

    # ----- pixels -----
    def preprocess_frames(self, frames: np.ndarray, size: int) -> torch.Tensor:
        """uint8 [T, H, W, 3] -> float [T, 3, size, size], resized (antialiased bilinear) and normalised."""
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float().div_(255.0)
        if pixels.shape[-2:] != (size, size):
            pixels = F.interpolate(
                pixels, size=(size, size), mode="bilinear", antialias=True, align_corners=False
            )
        mean = torch.tensor(self.image_mean).view(1, 3, 1, 1)
        std = torch.tensor(self.image_std).view(1, 3, 1, 1)
        return (pixels - mean) / std

    # ----- prompts -----
    def build_prompt(
        self,
        query: str,
        history: Sequence[dict[str, Any]] | None = None,
        system: str | None = None,
        with_video: bool = True,
    ) -> list[dict[str, str]]:
        """An inference conversation: optional system turn, earlier turns, then the user `query`.

        The video placeholder goes at the start of the first user turn (as in the official chat usage).
        """
        messages: list[dict[str, str]] = [{"role": "system", "content": system}] if system else []
        messages += [dict(m) for m in (history or [])]
        messages.append({"role": "user", "content": query})
        if with_video and not any(tok.VIDEO_PLACEHOLDER in str(m["content"]) for m in messages):
            first_user = next(m for m in messages if m["role"] == "user")
            first_user["content"] = f"{tok.VIDEO_PLACEHOLDER}\n{first_user['content']}"
        return messages

    def apply_chat_template(
        self, conversation, add_generation_prompt: bool = True, tokenize: bool = False, **kwargs
    ):
        """Render a conversation (or a list of them) with the Llama-3 layout; `<video>` stays unexpanded.

        With `tokenize=True` this is `processor(conversation, add_generation_prompt=...)` without videos.
        """
        if tokenize:
            return self(conversation, add_generation_prompt=add_generation_prompt, **kwargs)
        batch = [conversation] if conversation and isinstance(conversation[0], dict) else conversation
        texts = [render_conversation(c, self.tokenizer.bos_token, add_generation_prompt)[0] for c in batch]
        return texts[0] if batch is not conversation else texts

    # ----- main entry -----
    def __call__(
        self,
        conversations=None,
        videos: Sequence[Any] | None = None,
        messages=None,
        add_generation_prompt: bool = False,
        image_size: int | None = None,
        padding_side: str | None = None,
        return_labels: bool = True,
        max_length: int | None = None,
        **kwargs,
    ) -> BatchFeature:
        """Tokenise conversations, expand one `<video>` per video, preprocess frames, mask labels.

        Args:
            conversations / messages: one conversation (list of {"role", "content"}) or a list of them.
            videos: SampledFrames-like objects (`.frames` uint8 [T,H,W,3], `.timestamps` seconds) in the
                order their `<video>` placeholders appear; if no placeholder is written and there is one
                video per conversation, it is put at the start of each conversation's first user turn.
            add_generation_prompt: append the assistant header (inference).
            image_size: square frame size for this call (curriculum stages grow it); default `image_size`.
            padding_side: "right" (training default) or "left" (default with `add_generation_prompt`).
            max_length: raise if a sample is longer (truncating would cut visual tokens).
        """
        batch = conversations if conversations is not None else messages
        if batch is None:
            raise ProcessorInputError("no conversation given (pass `conversations` or `messages`)")
        if isinstance(batch, dict) or (batch and isinstance(batch[0], dict)):
            batch = [batch]
        batch = [[dict(m) for m in conv] for conv in batch]
        videos = list(videos or [])
        size = int(image_size or self.image_size)
        if size % self.patch_size:
            raise ProcessorInputError(
                f"image_size {size} is not a multiple of the patch size {self.patch_size}"
            )
        self._place_default_videos(batch, videos)

        placeholder_id = self.tokenizer.convert_tokens_to_ids(tok.VIDEO_PLACEHOLDER)
        clips = [_frames_and_times(v, i) for i, v in enumerate(videos)]
        rows, label_rows, video_cursor = [], [], 0
        for conv_index, conv in enumerate(batch):
            text, spans = render_conversation(conv, self.tokenizer.bos_token, add_generation_prompt)
            encoded = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids, labels = [], []
            for token_id, (start, _end) in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True):
                if token_id == placeholder_id:
                    if video_cursor >= len(clips):
                        raise ProcessorInputError(
                            f"conversation {conv_index}: more <video> placeholders than {len(clips)} videos"
                        )
                    run = self.video_token_ids(clips[video_cursor][0].shape[0], size)
                    video_cursor += 1
                    ids += run
                    labels += [-100] * len(run)
                    continue
                ids.append(token_id)
                in_reply = any(a <= start < b for a, b in spans)
                labels.append(token_id if in_reply else -100)
            if max_length is not None and len(ids) > max_length:
                raise ProcessorInputError(
                    f"conversation {conv_index}: {len(ids)} tokens exceed max_length {max_length}"
                )
            rows.append(ids)
            label_rows.append(labels)
        if video_cursor != len(clips):
            raise ProcessorInputError(
                f"{len(clips)} videos given but {video_cursor} <video> placeholders found"
            )

        side = padding_side or ("left" if add_generation_prompt else "right")
        data = self._pad(rows, label_rows, side, return_labels)
        if clips:
            data["pixel_values"] = torch.cat([self.preprocess_frames(frames, size) for frames, _ in clips])
            data["frame_timestamps"] = torch.tensor(
                np.concatenate([t for _, t in clips]), dtype=torch.float32
            )
            data["video_frame_counts"] = torch.tensor([f.shape[0] for f, _ in clips], dtype=torch.long)
        return BatchFeature(data=data)

    def _place_default_videos(self, batch: list[list[dict]], videos: list[Any]) -> None:
        written = sum(
            _content_to_text(m.get("content"), i).count(tok.VIDEO_PLACEHOLDER)
            for conv in batch
            for i, m in enumerate(conv)
        )
        if written or not videos:
            return
        if len(videos) != len(batch):
            raise ProcessorInputError(
                f"{len(videos)} videos for {len(batch)} conversations and no <video> placeholder in the text"
            )
        for conv in batch:
            first_user = next((m for m in conv if m.get("role") == "user"), None)
            if first_user is None:
                raise ProcessorInputError("a conversation has no user turn to attach its video to")
            first_user["content"] = f"{tok.VIDEO_PLACEHOLDER}\n{_content_to_text(first_user['content'], 0)}"

    def _pad(self, rows, label_rows, side: str, return_labels: bool) -> dict[str, torch.Tensor]:
        if side not in ("left", "right"):
            raise ProcessorInputError(f"padding_side {side!r} is not 'left' or 'right'")
        length = max(len(r) for r in rows)
        pad_id = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), length), dtype=torch.long)
        labels = torch.full((len(rows), length), -100, dtype=torch.long)
        for i, (ids, labs) in enumerate(zip(rows, label_rows, strict=True)):
            cols = slice(length - len(ids), length) if side == "left" else slice(0, len(ids))
            input_ids[i, cols] = torch.tensor(ids)
            attention[i, cols] = 1
            labels[i, cols] = torch.tensor(labs)
        data = {"input_ids": input_ids, "attention_mask": attention}
        if return_labels:
            data["labels"] = labels
        return data

    @property
    def model_input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "pixel_values", "frame_timestamps", "video_frame_counts"]


__all__ = ["KangarooProcessor", "ProcessorInputError", "render_conversation"]
