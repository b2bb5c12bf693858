"""The `openai` captioner: an OpenAI-compatible `/v1/chat/completions` endpoint (vLLM, KServe, TGI).

Each key frame is one request (a JPEG data URL plus the frame prompt). `caption_curated` captions
`max_concurrency` videos at once and every request takes a slot of one shared semaphore, so up to
`max_concurrency` requests are in flight across videos and the server's continuous batching sees a full batch.
Requests go through the openai SDK (its own retries off) and are retried by tenacity on timeouts,
connection errors, 408/409/425/429 and 5xx, waiting what the server's `Retry-After` says or else an
exponential backoff with jitter; any other 4xx fails at once (a wrong model name does not get better by
retrying). A video whose request exhausts the budget fails (CaptionError), never the task.
"""

from __future__ import annotations

import base64
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import cv2
import numpy as np
import openai
from tenacity import RetryCallState, Retrying, before_sleep_log, retry_if_exception, stop_after_attempt
from tenacity.wait import wait_base, wait_exponential_jitter

from kangaroo.config_policy import OBJECT_STORE_ENV
from kangaroo.curation.captioning.base import Captioner, CaptionError, FrameCaption, merge_prompt_text
from kangaroo.curation.filters import VideoInfo
from kangaroo.curation.frame_plan import resize_long_side
from kangaroo.curation.settings import CaptionSettings

log = logging.getLogger(__name__)
for _client_logger in ("httpx", "httpx2"):  # the SDK's HTTP client logs every request at INFO
    logging.getLogger(_client_logger).setLevel(logging.WARNING)
RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 120.0  # a server asking for longer is treated as down: the budget runs out instead


def jpeg_data_url(frame: np.ndarray, long_side: int) -> str:
    """An RGB frame as a `data:image/jpeg;base64,...` URL, shrunk to `long_side`."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(resize_long_side(frame, long_side), cv2.COLOR_RGB2BGR))
    if not ok:
        raise CaptionError("could not JPEG-encode a key frame")
    return "data:image/jpeg;base64," + base64.b64encode(encoded.tobytes()).decode("ascii")


def is_retryable(error: BaseException) -> bool:
    if isinstance(error, openai.APIConnectionError):  # includes timeouts
        return True
    return isinstance(error, openai.APIStatusError) and error.status_code in RETRYABLE_STATUS


def retry_after_seconds(error: BaseException | None) -> float | None:
    """The wait a 429/503 asked for (`Retry-After`: seconds or an HTTP date), or None."""
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


class wait_retry_after(wait_base):  # noqa: N801 - tenacity's naming for wait strategies
    """The server's Retry-After when it sent one (capped), else the fallback strategy."""

    def __init__(self, fallback: wait_base, cap_s: float = MAX_RETRY_AFTER_S) -> None:
        self.fallback = fallback
        self.cap_s = cap_s

    def __call__(self, retry_state: RetryCallState) -> float:
        asked = retry_after_seconds(retry_state.outcome.exception() if retry_state.outcome else None)
        return min(asked, self.cap_s) if asked is not None else self.fallback(retry_state)


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
        self.parallel_videos = self.api.max_concurrency
        self.client = openai.OpenAI(
            base_url=self.api.base_url,
            api_key=os.environ.get(self.api.api_key_env, "EMPTY"),
            timeout=self.api.timeout_s,
            max_retries=0,  # tenacity retries, with Retry-After and the configured backoff
        )
        self.in_flight = threading.BoundedSemaphore(self.api.max_concurrency)
        self.pool = ThreadPoolExecutor(max_workers=self.api.max_concurrency, thread_name_prefix="caption-req")
        self.retrying = Retrying(
            stop=stop_after_attempt(self.api.max_retries + 1),
            wait=wait_retry_after(
                wait_exponential_jitter(initial=self.api.backoff_s, max=60.0, jitter=self.api.backoff_s)
            ),
            retry=retry_if_exception(is_retryable),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )

    def _request(self, messages: list[dict], max_tokens: int) -> str:
        with self.in_flight:
            response = self.client.chat.completions.create(
                model=self.api.model, messages=messages, max_tokens=max_tokens, temperature=0.0
            )
        try:
            return response.choices[0].message.content.strip()
        except (AttributeError, IndexError, TypeError) as err:
            raise CaptionError(f"{self.url}: not a chat completion: {str(response)[:300]}") from err

    def complete(self, content: list[dict] | str, max_tokens: int) -> str:
        """One chat completion, retried; returns the assistant message's text or raises CaptionError."""
        messages = [{"role": "user", "content": content}]
        try:
            return self.retrying(self._request, messages, max_tokens)
        except openai.APIStatusError as err:
            if is_retryable(err):
                raise CaptionError(
                    f"{self.url}: gave up after {self.api.max_retries + 1} attempts; last: HTTP "
                    f"{err.status_code}: {err.message[:200]}"
                ) from err
            raise CaptionError(f"{self.url}: HTTP {err.status_code}: {err.message[:300]}") from err
        except openai.APIConnectionError as err:
            raise CaptionError(
                f"{self.url}: gave up after {self.api.max_retries + 1} attempts; last: "
                f"{type(err).__name__}: {err}"
            ) from err
        except openai.OpenAIError as err:  # e.g. a body that is not a chat completion
            raise CaptionError(f"{self.url}: {type(err).__name__}: {err}") from err

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
        self.client.close()
