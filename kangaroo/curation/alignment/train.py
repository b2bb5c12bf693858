"""The alignment model for a machine without a pretrained CLIP: a tiny SigLIP trained on the corpus's
captioned stills by locked-image tuning (LiT, Zhai et al. 2022).

The vision side is the tower caption-tag pre-training already trained (kangaroo.train.vision_tags),
locked; only SigLIP's attention-pooling head, the text tower and the logit scale/bias learn, with SigLIP's
sigmoid loss.
The tower's patch tokens are computed once, so a step costs a small text forward: well under a minute here.
The result is a stock `SiglipModel` folder (save_pretrained, safetensors) with tokenizer and image processor,
loaded by AlignmentScorer exactly like a hub checkpoint. When `caption.alignment.model` names a checkpoint
(hub id, folder or s3:// prefix) nothing is trained: the folder records (or holds) that checkpoint.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from kangaroo.curation.alignment.scorer import POINTER_FILE, AlignmentError, AlignmentScorer
from kangaroo.jsonl import read_jsonl
from kangaroo.train.optimizer import adamw

log = logging.getLogger(__name__)


def _read_stills(corpus_dir: Path, split: str, limit: int) -> tuple[list[np.ndarray], list[str]]:
    from kangaroo.video import VideoError, read_image

    source = corpus_dir / "images.jsonl"
    rows = [r for r in read_jsonl(source, AlignmentError) if r.get("split", "train") == split][:limit]
    frames, captions = [], []
    for row in tqdm(rows, desc=f"read {split} stills", unit="image", leave=False):
        try:
            frames.append(read_image(corpus_dir / row["image"], size=None).frames[0])
        except VideoError as err:
            log.warning("alignment training skips %s: %s", row["image"], err)
            continue
        captions.append(row["caption"])
    return frames, captions


def _noisy(caption: str, rng: np.random.Generator, word_dropout: float) -> str:
    """EDA-style text noise (Wei & Zou 2019): random word deletion, 0-3 inserted content-free tokens
    (hashtags, numbers) and random casing, so a text tower trained on clean still captions also reads noisy
    alt-text ("video of RED CIRCLE and blue square HD #loop") by its content words."""
    words = [w for w in caption.split() if rng.random() >= word_dropout] or caption.split()
    for _ in range(int(rng.integers(0, 4))):
        letters = "".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), size=int(rng.integers(2, 9))))
        token = f"#{letters}" if rng.random() < 0.5 else f"{int(rng.integers(1, 2000))}{letters[:1]}"
        words.insert(int(rng.integers(0, len(words) + 1)), token)
    text = " ".join(words)
    casing = rng.random()
    return text.upper() if casing < 0.25 else text.lower() if casing < 0.5 else text


def _sigmoid_loss(image, text, scale, bias, same_caption):
    """SigLIP's pairwise sigmoid loss; pairs with the same caption text count as positives."""
    import torch

    logits = image @ text.T * scale.exp() + bias
    labels = 2.0 * same_caption - 1.0
    return -torch.nn.functional.logsigmoid(labels * logits).sum() / len(image)


def _held_out(scorer: AlignmentScorer, frames: list[np.ndarray], captions: list[str], seed: int) -> dict:
    """Own-vs-other on held-out stills: how often a caption scores higher with its own still than with a
    random other still that has a different caption (the gate's row check), and caption->still top-1."""
    if len(captions) < 2:
        return {}
    images = scorer.image_embeddings(frames)
    texts = scorer.text_embeddings(captions)
    similarity = texts @ images.T
    rng = np.random.default_rng(seed)
    others = [
        rng.choice([j for j in range(len(captions)) if captions[j] != captions[i]] or [i])
        for i in range(len(captions))
    ]
    own = similarity.diagonal()
    beats_other = float(np.mean([own[i] > similarity[i, j] for i, j in enumerate(others)]))
    best = similarity.argmax(axis=1)
    top1 = float(np.mean([captions[b] == captions[i] for i, b in enumerate(best)]))
    return {
        "held_out_images": len(captions),
        "own_beats_random_other": beats_other,
        "caption_to_image_top1": top1,
    }


