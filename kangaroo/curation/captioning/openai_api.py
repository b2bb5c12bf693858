"""The `openai` captioner: an OpenAI-compatible `/v1/chat/completions` endpoint (vLLM, KServe, TGI).

Each key frame is one request (a JPEG data URL plus the frame prompt); up to `max_concurrency` requests are
in flight at once, so the server's continuous batching sees a full batch. Every request has a timeout and
is retried with exponential backoff on timeouts, connection errors, 429 and 5xx; any other 4xx fails at
once (a wrong model name or a malformed request does not get better by retrying).
"""

from __future__ import annotations

import base64
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import requests

from kangaroo.config_policy import OBJECT_STORE_ENV
from kangaroo.curation.captioning.base import Captioner, CaptionError, FrameCaption, merge_prompt_text
from kangaroo.curation.filters import VideoInfo
from kangaroo.curation.plan import resize_long_side
from kangaroo.curation.settings import CaptionSettings

log = logging.getLogger(__name__)
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


def jpeg_data_url(frame: np.ndarray, long_side: int) -> str:
    """An RGB frame as a `data:image/jpeg;base64,...` URL, shrunk to `long_side`."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(resize_long_side(frame, long_side), cv2.COLOR_RGB2BGR))
    if not ok:
        raise CaptionError("could not JPEG-encode a key frame")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


class OpenAICaptioner(Captioner):
    def __init__(self, settings: CaptionSettings) -> None:
        self.settings = settings
        self.api = settings.openai
        self.url = self.api.base_url.rstrip("/") + "/chat/completions"
        self.name = f"openai:{self.api.model}"
        self.duplicate_iou = settings.duplicate_iou
        if self.api.api_key_env in OBJECT_STORE_ENV:  # settings built with model_copy skip validation
            raise CaptionError(
                f"caption.openai.api_key_env: {self.api.api_key_env} is an object-store secret"
            )
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {os.environ.get(self.api.api_key_env, 'EMPTY')}"
        self.pool = ThreadPoolExecutor(max_workers=self.api.max_concurrency, thread_name_prefix="caption")
        self.retries = 0  # retried requests so far (for the summary)

    def complete(self, content: list[dict] | str, max_tokens: int) -> str:
        """One chat completion with retries; returns the assistant message's text."""
        body = {
            "model": self.api.model,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
            "temperature": 0.0,
        }
        last_error = ""
        for attempt in range(self.api.max_retries + 1):
            if attempt:
                self.retries += 1
                time.sleep(self.api.backoff_s * 2 ** (attempt - 1))
            try:
                response = self.session.post(self.url, json=body, timeout=self.api.timeout_s)
            except (requests.Timeout, requests.ConnectionError) as err:
                last_error = f"{type(err).__name__}: {err}"
                log.warning("%s: attempt %d: %s", self.url, attempt + 1, last_error)
                continue
            if response.status_code in RETRYABLE_STATUS:
                last_error = f"HTTP {response.status_code}: {response.text[:200]}"
                log.warning("%s: attempt %d: %s", self.url, attempt + 1, last_error)
                continue
            if response.status_code != 200:
                raise CaptionError(f"{self.url}: HTTP {response.status_code}: {response.text[:300]}")
            try:
                return response.json()["choices"][0]["message"]["content"].strip()
            except (ValueError, KeyError, IndexError, TypeError, AttributeError) as err:
                raise CaptionError(f"{self.url}: not a chat completion: {response.text[:300]}") from err
        raise CaptionError(
            f"{self.url}: gave up after {self.api.max_retries + 1} attempts; last: {last_error}"
        )

    def caption_frames(self, frames, meta: VideoInfo) -> list[FrameCaption]:
        contents = [
            [
                {"type": "text", "text": self.settings.frame_prompt},
                {
                    "type": "image_url",
                    "image_url": {"url": jpeg_data_url(np.asarray(f), self.api.image_size)},
                },
            ]
            for f in frames.frames
        ]
        captions = list(self.pool.map(lambda content: self.complete(content, self.api.max_tokens), contents))
        return [FrameCaption(round(float(t), 3), c) for t, c in zip(frames.timestamps, captions, strict=True)]

    def caption_video(self, frame_captions: list[FrameCaption], meta: VideoInfo) -> str:
        if not self.api.merge_with_llm:
            return super().caption_video(frame_captions, meta)
        prompt = merge_prompt_text(self.settings.merge_prompt, frame_captions)
        return self.complete(prompt, 4 * self.api.max_tokens)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.session.close()
