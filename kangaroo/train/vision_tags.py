"""Vision-tower pre-training by caption-tag classification, for a model without a pretrained encoder.

The paper starts from EVA-CLIP, pretrained on billions of image-text pairs. The tiny profile cannot download a
tower, and one trained from scratch through the LLM's caption loss learnt colours but hardly shapes, so it
could not tell which shape had which colour (the questions need that binding). CatLIP (Mehta et al., 2024)
recasts image-text pre-training as multi-label classification over the caption vocabulary; here the tags are
caption words and adjacent-word pairs inside a phrase ("cyan square"), kept when seen `min_tag_count` times.
A linear head on every patch token, max-pooled over the tokens, predicts an image's tags, so each tag is
evidenced at one place of the image: the patch tokens a video LLM reads carry "what is where".
Where the stills annotate their objects (`shapes` with centres, like detection data), each object's tags are
also the target of the token under its centre and of no other token (`region_loss_weight`), and a place head
makes every token say where in the grid it sits (`place_loss_weight`): the shapes click ~3x sooner.

The output is a plain vision-model folder (`save_pretrained`), loaded by `model.vision_model` like any
pretrained tower, plus `tags.json` and `summary.json`.
"""

from __future__ import annotations

import json
import logging
import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from kangaroo.jsonl import read_jsonl
from kangaroo.train.errors import TrainInputError
from kangaroo.train.optimizer import adamw
from kangaroo.train.settings import VisionPretrainSettings
from kangaroo.train.threads import set_intra_op_threads
from kangaroo.video.frames import apply_geometry, frame_geometry

log = logging.getLogger(__name__)

STOPWORDS = frozenset("a an the and or of on in at with to is are its it this that by for from".split())
PHRASE_BREAK = re.compile(r"[,.;:!?()\[\]|]")


def caption_terms(caption: str) -> set[str]:
    """Words and within-phrase word pairs of a caption, lower case, stopwords dropped.

    "A cyan square, a purple triangle on a black background." -> cyan, square, cyan square, purple, ...
    Phrases end at punctuation and stopwords, so "square" and "purple" never pair up across a comma.
    """
    terms: set[str] = set()
    for phrase in PHRASE_BREAK.split(caption.lower()):
        run: list[str] = []
        for word in [*re.findall(r"[a-z]+", phrase), ""]:
            if word and word not in STOPWORDS:
                run.append(word)
                continue
            terms.update(run)
            terms.update(f"{a} {b}" for a, b in zip(run, run[1:], strict=False))
            run = []
    return terms


def build_tag_vocabulary(captions: list[str], min_count: int, max_tags: int) -> list[str]:
    """The `max_tags` most frequent caption terms in at least `min_count` captions (ties: alphabetical)."""
    counts: dict[str, int] = {}
    for caption in captions:
        for term in caption_terms(caption):
            counts[term] = counts.get(term, 0) + 1
    frequent = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t))
    return frequent[:max_tags]


def tag_targets(captions: list[str], tags: list[str]) -> torch.Tensor:
    """[len(captions), len(tags)] multi-hot float targets."""
    index = {tag: i for i, tag in enumerate(tags)}
    targets = torch.zeros(len(captions), len(tags))
    for row, caption in enumerate(captions):
        for term in caption_terms(caption):
            if term in index:
                targets[row, index[term]] = 1.0
    return targets


class TokenTagger(torch.nn.Module):
    """Vision tower + per-token linear tag head, max-pooled over the tokens of an image; with `num_places`,
    also a linear head that reads each token's own place in the patch grid from its features."""

    def __init__(self, tower: torch.nn.Module, width: int, num_tags: int, num_places: int = 0):
        super().__init__()
        self.tower = tower
        self.head = torch.nn.Linear(width, num_tags)
        self.place_head = torch.nn.Linear(width, num_places) if num_places else None

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.token_outputs(pixel_values)[0].amax(dim=1)

    def token_outputs(self, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Per-token tag logits [B, tokens, tags] and place logits [B, tokens, places] (None without)."""
        tokens = self.tower(pixel_values=pixel_values).last_hidden_state
        # the same per-image standardisation the model applies before patchify (per_video)
        tokens = (tokens - tokens.mean(1, keepdim=True)) / (tokens.std(1, keepdim=True) + 1e-4)
        places = self.place_head(tokens) if self.place_head is not None else None
        return self.head(tokens), places


def place_loss(place_logits: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of every token against its own index in the patch grid."""
    batch, tokens, places = place_logits.shape
    targets = torch.arange(tokens).repeat(batch)
    return torch.nn.functional.cross_entropy(place_logits.reshape(batch * tokens, places), targets)


def _stills(
    corpus_dir: Path, split: str, size: int, policy: str, limit: int | None = None
) -> tuple[torch.Tensor, list[dict]]:
    """The split's stills as uint8 [N, 3, size, size] (a quarter of float32's memory) and their rows, each
    with its file's `width` and `height` added; at most `limit` of them (the first readable ones)."""
    from kangaroo.video import VideoError, read_image

    source = corpus_dir / "images.jsonl"
    if not source.is_file():
        raise TrainInputError(f"{source}: missing (vision pre-training reads the corpus's image captions)")
    rows = [r for r in read_jsonl(source, TrainInputError) if r.get("split", "train") == split]
    frames, kept = [], []
    for row in tqdm(rows, desc=f"read {split} stills", unit="image", leave=False):
        if limit is not None and len(kept) >= limit:
            break
        try:
            image = read_image(corpus_dir / row["image"], size=None, policy=policy)
        except VideoError as err:
            log.warning("vision pre-training skips %s: %s", row["image"], err)
            continue
        height, width = image.frames.shape[1:3]
        frames.append(apply_geometry(image.frames[0], frame_geometry(width, height, size, policy)))
        kept.append({**row, "width": width, "height": height})
    if not frames:
        return torch.zeros(0, 3, size, size, dtype=torch.uint8), []
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).contiguous(), kept


