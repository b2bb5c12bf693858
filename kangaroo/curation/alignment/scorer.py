"""Load a CLIP-family checkpoint (any `AutoModel` with `get_image_features`/`get_text_features`: CLIP, SigLIP)
with its tokenizer and image processor, and embed key frames and captions with it."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path

import numpy as np

from kangaroo.errors import KangarooError

log = logging.getLogger(__name__)
POINTER_FILE = "alignment_model.json"  # a folder naming a hub checkpoint instead of holding weights


class AlignmentError(KangarooError):
    """The alignment model cannot be loaded or used."""


def encode_embedding(vector: np.ndarray) -> str:
    """A unit vector as base64 float16 (2 bytes a dimension: ~1.4 KB a row for a 512-d CLIP)."""
    return base64.b64encode(np.asarray(vector, dtype="<f2").tobytes()).decode("ascii")


def decode_embedding(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f2").astype(np.float32)


def _normalise(x):
    return x / x.norm(dim=-1, keepdim=True).clamp_min(1e-8)


def _pooled(output):
    """transformers 5 returns a ModelOutput whose pooler_output is the projected embedding; older a tensor."""
    return output if hasattr(output, "norm") else output.pooler_output


def resolve_model_source(folder_or_id: str | Path) -> str:
    """A folder written by `kangaroo alignment-model` holds weights, or a pointer naming a hub id/folder."""
    folder = Path(folder_or_id)
    pointer = folder / POINTER_FILE
    if pointer.is_file():
        return json.loads(pointer.read_text())["model"]
    return str(folder_or_id)


class AlignmentScorer:
    """Unit-norm embeddings of frames (letterboxed to a square so nothing is cropped away) and captions."""

    def __init__(self, model, tokenizer, image_processor, name: str, batch_size: int = 32) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.name = name
        self.batch_size = batch_size
        self.max_text_tokens = min(int(getattr(tokenizer, "model_max_length", 64) or 64), 64)

    @classmethod
    def load(cls, folder_or_id: str | Path, batch_size: int = 32) -> AlignmentScorer:
        from transformers import AutoImageProcessor, AutoModel, AutoTokenizer

        source = resolve_model_source(folder_or_id)
        try:
            model = AutoModel.from_pretrained(source, trust_remote_code=False)
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
            image_processor = AutoImageProcessor.from_pretrained(source, trust_remote_code=False)
        except (OSError, ValueError) as err:
            raise AlignmentError(f"alignment model {source!r}: cannot load: {err}") from err
        if not hasattr(model, "get_image_features") or not hasattr(model, "get_text_features"):
            raise AlignmentError(
                f"alignment model {source!r}: {type(model).__name__} is not a CLIP-family model"
            )
        summary = Path(folder_or_id) / "summary.json"
        name = json.loads(summary.read_text()).get("name", source) if summary.is_file() else source
        return cls(model, tokenizer, image_processor, name, batch_size)

    def _square(self, frame: np.ndarray) -> np.ndarray:
        from kangaroo.video.frames import apply_geometry, frame_geometry

        height, width = frame.shape[:2]
        return apply_geometry(frame, frame_geometry(width, height, max(width, height), "pad"))

    def _input_size(self) -> tuple[int, int]:
        """(height, width) the model takes: the processor's crop when it crops, else its resize target."""
        processor = self.image_processor
        size = dict(getattr(processor, "size", None) or {})
        if getattr(processor, "do_center_crop", False) and getattr(processor, "crop_size", None):
            size = dict(processor.crop_size)
        if "height" in size:
            return int(size["height"]), int(size["width"])
        edge = int(size.get("shortest_edge", 224))
        return edge, edge

    def pixel_values(self, frames):
        """The model's input for RGB uint8 frames [H, W, 3]: each letterboxed to a square (nothing cropped
        away), resized to the processor's size and normalised with its mean and std. Done here with OpenCV
        and numpy because the PIL fallback of the processors (no torchvision) costs ~50 ms a frame."""
        import cv2
        import torch

        height, width = self._input_size()
        processor = self.image_processor
        batch = np.stack(
            [
                cv2.resize(self._square(np.asarray(f)), (width, height), interpolation=cv2.INTER_AREA)
                for f in frames
            ]
        ).astype(np.float32)
        batch *= float(getattr(processor, "rescale_factor", 1 / 255))
        mean = np.asarray(processor.image_mean, np.float32)
        std = np.asarray(processor.image_std, np.float32)
        return torch.from_numpy((batch - mean) / std).permute(0, 3, 1, 2).contiguous()

    def image_embeddings(self, frames) -> np.ndarray:
        """[N, D] unit vectors of RGB uint8 frames [H, W, 3]."""
        import torch

        chunks = []
        for start in range(0, len(frames), self.batch_size):
            pixels = self.pixel_values(frames[start : start + self.batch_size])
            with torch.inference_mode():
                chunks.append(_normalise(_pooled(self.model.get_image_features(pixel_values=pixels))))
        return torch.cat(chunks).float().numpy()

    def text_embeddings(self, texts: list[str]) -> np.ndarray:
        """[N, D] unit vectors of captions (padded to one length, as CLIP and SigLIP were trained)."""
        import torch

        chunks = []
        for start in range(0, len(texts), self.batch_size):
            tokens = self.tokenizer(
                list(texts[start : start + self.batch_size]),
                padding="max_length",
                truncation=True,
                max_length=self.max_text_tokens,
                return_tensors="pt",
            )
            # SigLIP's tokenizer names input_ids only (it was trained attending to its padding); CLIP's both.
            inputs = {k: tokens[k] for k in self.tokenizer.model_input_names if k in tokens}
            with torch.inference_mode():
                chunks.append(_normalise(_pooled(self.model.get_text_features(**inputs))))
        return torch.cat(chunks).float().numpy() if chunks else np.zeros((0, 1), np.float32)

    def video_embedding(self, frames) -> np.ndarray:
        """The mean of a video's key-frame embeddings, renormalised."""
        mean = self.image_embeddings(frames).mean(axis=0)
        return mean / max(float(np.linalg.norm(mean)), 1e-8)

    def row_alignment(self, frames, caption: str) -> dict:
        """The dataset.jsonl `alignment` field: model, cosine of caption and video, the video embedding."""
        video = self.video_embedding(frames)
        score = float(self.text_embeddings([caption])[0] @ video)
        return {"model": self.name, "score": round(score, 4), "video_embedding": encode_embedding(video)}


def load_alignment(folder: str | Path | None, batch_size: int = 32) -> AlignmentScorer | None:
    """The scorer of a folder written by `prepare_alignment_model`; None when alignment is disabled there."""
    if folder is None:
        return None
    summary = Path(folder) / "summary.json"
    if summary.is_file() and not json.loads(summary.read_text()).get("enabled", True):
        return None
    return AlignmentScorer.load(folder, batch_size)
