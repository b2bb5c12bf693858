"""The tiny Kangaroo model on CPU: shapes, training signal, save/load, packing, time, generation."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM, AutoProcessor

from kangaroo.config import read_params_tree, resolve_profile
from kangaroo.model import (
    KangarooForConditionalGeneration,
    KangarooProcessor,
    ModelBuildError,
    build_model_and_processor,
    load_model_and_processor,
    save_model_and_processor,
)
from kangaroo.model.settings import ModelSettings

PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def profile_settings(profile: str) -> ModelSettings:
    """Only the `model:` block of params.yaml, so other blocks' state does not matter here."""
    tree = resolve_profile(read_params_tree(PARAMS), profile, str(PARAMS))
    return ModelSettings.model_validate(tree.get("model", {}))  # a profile without one keeps the defaults


def clip(num_frames: int, size: int = 64, seed: int = 0, fps: float = 2.0) -> dict:
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (num_frames, size, size, 3), dtype=np.uint8)
    return {"frames": frames, "timestamps": np.arange(num_frames) / fps}


def qa(question: str = "What colour is the circle?", answer: str = "The circle is red.") -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


@pytest.fixture(scope="module")
def tiny():
    model, processor = build_model_and_processor(profile_settings("tiny"))
    return model.eval(), processor


def test_forward_backward_reaches_every_module_group(tiny):
    model, processor = tiny
    model.train()
    batch = processor(
        [qa(), qa("Where does the square move?", "It moves left.")], videos=[clip(5), clip(2, seed=1)]
    )
    assert batch["pixel_values"].shape == (7, 3, 64, 64)
    assert batch["video_frame_counts"].tolist() == [5, 2]
    out = model(**batch)
    # training puts only the positions that predict a label through the LM head
    assert torch.isfinite(out.loss) and out.logits.shape[0] == int((batch["labels"][:, 1:] != -100).sum())
    model.zero_grad()
    out.loss.backward()
    for name, module in model.module_groups().items():
        grads = [p.grad.abs().sum() for p in module.parameters() if p.grad is not None]
        assert grads and sum(grads) > 0, f"no gradient reaches {name}"
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, f"parameters without gradient (DDP/ZeRO would flag them): {unused}"
    model.zero_grad()
    model.eval()


def test_training_loss_from_labelled_positions_only_equals_the_full_logits_loss(tiny):
    model, processor = tiny
    batch = processor(
        [qa(), qa("Where does the square move?", "It moves left.")], videos=[clip(5), clip(2, seed=1)]
    )
    labelled = batch["labels"][:, 1:] != -100
    assert 0 < int(labelled.sum()) < labelled.numel() // 3  # replies are a small part of the tokens
    losses, grads = [], []
    for training in (False, True):
        model.train(training)
        model.zero_grad()
        out = model(**batch)
        out.loss.backward()
        losses.append(out.loss.detach())
        grads.append(model.projector.linear_1.weight.grad.clone())
        if not training:  # the textbook loss: every position's logits, labels shifted by one
            full = F.cross_entropy(out.logits[:, :-1].flatten(0, 1), batch["labels"][:, 1:].flatten())
            torch.testing.assert_close(out.loss, full)
    model.zero_grad()
    model.eval()
    torch.testing.assert_close(losses[1], losses[0])
    torch.testing.assert_close(grads[1], grads[0], atol=1e-6, rtol=1e-4)


def assert_connector_fan_in_scaled(model):
    """Patchify + projector Linears start at std fan_in^-0.5; the LLM-wide 0.02 would make three narrow
    stacked layers shrink the visual signal ~100x (QA learning stalled on a plateau). The additive timestamp
    projection keeps the small default."""
    layers = [
        m
        for part in (model.patchify, model.projector)
        for m in part.modules()
        if isinstance(m, torch.nn.Linear)
    ]
    assert len(layers) == 3
    for layer in layers:
        assert layer.weight.std().item() == pytest.approx(layer.in_features**-0.5, rel=0.15)
        assert not layer.bias.any()
    assert model.temporal_embedding.proj.weight.std().item() == pytest.approx(0.02, rel=0.15)


def test_fresh_connector_is_fan_in_scaled(tiny):
    assert_connector_fan_in_scaled(tiny[0])