def _cell_targets(
    rows: list[dict], tags: list[str], patch: int, size: int, policy: str
) -> tuple[torch.Tensor, list[int]]:
    """Where stills annotate their objects (`shapes`: shape, color and centre x, y as fractions of the
    image), each object's tags ("red", "circle", "red circle") are the targets of the patch token its centre
    falls in, the other tokens' targets for those tags are 0: [N, tokens, object tags] bool, and the
    columns of `tags` they are. Stills without annotations get no region target (all 0) for no token."""
    index = {tag: i for i, tag in enumerate(tags)}
    object_tags = sorted(
        {
            index[t]
            for row in rows
            for o in row.get("shapes", [])
            for t in caption_terms(f"{o['color']} {o['shape']}")
            if t in index
        }
    )
    column = {tag_index: c for c, tag_index in enumerate(object_tags)}
    grid = size // patch
    targets = torch.zeros(len(rows), grid * grid, len(object_tags), dtype=torch.bool)
    for n, row in enumerate(rows):
        geometry = frame_geometry(row["width"], row["height"], size, policy)
        (x0, y0, x1, y1), (scaled_w, scaled_h) = geometry.crop, geometry.scaled
        for obj in row.get("shapes", []):
            # image fraction -> canvas pixel, through the same crop / scale / pad as the pixels
            x = (obj["x"] * row["width"] - x0) / (x1 - x0) * scaled_w + geometry.offset[0]
            y = (obj["y"] * row["height"] - y0) / (y1 - y0) * scaled_h + geometry.offset[1]
            if not (0 <= x < grid * patch and 0 <= y < grid * patch):
                continue  # cropped away
            token = int(y // patch) * grid + int(x // patch)
            for term in caption_terms(f"{obj['color']} {obj['shape']}"):
                if term in index:
                    targets[n, token, column[index[term]]] = True
    return targets, object_tags


def _normalise(pixels: torch.Tensor, model) -> torch.Tensor:
    """uint8 frames -> the processor's input (KangarooProcessor: /255, then model.image_mean / image_std)."""
    mean = torch.tensor(model.image_mean).view(1, 3, 1, 1)
    return (pixels.float().div_(255.0) - mean) / torch.tensor(model.image_std).view(1, 3, 1, 1)


def _mean_average_precision(scores: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean over tags (with at least one positive) of average precision: ranks images per tag."""
    precisions = []
    for tag in range(targets.shape[1]):
        positives = targets[:, tag].sum()
        if positives == 0:
            continue
        order = scores[:, tag].argsort(descending=True)
        hits = targets[order, tag]
        precision_at_hit = hits.cumsum(0) / torch.arange(1, len(hits) + 1)
        precisions.append(float((precision_at_hit * hits).sum() / positives))
    return float(np.mean(precisions)) if precisions else 0.0


def tower_overrides(folder: str | Path | None) -> list[str]:
    """Params overrides that make a fresh model load the tower saved in `folder`; none when the folder holds
    no weights (pre-training disabled: `model.vision_model` stays as configured)."""
    if folder is None or not (Path(folder) / "config.json").is_file():
        return []
    return [f"model.vision_model={Path(folder).resolve()}"]


def pretrain_vision_tower(params, corpus_dir: str | Path, out_dir: str | Path) -> dict[str, Any]:
    """Train a fresh `model.vision` tower on the corpus's captioned stills; save it to `out_dir`.

    Returns the summary (also written to out_dir/summary.json): steps, losses, held-out tag mAP of the trained
    tower and of the untrained one (the floor it must clear). Disabled (`train.vision_pretrain.enabled`
    false), only the summary is written and the first stage builds its tower from `model.vision_model`.
    """
    from transformers import AutoModel

    from kangaroo.model.build import vision_config

    settings: VisionPretrainSettings = params.train.vision_pretrain
    corpus_dir, out_dir = Path(corpus_dir), Path(out_dir)
    if not settings.enabled:
        out_dir.mkdir(parents=True, exist_ok=True)
        summary = {"enabled": False, "vision_model": params.model.vision_model}
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        log.info("vision pre-training disabled: the first stage uses model.vision_model as configured")
        return summary
    model = params.model
    torch.manual_seed(params.train.seed)
    set_intra_op_threads(params.train.torch_threads)
    size, policy = model.image_size, params.video.resize_policy
    train_pixels, train_rows = _stills(corpus_dir, "train", size, policy)
    train_captions = [row["caption"] for row in train_rows]
    if len(train_captions) < settings.batch_size:
        raise TrainInputError(
            f"{corpus_dir / 'images.jsonl'}: {len(train_captions)} train stills, vision pre-training "
            f"needs at least one batch ({settings.batch_size})"
        )
    tags = build_tag_vocabulary(train_captions, settings.min_tag_count, settings.max_tags)
    if not tags:
        raise TrainInputError(
            f"{corpus_dir / 'images.jsonl'}: no caption term in {settings.min_tag_count} captions or more"
        )
    targets = tag_targets(train_captions, tags)
    config = vision_config(model, use_pretrained=False)
    num_places = (config.image_size // config.patch_size) ** 2 if settings.place_loss_weight else 0
    tagger = TokenTagger(AutoModel.from_config(config), config.hidden_size, len(tags), num_places)
    eval_pixels, eval_rows = _stills(corpus_dir, "eval", size, policy, limit=settings.eval_images)
    eval_targets = tag_targets([row["caption"] for row in eval_rows], tags) if eval_rows else None

    # colour-shape pairs apart: their AP rises late (the shapes "click"), hidden in the mAP over all tags
    pair_columns = [i for i, tag in enumerate(tags) if " " in tag]

    def held_out_map() -> tuple[float | None, float | None]:
        """mAP over all tags and over the word-pair tags of the held-out stills."""
        if eval_targets is None:
            return None, None
        tagger.eval()
        with torch.no_grad():
            scores = torch.cat([tagger(_normalise(chunk, model)) for chunk in eval_pixels.split(128)])
        tagger.train()
        pairs = None
        if pair_columns:
            pairs = _mean_average_precision(scores[:, pair_columns], eval_targets[:, pair_columns])
        return _mean_average_precision(scores, eval_targets), pairs

    untrained_map, untrained_pair_map = held_out_map()
    optimizer = adamw(tagger.parameters(), lr=settings.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=settings.lr, total_steps=settings.steps, pct_start=0.03, anneal_strategy="cos"
    )
    cell_targets, object_columns = None, []
    if settings.region_loss_weight:
        cell_targets, object_columns = _cell_targets(train_rows, tags, config.patch_size, size, policy)
    curve: list[dict[str, Any]] = []
    generator = torch.Generator().manual_seed(params.train.seed)
    started, first_loss, loss = time.monotonic(), None, torch.tensor(0.0)
    progress = tqdm(range(settings.steps), desc="vision pre-training", unit="step")
    for step in progress:
        batch = torch.randint(len(train_captions), (settings.batch_size,), generator=generator)
        token_logits, places = tagger.token_outputs(_normalise(train_pixels[batch], model))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(token_logits.amax(1), targets[batch])
        if places is not None:
            loss = loss + settings.place_loss_weight * place_loss(places)
        if cell_targets is not None:
            loss = loss + settings.region_loss_weight * torch.nn.functional.binary_cross_entropy_with_logits(
                token_logits[..., object_columns], cell_targets[batch].float()
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        first_loss = first_loss if first_loss is not None else float(loss.detach())
        if step % 100 == 0:
            progress.set_postfix(loss=f"{float(loss):.4f}")
        if settings.eval_every and (step + 1) % settings.eval_every == 0 and step + 1 < settings.steps:
            tag_map, pair_tag_map = held_out_map()
            curve.append({"step": step + 1, "tag_map": tag_map, "pair_tag_map": pair_tag_map})
            log.info("vision pre-training step %d: held-out %s", step + 1, curve[-1])
    trained_map, trained_pair_map = held_out_map()
    out_dir.mkdir(parents=True, exist_ok=True)
    tagger.tower.save_pretrained(out_dir)
    (out_dir / "tags.json").write_text(json.dumps(tags, indent=1))
    summary = {
        "enabled": True,
        "steps": settings.steps,
        "num_images": len(train_captions),
        "num_tags": len(tags),
        "first_loss": first_loss,
        "final_loss": float(loss),
        "held_out_tag_map": trained_map,
        "held_out_tag_map_untrained": untrained_map,
        "held_out_pair_tag_map": trained_pair_map,
        "held_out_pair_tag_map_untrained": untrained_pair_map,
        "held_out_curve": curve,
        "wall_time_s": time.monotonic() - started,
    }
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    log.info(
        "vision tower pre-trained on %d stills, %d caption tags: held-out tag mAP %s (untrained %s) -> %s",
        len(train_captions),
        len(tags),
        f"{trained_map:.3f}" if trained_map is not None else "n/a",
        f"{untrained_map:.3f}" if untrained_map is not None else "n/a",
        out_dir,
    )
    return summary
