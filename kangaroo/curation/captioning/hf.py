"""The `transformers` captioner: any Hugging Face image-text-to-text model, by hub id or local folder.

Frames go through the model's own processor and chat template (`AutoProcessor.apply_chat_template` with an
image part), in batches, greedy decoding. The video-level merge uses a text LLM (`merge_model`) when one is
configured, else the deterministic merge.
"""

from __future__ import annotations

import logging

import numpy as np

from kangaroo.curation.captioning.base import Captioner, CaptionError, FrameCaption, merge_prompt_text
from kangaroo.curation.filters import VideoInfo
from kangaroo.curation.frame_plan import resize_long_side
from kangaroo.curation.settings import CaptionSettings

log = logging.getLogger(__name__)


class TransformersCaptioner(Captioner):
    def __init__(self, settings: CaptionSettings) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.settings = settings
        self.hf = settings.transformers
        if not self.hf.model:
            raise CaptionError("caption.transformers.model is empty: give a hub id or a local model folder")
        self.name = f"transformers:{self.hf.model}"
        self.duplicate_iou = settings.duplicate_iou
        dtype = getattr(torch, self.hf.dtype)
        try:
            self.processor = AutoProcessor.from_pretrained(self.hf.model)
            self.model = AutoModelForImageTextToText.from_pretrained(self.hf.model, dtype=dtype)
        except (OSError, ValueError) as err:
            raise CaptionError(f"caption model {self.hf.model!r}: cannot load: {err}") from err
        self.model.to(self.hf.device).eval()
        tokenizer = getattr(self.processor, "tokenizer", None)
        if tokenizer is not None:
            tokenizer.padding_side = "left"  # decoder-only generation pads on the left
        self.merger = None
        if self.hf.merge_model:
            from transformers import AutoModelForCausalLM, AutoTokenizer

            try:
                self.merge_tokenizer = AutoTokenizer.from_pretrained(self.hf.merge_model)
                self.merger = AutoModelForCausalLM.from_pretrained(self.hf.merge_model, dtype=dtype)
            except (OSError, ValueError) as err:
                raise CaptionError(f"merge model {self.hf.merge_model!r}: cannot load: {err}") from err
            self.merger.to(self.hf.device).eval()
            self.name += f"+{self.hf.merge_model}"

    def _generate(self, conversations: list[list[dict]]) -> list[str]:
        import torch

        inputs = self.processor.apply_chat_template(
            conversations,
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            return_tensors="pt",
            processor_kwargs={"padding": True},
        ).to(self.hf.device)
        with torch.inference_mode():
            output = self.model.generate(**inputs, max_new_tokens=self.hf.max_new_tokens, do_sample=False)
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return [text.strip() for text in self.processor.batch_decode(new_tokens, skip_special_tokens=True)]

    def caption_frames(self, frames, meta: VideoInfo) -> list[FrameCaption]:
        from PIL import Image

        images = [Image.fromarray(resize_long_side(np.asarray(f), self.hf.image_size)) for f in frames.frames]
        conversations = [
            [
                {
                    "role": "user",
                    "content": [
                        {"type": "image", "image": image},
                        {"type": "text", "text": self.settings.frame_prompt},
                    ],
                }
            ]
            for image in images
        ]
        captions: list[str] = []
        for start in range(0, len(conversations), self.hf.batch_size):
            captions += self._generate(conversations[start : start + self.hf.batch_size])
        return [FrameCaption(round(float(t), 3), c) for t, c in zip(frames.timestamps, captions, strict=True)]

    def caption_video(self, frame_captions: list[FrameCaption], meta: VideoInfo) -> str:
        if self.merger is None:
            return super().caption_video(frame_captions, meta)
        import torch

        prompt = merge_prompt_text(self.settings.merge_prompt, frame_captions)
        tokenizer = self.merge_tokenizer
        if tokenizer.chat_template:
            inputs = tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}],
                add_generation_prompt=True,
                return_dict=True,
                return_tensors="pt",
            )
        else:
            inputs = tokenizer(prompt, return_tensors="pt")
        inputs = inputs.to(self.hf.device)
        with torch.inference_mode():
            output = self.merger.generate(
                **inputs, max_new_tokens=4 * self.hf.max_new_tokens, do_sample=False
            )
        return tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True).strip()

    def close(self) -> None:
        self.model = self.merger = None