@pytest.mark.parametrize("weight_init", ["fan_in", "llama"])
def test_fresh_llm_weight_init(weight_init, tmp_path):
    """`model.llm.weight_init`: fan_in draws every fresh LLM Linear at std fan_in^-0.5 (Llama's 0.02 is 4x too
    small at 128 wide and the tiny LLM's object look-up stalled); llama keeps the LLM's initializer_range.
    Both fresh paths: everything fresh, and a fresh LLM beside a loaded vision tower."""
    settings = profile_settings("tiny").model_copy(
        update={"llm": profile_settings("tiny").llm.model_copy(update={"weight_init": weight_init})}
    )
    model, _ = build_model_and_processor(settings)
    model.vision_tower.save_pretrained(tmp_path / "tower")
    beside_tower, _ = build_model_and_processor(
        settings.model_copy(update={"vision_model": str(tmp_path / "tower")})
    )
    for built in (model, beside_tower):
        layers = [m for m in built.language_model.modules() if isinstance(m, torch.nn.Linear)]
        # q k v o gate up down per layer + lm_head
        assert len(layers) == 7 * settings.llm.num_hidden_layers + 1
        for layer in layers:
            expected = layer.in_features**-0.5 if weight_init == "fan_in" else 0.02
            assert layer.weight.std().item() == pytest.approx(expected, rel=0.15)


def test_labels_keep_only_assistant_replies(tiny):
    _, processor = tiny
    batch = processor(qa(), videos=[clip(3)])
    kept = batch["labels"][0][batch["labels"][0] != -100]
    assert processor.tokenizer.decode(kept) == "The circle is red.<|eot_id|>"
    visual = batch["input_ids"][0] == processor.tokenizer.convert_tokens_to_ids("<vi_token>")
    assert (batch["labels"][0][visual] == -100).all()