def prepare_alignment_model(params, corpus_dir, tower_dir, out_dir: str | Path) -> dict:
    """Fill `out_dir` with the model `caption.alignment` names (or train one); returns summary.json."""
    settings = params.caption.alignment
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if not settings.enabled:
        summary = {"enabled": False}
    elif settings.model.startswith("s3://"):
        from kangaroo.storage import ObjectStore

        ObjectStore.from_settings(params.storage).download_dir(settings.model, out_dir)
        summary = {"enabled": True, "name": settings.model, "source": settings.model}
    elif settings.model:
        (out_dir / POINTER_FILE).write_text(json.dumps({"model": settings.model}) + "\n")
        summary = {"enabled": True, "name": settings.model, "source": settings.model}
    else:
        summary = train_tiny_alignment_model(params, Path(corpus_dir), Path(tower_dir), out_dir)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def train_tiny_alignment_model(params, corpus_dir: Path, tower_dir: Path, out_dir: Path) -> dict:
    import torch
    from safetensors.torch import load_file
    from transformers import AutoConfig, SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipTextConfig

    from kangaroo.model.tokenizer import build_tiny_tokenizer
    from kangaroo.train.threads import set_intra_op_threads

    train = params.caption.alignment.train
    if not (tower_dir / "config.json").is_file():
        raise AlignmentError(
            f"{tower_dir}: no pre-trained vision tower to lock; set caption.alignment.model to a CLIP/SigLIP "
            "checkpoint (hub id, folder or s3:// prefix) or enable train.vision_pretrain"
        )
    started = time.monotonic()
    torch.manual_seed(train.seed)
    # the training threads (capped at the cores): 2 threads took 46 s against 57 s for 1 on 2 idle cores
    set_intra_op_threads(params.train.torch_threads)
    vision_config = AutoConfig.from_pretrained(tower_dir)
    vision_config.vision_use_head = True
    tokenizer = build_tiny_tokenizer(params.model.tiny_vocab_size)
    tokenizer.model_input_names = [
        "input_ids"
    ]  # SigLIP style: fixed length, the text tower reads its padding
    tokenizer.model_max_length = train.max_text_tokens
    text_config = SiglipTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=train.text_width,
        intermediate_size=2 * train.text_width,
        num_hidden_layers=train.text_layers,
        num_attention_heads=max(1, train.text_width // 32),
        max_position_embeddings=train.max_text_tokens,
        projection_size=vision_config.hidden_size,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = SiglipModel(
        SiglipConfig(text_config=text_config.to_dict(), vision_config=vision_config.to_dict())
    )
    missing, unexpected = model.vision_model.load_state_dict(
        load_file(tower_dir / "model.safetensors"), strict=False
    )
    if unexpected or any(not name.startswith("head.") for name in missing):
        raise AlignmentError(
            f"{tower_dir}: not a SigLIP vision tower (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    size = vision_config.image_size
    processor = SiglipImageProcessor(
        size={"height": size, "width": size},
        image_mean=list(params.model.image_mean),
        image_std=list(params.model.image_std),
    )
    scorer = AlignmentScorer(model, tokenizer, processor, name=f"tiny-siglip-lit ({tower_dir.name})")

    frames, captions = _read_stills(corpus_dir, "train", train.max_images)
    if len(captions) < 2:
        raise AlignmentError(
            f"{corpus_dir / 'images.jsonl'}: {len(captions)} train stills, alignment training needs 2+"
        )
    vision = model.vision_model
    with torch.inference_mode():  # the locked tower's tokens, once
        tokens = torch.cat(
            [
                vision.post_layernorm(
                    vision.encoder(
                        inputs_embeds=vision.embeddings(scorer.pixel_values(frames[i : i + 256]))
                    ).last_hidden_state
                )
                for i in range(0, len(frames), 256)
            ]
        ).clone()

    def token_ids(texts: list[str]):
        return tokenizer(
            texts,
            padding="max_length",
            truncation=True,
            max_length=train.max_text_tokens,
            return_tensors="pt",
        )["input_ids"]

    noise = np.random.default_rng(train.seed)
    caption_index = torch.tensor(np.unique(captions, return_inverse=True)[1])
    trainable = [
        *vision.head.parameters(),
        *model.text_model.parameters(),
        model.logit_scale,
        model.logit_bias,
    ]
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    for parameter in trainable:
        parameter.requires_grad_(True)
    with torch.no_grad():  # SigLIP's initialisation: temperature 10, bias -10
        model.logit_scale.fill_(np.log(10.0))
        model.logit_bias.fill_(-10.0)
    optimizer = adamw(trainable, lr=train.lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=train.lr, total_steps=train.steps, pct_start=0.1
    )
    generator = torch.Generator().manual_seed(train.seed)
    model.train()
    first_loss = loss = None
    log.info("alignment training: %d stills read and embedded by the locked tower", len(captions))
    for _ in tqdm(range(train.steps), desc="alignment training", unit="step"):
        batch = torch.randint(len(captions), (min(train.batch_size, len(captions)),), generator=generator)
        image = torch.nn.functional.normalize(vision.head(tokens[batch]), dim=-1)
        texts = [_noisy(captions[i], noise, train.word_dropout) for i in batch.tolist()]
        text = torch.nn.functional.normalize(
            model.text_model(input_ids=token_ids(texts)).pooler_output, dim=-1
        )
        same = (caption_index[batch, None] == caption_index[None, batch]).float()
        loss = _sigmoid_loss(image, text, model.logit_scale, model.logit_bias, same)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        first_loss = float(loss) if first_loss is None else first_loss
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    eval_frames, eval_captions = _read_stills(corpus_dir, "eval", train.eval_images)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    processor.save_pretrained(out_dir)
    summary = {
        "enabled": True,
        "name": scorer.name,
        "source": "trained",
        "train_images": len(captions),
        "steps": train.steps,
        "first_loss": first_loss,
        "final_loss": float(loss),
        **_held_out(scorer, eval_frames, eval_captions, train.seed),
        "wall_time_s": round(time.monotonic() - started, 2),
    }
    log.info("alignment model (LiT on %s): %s", tower_dir, summary)
    return summary
