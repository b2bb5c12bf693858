"""EVA02-CLIP vision tower, weight conversion, and building Kangaroo from pretrained vision/LLM folders."""

import numpy as np
import pytest
import torch
from transformers import AutoModel, LlamaConfig, LlamaForCausalLM

from kangaroo.model import EvaVisionConfig, EvaVisionModel, build_model_and_processor
from kangaroo.model.eva_vision import EvaConversionError, convert_eva_clip_checkpoint, rope_2d
from kangaroo.model.settings import LLMSettings, ModelSettings, VisionSettings
from kangaroo.model.tokenizer import build_tiny_tokenizer

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


def _released_style_checkpoint(model: EvaVisionModel) -> dict[str, torch.Tensor]:
    """What an EVA-CLIP .pt holds: `visual.*` (+ RoPE buffers, CLIP head) and the text tower."""
    state = {f"visual.{k}": v.clone() for k, v in model.state_dict().items()}
    state["visual.rope.freqs_cos"] = torch.zeros(16, 16)
    state["visual.blocks.0.attn.rope.freqs_sin"] = torch.zeros(16, 16)
    state["visual.head.weight"] = torch.zeros(8, 32)
    state["text.token_embedding.weight"] = torch.zeros(10, 8)
    state["logit_scale"] = torch.tensor(1.0)
    return state


def test_released_checkpoint_converts_and_loads_through_automodel(tmp_path):
    torch.manual_seed(0)
    original = EvaVisionModel(EvaVisionConfig(**TINY_EVA)).eval()
    source = tmp_path / "EVA02_CLIP_tiny.pt"
    torch.save(_released_style_checkpoint(original), source)
    convert_eva_clip_checkpoint(str(source), str(tmp_path / "eva"), EvaVisionConfig(**TINY_EVA))
    loaded = AutoModel.from_pretrained(tmp_path / "eva").eval()
    assert isinstance(loaded, EvaVisionModel)
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(loaded(pixels).last_hidden_state, original(pixels).last_hidden_state)
    broken = tmp_path / "not_eva.pt"
    torch.save({"visual.something.weight": torch.zeros(2)}, broken)
    with pytest.raises(EvaConversionError, match="not_eva.pt"):
        convert_eva_clip_checkpoint(str(broken), str(tmp_path / "bad"), EvaVisionConfig(**TINY_EVA))


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
