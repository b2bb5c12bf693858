"""EVA02-CLIP vision tower, weight conversion, and building Kangaroo from pretrained vision/LLM folders."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModel, LlamaConfig, LlamaForCausalLM

from kangaroo.model import EvaVisionConfig, EvaVisionModel, build_model_and_processor
from kangaroo.model.eva_vision import (
    EvaConversionError,
    convert_eva_clip_checkpoint,
    convert_eva_clip_state_dict,
    rope_2d,
)
from kangaroo.model.settings import LLMSettings, ModelSettings, VisionSettings
from kangaroo.model.tokenizer import build_tiny_tokenizer

ROOT = Path(__file__).resolve().parents[1]
TINY_EVA = dict(
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=48,
    patch_size=16,
    image_size=64,
)


def test_eva02_clip_l_448_has_the_published_304m_parameters():
    with torch.device("meta"):
        model = EvaVisionModel(EvaVisionConfig())  # defaults = EVA02-CLIP-L/14 at 448 px
    total = sum(p.numel() for p in model.parameters())
    assert abs(total - 304.1e6) < 0.5e6, total
    assert model.pos_embed.shape == (1, 1 + 32 * 32, 1024)


def test_rope_splits_head_dim_between_rows_and_columns():
    config = EvaVisionConfig(**TINY_EVA)
    cos, sin = rope_2d(config, 3, 5)
    half = (config.hidden_size // config.num_attention_heads) // 2
    grid_cos = cos.reshape(3, 5, -1)
    # first half varies with the row only, second half with the column only
    assert torch.equal(grid_cos[:, 0, :half], grid_cos[:, 4, :half])
    assert torch.equal(grid_cos[0, :, half:], grid_cos[2, :, half:])
    assert not torch.equal(grid_cos[0, 0, :half], grid_cos[1, 0, :half])
    assert torch.allclose(cos**2 + sin**2, torch.ones_like(cos))


def test_eva_runs_at_other_resolutions_with_checkpointing():
    model = EvaVisionModel(EvaVisionConfig(**TINY_EVA)).train()
    model.activation_checkpointing_enable()
    out = model(torch.randn(2, 3, 96, 112), output_hidden_states=True)
    assert out.last_hidden_state.shape == (2, 1 + 6 * 7, 32) and len(out.hidden_states) == 3
    out.last_hidden_state.sum().backward()
    assert model.pos_embed.grad is not None and model.blocks[0].attn.q_bias.grad is not None


def published_eva02_clip_layout(
    width: int, depth: int, heads: int, mlp: int, patch: int, image: int, embed: int, text_width: int
) -> dict[str, tuple[int, ...]]:
    """Key names and shapes of a released EVA02-CLIP checkpoint (baaivision/EVA, EVA-CLIP `eva_vit_model.py`;
    the names timm's EVA `checkpoint_filter_fn` renames), written out by hand: the visual tower with q/k/v
    projections + q/v biases, sub-LN (`inner_attn_ln`, `ffn_ln`), SwiGLU `w1`/`w2`/`w3`, RoPE buffers and the
    CLIP head, beside the text tower and `logit_scale`."""
    grid = image // patch
    layout: dict[str, tuple[int, ...]] = {
        "visual.cls_token": (1, 1, width),
        "visual.pos_embed": (1, grid * grid + 1, width),
        "visual.patch_embed.proj.weight": (width, 3, patch, patch),
        "visual.patch_embed.proj.bias": (width,),
        "visual.rope.freqs_cos": (grid * grid, width // heads),
        "visual.rope.freqs_sin": (grid * grid, width // heads),
        "visual.norm.weight": (width,),
        "visual.norm.bias": (width,),
        "visual.head.weight": (embed, width),
        "visual.head.bias": (embed,),
        "text.token_embedding.weight": (49408, text_width),
        "text.positional_embedding": (77, text_width),
        "text.text_projection": (text_width, embed),
        "logit_scale": (),
    }
    for i in range(depth):
        block = f"visual.blocks.{i}."
        layout.update(
            {
                block + "norm1.weight": (width,),
                block + "norm1.bias": (width,),
                block + "attn.q_bias": (width,),
                block + "attn.v_bias": (width,),
                block + "attn.q_proj.weight": (width, width),
                block + "attn.k_proj.weight": (width, width),
                block + "attn.v_proj.weight": (width, width),
                block + "attn.rope.freqs_cos": (grid * grid, width // heads),
                block + "attn.rope.freqs_sin": (grid * grid, width // heads),
                block + "attn.inner_attn_ln.weight": (width,),
                block + "attn.inner_attn_ln.bias": (width,),
                block + "attn.proj.weight": (width, width),
                block + "attn.proj.bias": (width,),
                block + "norm2.weight": (width,),
                block + "norm2.bias": (width,),
                block + "mlp.w1.weight": (mlp, width),
                block + "mlp.w1.bias": (mlp,),
                block + "mlp.w2.weight": (mlp, width),
                block + "mlp.w2.bias": (mlp,),
                block + "mlp.ffn_ln.weight": (mlp,),
                block + "mlp.ffn_ln.bias": (mlp,),
                block + "mlp.w3.weight": (width, mlp),
                block + "mlp.w3.bias": (width,),
            }
        )
    return layout


# EVA02-CLIP-L/14 at 448 px as published: 1024 wide, 24 blocks, 16 heads, SwiGLU 2730, 768-d CLIP embedding.
EVA02_CLIP_L_448 = dict(
    width=1024, depth=24, heads=16, mlp=2730, patch=14, image=448, embed=768, text_width=768
)
TINY_LAYOUT = dict(width=32, depth=2, heads=2, mlp=48, patch=16, image=64, embed=8, text_width=8)


def test_the_published_eva02_clip_l_visual_keys_fill_the_tower_exactly():
    """Every weight of the converted EVA02-CLIP-L/14-448 layout lands on a tower parameter of the same shape
    and every tower parameter gets one (checked on the meta device: no 300 M-parameter allocation)."""
    layout = published_eva02_clip_layout(**EVA02_CLIP_L_448)
    with torch.device("meta"):
        tower = EvaVisionModel(EvaVisionConfig())
        state = {name: torch.empty(shape) for name, shape in layout.items()}
    converted = convert_eva_clip_state_dict(state)
    expected = {name: tuple(value.shape) for name, value in tower.state_dict().items()}
    assert {name: tuple(value.shape) for name, value in converted.items()} == expected


def test_released_checkpoint_converts_and_loads_through_automodel(tmp_path):
    """A checkpoint written from the published layout alone (random values, no project model involved)
    converts, loads through AutoModel with every published tensor in place, and runs."""
    generator = torch.Generator().manual_seed(0)
    layout = published_eva02_clip_layout(**TINY_LAYOUT)
    released = {name: torch.randn(shape, generator=generator) * 0.1 for name, shape in layout.items()}
    source = tmp_path / "EVA02_CLIP_tiny.pt"
    torch.save(released, source)
    convert_eva_clip_checkpoint(str(source), str(tmp_path / "eva"), EvaVisionConfig(**TINY_EVA))
    loaded = AutoModel.from_pretrained(tmp_path / "eva").eval()
    assert isinstance(loaded, EvaVisionModel)
    weights = loaded.state_dict()
    kept = {name for name in layout if name.startswith("visual.") and "rope." not in name}
    kept -= {"visual.head.weight", "visual.head.bias"}
    assert set(weights) == {name.removeprefix("visual.") for name in kept}
    for name in kept:
        assert torch.equal(weights[name.removeprefix("visual.")], released[name]), name
    with torch.no_grad():
        out = loaded(torch.randn(2, 3, 64, 64, generator=generator)).last_hidden_state
    assert out.shape == (2, 1 + 4 * 4, 32) and torch.isfinite(out).all()
    broken = tmp_path / "not_eva.pt"
    torch.save({"visual.something.weight": torch.zeros(2)}, broken)
    with pytest.raises(EvaConversionError, match="not_eva.pt"):
        convert_eva_clip_checkpoint(str(broken), str(tmp_path / "bad"), EvaVisionConfig(**TINY_EVA))


def test_model_info_builds_the_paper_profile_in_a_fresh_interpreter():
    """`kangaroo model-info --profile paper` (README) must find the `eva_vision` tower without any earlier
    import having registered it: a fresh process, as a new user runs it."""
    result = subprocess.run(
        [str(Path(sys.executable).parent / "kangaroo"), "model-info", "--profile", "paper"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "304,104,384" in result.stdout  # EVA02-CLIP-L/14's vision parameters


def test_build_from_pretrained_vision_and_llm_folders(tmp_path):
    """The paper loading path at tiny scale: EVA folder + Llama folder whose vocab lacks our tokens."""
    torch.manual_seed(1)
    eva = EvaVisionModel(EvaVisionConfig(**TINY_EVA))
    eva.save_pretrained(tmp_path / "eva")
    tokenizer = build_tiny_tokenizer()
    llm = LlamaForCausalLM(
        LlamaConfig(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=1,
            intermediate_size=64,
            vocab_size=len(tokenizer) - 24,  # fewer rows than the tokenizer: embeddings must grow
        )
    )
    llm.save_pretrained(tmp_path / "llm")
    tokenizer.save_pretrained(tmp_path / "llm")
    settings = ModelSettings(
        vision_model=str(tmp_path / "eva"),
        llm_model=str(tmp_path / "llm"),
        vision=VisionSettings(model_type="eva_vision", **TINY_EVA),
        llm=LLMSettings(hidden_size=32),
    )
    model, processor = build_model_and_processor(settings)
    assert isinstance(model.vision_tower, EvaVisionModel)
    for name, value in eva.state_dict().items():
        assert torch.equal(model.vision_tower.state_dict()[name], value), name
    grown = model.get_input_embeddings().weight
    assert grown.shape[0] == len(tokenizer)
    assert torch.equal(grown[: llm.config.vocab_size], llm.get_input_embeddings().weight)
    assert not any(p.is_meta for p in model.parameters())
    # the fresh connector between pretrained parts starts fan-in scaled (tests/test_model.py has the rule)
    linear_1 = model.projector.linear_1
    assert linear_1.weight.std().item() == pytest.approx(linear_1.in_features**-0.5, rel=0.15)
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    batch = processor(
        [{"role": "user", "content": "What moves?"}, {"role": "assistant", "content": "A red circle."}],
        videos=[{"frames": frames, "timestamps": [0.0, 0.5, 1.0]}],
    )
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert model.projector.linear_1.weight.grad.abs().sum() > 0