def test_visual_token_count_follows_patchify_factors(tiny):
    model, processor = tiny
    vi_token = processor.tokenizer.convert_tokens_to_ids("<vi_token>")
    for frames, size in [(1, 64), (2, 64), (5, 64), (16, 64), (3, 96), (4, 112)]:
        batch = processor(qa(), videos=[clip(frames, size)], image_size=size)
        patches = size // 16
        kt, ks = model.config.patchify_temporal, model.config.patchify_spatial
        expected = -(-frames // kt) * (-(-patches // ks)) ** 2
        assert (
            int((batch["input_ids"] == vi_token).sum())
            == expected
            == model.num_visual_tokens(frames, size, size)
        )
        with torch.no_grad():
            features = model.get_video_features(
                batch["pixel_values"], batch["frame_timestamps"], batch["video_frame_counts"]
            )
        assert features.shape == (expected, model.config.text_config.hidden_size)


def test_packed_row_matches_separate_runs(tiny):
    model, processor = tiny
    first = processor(qa(), videos=[clip(3, seed=2)])
    second = processor(qa("Which shape appears?", "A blue star appears."), videos=[clip(4, seed=3)])
    len_a, len_b = first["input_ids"].shape[1], second["input_ids"].shape[1]
    packed = {
        "input_ids": torch.cat([first["input_ids"], second["input_ids"]], dim=1),
        "labels": torch.cat([first["labels"], second["labels"]], dim=1),
        "position_ids": torch.cat([torch.arange(len_a), torch.arange(len_b)])[None],
        "pixel_values": torch.cat([first["pixel_values"], second["pixel_values"]]),
        "frame_timestamps": torch.cat([first["frame_timestamps"], second["frame_timestamps"]]),
        "video_frame_counts": torch.tensor([3, 4]),
    }
    with torch.no_grad():
        alone_a, alone_b = model(**first), model(**second)
        together = model(**packed)
        together_ones_mask = model(**packed, attention_mask=torch.ones_like(packed["input_ids"]))
        leaky = model(**{**packed, "position_ids": torch.arange(len_a + len_b)[None]})
    torch.testing.assert_close(together.logits[:, :len_a], alone_a.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(together.logits[:, len_a:], alone_b.logits, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(together_ones_mask.logits, together.logits)
    # Per-sample loss of the packed row equals each sample's own loss.
    token_loss = F.cross_entropy(
        together.logits[0, :-1], packed["labels"][0, 1:], ignore_index=-100, reduction="none"
    )
    boundary = len_a - 1
    loss_a = token_loss[:boundary][packed["labels"][0, 1:len_a] != -100].mean()
    loss_b = token_loss[len_a:][packed["labels"][0, len_a + 1 :] != -100].mean()
    torch.testing.assert_close(loss_a, alone_a.loss, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(loss_b, alone_b.loss, atol=1e-5, rtol=1e-4)
    # Without the position restart the second sample sees the first: the check above can fail.
    assert (leaky.logits[:, len_a:] - alone_b.logits).abs().max() > 1e-3
    with pytest.raises(ValueError, match="packed"):
        mask = torch.ones_like(packed["input_ids"])
        mask[0, -1] = 0
        model(**packed, attention_mask=mask)


def test_temporal_embedding_follows_timestamps_not_frame_index(tiny):
    model, processor = tiny
    video, other = clip(4, seed=5), clip(2, seed=6)
    alone = processor(qa(), videos=[video])
    with torch.no_grad():
        base = model.get_video_features(
            alone["pixel_values"], alone["frame_timestamps"], alone["video_frame_counts"]
        )
        slower = model.get_video_features(
            alone["pixel_values"], alone["frame_timestamps"] * 3.0, alone["video_frame_counts"]
        )
        # Same clip as the second video of a batch: its frames sit at other indices, same timestamps.
        both = processor([qa(), qa()], videos=[other, video])
        shifted = model.get_video_features(
            both["pixel_values"], both["frame_timestamps"], both["video_frame_counts"]
        )
    assert (base - slower).abs().max() > 1e-4
    torch.testing.assert_close(shifted[-base.shape[0] :], base, atol=1e-5, rtol=1e-4)


def test_save_load_and_auto_classes_give_identical_logits(tiny, tmp_path):
    model, processor = tiny
    batch = processor(qa(), videos=[clip(3)])
    with torch.no_grad():
        reference = model(**batch).logits
    save_model_and_processor(model, processor, tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    loaded, loaded_processor = load_model_and_processor(tmp_path)
    auto_model = AutoModelForCausalLM.from_pretrained(tmp_path)
    auto_processor = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(auto_model, KangarooForConditionalGeneration)
    assert isinstance(auto_processor, KangarooProcessor)
    # a training stage's output folder (KFP Model artifact) holds the checkpoint in model/
    save_model_and_processor(model, processor, tmp_path / "stage" / "model")
    from_stage, stage_processor = load_model_and_processor(tmp_path / "stage")
    with pytest.raises(ModelBuildError, match="no config.json"):
        load_model_and_processor(tmp_path / "stage" / "missing")
    for m, p in [(loaded, loaded_processor), (auto_model, auto_processor), (from_stage, stage_processor)]:
        again = p(qa(), videos=[clip(3)])
        assert torch.equal(again["input_ids"], batch["input_ids"])
        with torch.no_grad():
            assert torch.equal(m(**again).logits, reference)


def test_generate_returns_new_tokens(tiny):
    model, processor = tiny
    prompt = processor(
        [qa()[:1], qa("Which shape appears?")[:1]], videos=[clip(4), clip(1)], add_generation_prompt=True
    )
    out = model.generate(**prompt, max_new_tokens=4, do_sample=False)
    assert out.shape[0] == 2 and 1 <= out.shape[1] - prompt["input_ids"].shape[1] <= 4
    single = processor(qa()[:1], videos=[clip(4)], add_generation_prompt=True)
    first = model.generate(**single, max_new_tokens=4, do_sample=False)
    # Left padding in the batch must not change the answer of the longer prompt.
    assert torch.equal(
        out[0, -first.shape[1] + single["input_ids"].shape[1] :], first[0, single["input_ids"].shape[1] :]
    )


def test_module_groups_cover_every_parameter_once(tiny):
    model, _ = tiny
    seen: dict[int, str] = {}
    for name, module in model.module_groups().items():
        for p in module.parameters():
            assert id(p) not in seen, f"parameter in both {seen[id(p)]} and {name}"
            seen[id(p)] = name
    assert set(model.module_groups()) == {"vision", "temporal", "patchify", "projector", "llm"}
    assert len(seen) == len(list(model.parameters()))


def test_paper_profile_on_meta_device_is_8b():
    model, processor = build_model_and_processor(profile_settings("paper"), device="meta")
    total = sum(p.numel() for p in model.parameters())
    assert 8.0e9 < total < 8.6e9, total  # Llama-3-8B (8.03B) + ViT-L (0.30B) + connector
    assert all(p.is_meta for p in model.parameters())
    assert model.num_visual_tokens(1, 448, 448) == 256  # one frame group = a padded pair
    assert model.num_visual_tokens(64, 448, 448) == 64 * 128
    assert model.num_visual_tokens(160, 448, 448) == 160 * 128
    assert processor.num_visual_tokens(64) == 8192


def test_activation_checkpointing_gives_the_same_gradients(tiny):
    model, processor = tiny
    batch = processor(qa(), videos=[clip(4)])
    grads = []
    model.train()
    try:
        for checkpointing in (False, True):
            if checkpointing:
                model.activation_checkpointing_enable()
            model.zero_grad()
            model(**batch).loss.backward()
            grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    finally:
        model.activation_checkpointing_disable()
        model.zero_grad()
        model.eval()
    assert grads[0].keys() == grads[1].keys()
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], atol=1e-6, rtol=1e-5)


def test_eager_attention_matches_sdpa_on_packed_rows(tiny, tmp_path):
    model, processor = tiny
    save_model_and_processor(model, processor, tmp_path)
    eager, _ = load_model_and_processor(tmp_path, attn_implementation="eager")
    assert eager.language_model.config._attn_implementation == "eager"
    first, second = (
        processor(qa(), videos=[clip(3)]),
        processor(qa("Which shape?", "A star."), videos=[clip(2)]),
    )
    packed = {
        "input_ids": torch.cat([first["input_ids"], second["input_ids"]], dim=1),
        "position_ids": torch.cat(
            [torch.arange(first["input_ids"].shape[1]), torch.arange(second["input_ids"].shape[1])]
        )[None],
        "pixel_values": torch.cat([first["pixel_values"], second["pixel_values"]]),
        "frame_timestamps": torch.cat([first["frame_timestamps"], second["frame_timestamps"]]),
        "video_frame_counts": torch.tensor([3, 2]),
    }
    with torch.no_grad():
        torch.testing.assert_close(eager(**packed).logits, model(**packed).logits, atol=1e-5, rtol=1e-4)


def test_chat_on_a_real_video_file_keeps_history(tiny, tmp_path):
    import av

    model, _ = tiny
    path = tmp_path / "clip.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=4)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        for i in range(12):
            image = np.zeros((64, 64, 3), np.uint8)
            image[8 + i * 3 : 24 + i * 3, 20:36] = (255, 0, 0)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    answer, history = model.chat(str(path), "Where does the red square move?", max_new_tokens=4)
    assert isinstance(answer, str) and [m["role"] for m in history] == ["user", "assistant"]
    assert history[0]["content"].startswith("<video>") and history[1]["content"] == answer
    again, history = model.chat(str(path), "And then?", history=history, max_new_tokens=3, do_sample=False)
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[-1]["content"] == again


def test_tokenizer_is_deterministic_and_template_matches_processor(tiny):
    from kangaroo.model.tokenizer import build_tiny_tokenizer

    _, processor = tiny
    assert build_tiny_tokenizer().get_vocab() == processor.tokenizer.get_vocab()
    conversation = [{"role": "system", "content": "You watch videos."}, *qa()]
    for generation_prompt in (False, True):
        rendered = processor.tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=generation_prompt
        )
        assert rendered == processor.apply_chat_template(
            conversation, add_generation_prompt=generation_prompt
        )
    assert processor.tokenizer.decode(
        processor.tokenizer.encode("Answer: (B) blue.", add_special_tokens=False)
    ) == ("Answer: (B) blue.")


def test_model_info_cli_reports_the_paper_budget(tmp_path):
    import json

    from typer.testing import CliRunner

    from kangaroo.cli import app

    out = tmp_path / "plan.json"
    result = CliRunner().invoke(
        app,
        ["model-info", "--params", str(PARAMS), "--profile", "paper", "--frames", "64", "--json", str(out)],
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(out.read_text())
    assert plan["visual_tokens_per_frame"] == 128 and plan["patches_per_frame"] == 1024
    assert plan["visual_tokens"] == {"64": 8192}
    assert 8.0e9 < plan["total_parameters"] < 8.6e9
    assert "128 tokens/frame" in result.output


def test_register_checkpoint_copies_and_writes_a_verifiable_card(tiny, tmp_path):
    import hashlib
    import json

    from kangaroo.model.registry import RegistryError, register_checkpoint

    model, processor = tiny
    save_model_and_processor(model, processor, tmp_path / "ckpt")
    card = register_checkpoint(
        tmp_path / "ckpt", tmp_path / "registry", accuracy=0.625, dataset_version="abc123"
    )
    assert card["parameters"] == sum(p.numel() for p in model.parameters())
    assert card["accuracy"] == 0.625 and card["dataset_version"] == "abc123"
    weights = (tmp_path / "registry" / "model.safetensors").read_bytes()
    assert card["sha256:model.safetensors"] == hashlib.sha256(weights).hexdigest()
    assert json.loads((tmp_path / "registry" / "kangaroo_card.json").read_text()) == card
    assert isinstance(
        AutoModelForCausalLM.from_pretrained(tmp_path / "registry"), KangarooForConditionalGeneration
    )
    (tmp_path / "ckpt" / "tokenizer.json").unlink()
    with pytest.raises(RegistryError, match="tokenizer.json"):
        register_checkpoint(tmp_path / "ckpt", tmp_path / "again", accuracy=0.5, dataset_version="x")


def test_vision_chunking_and_small_frames_give_the_same_features(tiny):
    model, processor = tiny
    batch = processor(qa(), videos=[clip(5, 32)], image_size=32)  # 32 px: 2x2 patches per frame
    args = (batch["pixel_values"], batch["frame_timestamps"], batch["video_frame_counts"])
    with torch.no_grad():
        whole = model.get_video_features(*args)
        model.config.vision_frames_per_chunk = 2
        try:
            chunked = model.get_video_features(*args)
        finally:
            model.config.vision_frames_per_chunk = 0
    assert whole.shape[0] == model.num_visual_tokens(5, 32, 32)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-4)


def test_dynamic_rope_scaling_only_changes_positions_beyond_the_native_range():
    from kangaroo.model.settings import LLMSettings, RopeScalingSettings

    base = profile_settings("tiny")
    short_llm = LLMSettings(**{**base.llm.model_dump(), "max_position_embeddings": 32})
    plain, processor = build_model_and_processor(base.model_copy(update={"llm": short_llm}))
    scaled, _ = build_model_and_processor(
        base.model_copy(
            update={"llm": short_llm, "rope_scaling": RopeScalingSettings(rope_type="dynamic", factor=3)}
        )
    )
    assert scaled.config.text_config.rope_parameters["rope_type"] == "dynamic"
    ids = processor.tokenizer(
        "the red circle moves left", add_special_tokens=False, return_tensors="pt"
    ).input_ids
    long_ids = ids.repeat(1, 10)
    assert ids.shape[1] < 32 < long_ids.shape[1]
    with torch.no_grad():
        torch.testing.assert_close(scaled.eval()(ids).logits, plain.eval()(ids).logits)
        assert (scaled(long_ids).logits - plain(long_ids).logits).abs().max() > 1e-4


def test_text_only_training_batch_still_touches_every_visual_parameter(tiny):
    """Mixed image/video/text batches across ranks must run the same modules (no ZeRO-3/DDP hang)."""
    model, processor = tiny
    batch = processor(qa())  # no video
    assert "pixel_values" not in batch
    model.train()
    try:
        model.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        with torch.no_grad():
            model.eval()
            torch.testing.assert_close(model(**batch).loss, loss.detach())  # the idle pass adds exactly zero
        for group in ("vision", "temporal", "patchify", "projector"):
            for name, p in model.module_groups()[group].named_parameters():
                assert p.grad is not None and not p.grad.any(), f"{group}.{name}"
    finally:
        model.zero_grad()
        model.eval()


def test_visual_information_reaches_the_answer_after_a_few_steps():
    """Same prompt, different video colour: the model can only learn the answer through the visual path."""
    model, processor = build_model_and_processor(profile_settings("tiny"))
    model.train()

    def solid(rgb):
        # a coloured square on black: per-video standardisation (tiny profile) keeps what differs inside a
        # video, so a frame of one flat colour would carry nothing
        frames = np.zeros((2, 32, 32, 3), np.uint8)
        frames[:, :16, :16] = rgb
        return {"frames": frames, "timestamps": np.array([0.0, 0.5])}

    videos = [solid((230, 20, 20)), solid((20, 20, 230))]
    batch = processor(
        [qa("What colour is the video?", "red"), qa("What colour is the video?", "blue")],
        videos=videos,
        image_size=32,
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
    for _ in range(20):
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    prompt = processor(
        [qa("What colour is the video?")[:1]] * 2, videos=videos, add_generation_prompt=True, image_size=32
    )
    out = model.generate(**prompt, max_new_tokens=2, do_sample=False)
    answers = processor.tokenizer.batch_decode(
        out[:, prompt["input_ids"].shape[1] :], skip_special_tokens=True
    )
    assert [a.strip() for a in answers] == ["red", "blue"], (answers, float(loss))


def test_every_module_runs_once_per_forward_however_many_videos(tiny):
    """ZeRO-3 gathers weights per module call: ranks whose rows hold different numbers of videos (or none)
    must still call every module the same number of times, or the collectives deadlock."""
    model, processor = tiny
    calls: dict[str, int] = {}
    hooks = [
        module.register_forward_hook(
            lambda m, a, o, name=name: calls.__setitem__(name, calls.get(name, 0) + 1)
        )
        for name, module in model.module_groups().items()
    ]
    text = processor([qa()])
    one = processor(qa(), videos=[clip(4)])
    three = processor(
        [
            {
                "role": "user",
                "content": [{"type": "video"}] * 3 + [{"type": "text", "text": "Compare them."}],
            },
            {"role": "assistant", "content": "They differ."},
        ],
        videos=[clip(3), clip(1, seed=1), clip(6, seed=2)],
    )
    seen = []
    model.train()
    try:
        for batch in (one, three, text):
            calls.clear()
            with torch.no_grad():
                model(**{k: v for k, v in batch.items() if k != "labels"})
            seen.append(dict(calls))
    finally:
        model.eval()
        for hook in hooks:
            hook.remove()
    assert all(s == {name: 1 for name in model.module_groups()} for s in seen), seen


def test_patchify_of_several_videos_in_one_call_equals_one_call_per_video(tiny):
    model, _ = tiny
    counts = [3, 1, 6, 2]  # odd counts: each video repeats its own last frame, never borrows the next video's
    features = torch.randn(sum(counts), 4, 3, model.config.vision_config.hidden_size)
    with torch.no_grad():
        together = model.patchify(features, counts)
        apart = torch.cat([model.patchify(video) for video in torch.split(features, counts)])
    torch.testing.assert_close(together, apart)
    kt, ks = model.config.patchify_temporal, model.config.patchify_spatial
    assert together.shape[0] == sum(-(-c // kt) * -(-4 // ks) * -(-3 // ks) for c in counts)


def test_per_video_standardisation_keeps_videos_apart(tiny):
    """Each video is standardised on its own: a shared offset cancels and batch-mates do not leak in."""
    from kangaroo.model.modeling_kangaroo import standardize_per_video

    model, processor = tiny
    assert model.config.visual_feature_standardization == "per_video"  # the tiny profile's setting
    features = torch.randn(5, 4, 4, 8) * 3 + 7
    out = standardize_per_video(features, [3, 2])
    for video in torch.split(out, [3, 2]):
        assert torch.allclose(video.mean(dim=(0, 1, 2)), torch.zeros(8), atol=1e-5)
        assert torch.allclose(video.std(dim=(0, 1, 2)), torch.ones(8), atol=1e-3)
    shifted = features + torch.randn(8) * 50  # a constant component shared by every token
    assert torch.allclose(standardize_per_video(shifted, [3, 2]), out, atol=1e-3)
    alone = standardize_per_video(features[3:], [2])
    assert torch.allclose(out[3:], alone, atol=1e-6)

    batch = processor([qa(), qa()], videos=[clip(4), clip(4, seed=1)])
    with torch.no_grad():
        both = model.get_video_features(
            batch["pixel_values"], batch["frame_timestamps"], batch["video_frame_counts"]
        )
        first = model.get_video_features(
            batch["pixel_values"][:4], batch["frame_timestamps"][:4], batch["video_frame_counts"][:1]
        )
    assert torch.allclose(both[: first.shape[0]], first, atol=1e-5)


def test_unknown_standardisation_mode_is_rejected(tiny):
    model, _ = tiny
    with pytest.raises(ValueError, match="visual_feature_standardization"):
        type(model.config)(**{**model.config.to_dict(), "visual_feature_standardization": "batch"})
