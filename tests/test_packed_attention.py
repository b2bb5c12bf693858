"""`sdpa_packed` (kangaroo.model.packed_attention): per-sample attention of packed rows equals running each
sample on its own, gradients included; everything else is plain sdpa."""

from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from kangaroo.config import load_params
from kangaroo.model import build_model_and_processor, load_model_and_processor, save_model_and_processor
from kangaroo.model.packed_attention import NAME, sample_bounds
from kangaroo.model.settings import ModelSettings
from kangaroo.train.loop import load_initial_model

# lengths across several buckets: 1-token blocks, short samples, one long sample, a trailing padding run
PARAMS_FILE = Path(__file__).resolve().parents[1] / "params.yaml"
LENGTHS = [70, 1, 33, 300, 69, 5, 120, 2]


def tiny_llm(attn: str) -> LlamaForCausalLM:
    config = LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,  # grouped-query heads, as in the tiny profile and Llama-3
        vocab_size=100,
        head_dim=16,
    )
    config._attn_implementation = attn
    torch.manual_seed(0)
    return LlamaForCausalLM(config)


def packed_row(lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    ids = torch.randint(0, 100, (1, sum(lengths)))
    positions = torch.cat([torch.arange(n) for n in lengths])[None]
    return ids, positions


def test_sample_bounds_follow_the_position_restarts():
    _, positions = packed_row([3, 1, 4])
    starts, lengths = sample_bounds(positions)
    assert starts.tolist() == [0, 3, 4] and lengths.tolist() == [3, 1, 4]
    assert sample_bounds(torch.arange(8)[None]) is None  # one sequence: nothing to split
    # transformers' rule: a jump, not only a restart at 0, starts a sample
    starts, lengths = sample_bounds(torch.tensor([[0, 1, 2, 7, 8, 0]]))
    assert starts.tolist() == [0, 3, 5] and lengths.tolist() == [3, 2, 1]


def test_packed_row_equals_each_sample_alone_with_gradients():
    ids, positions = packed_row(LENGTHS)
    model = tiny_llm(NAME)
    logits = model(input_ids=ids, position_ids=positions, use_cache=False).logits
    weights = torch.randn_like(logits)
    (logits * weights).sum().backward()
    packed_grads = {n: p.grad.clone() for n, p in model.named_parameters()}

    model.zero_grad()
    model.config._attn_implementation = "sdpa"
    alone, start = [], 0
    for n in LENGTHS:
        alone.append(model(input_ids=ids[:, start : start + n], use_cache=False).logits)
        start += n
    alone = torch.cat(alone, dim=1)
    (alone * weights).sum().backward()

    torch.testing.assert_close(logits, alone, atol=1e-5, rtol=1e-4)
    for name, param in model.named_parameters():
        torch.testing.assert_close(packed_grads[name], param.grad, atol=1e-4, rtol=1e-3)
    # the comparison has teeth: attending across samples gives other logits
    leaky = model(input_ids=ids, use_cache=False).logits
    assert (leaky - alone).abs().max() > 1e-2


def test_same_as_sdpa_with_transformers_block_mask():
    ids, positions = packed_row(LENGTHS)
    results = {}
    for attn in ("sdpa", NAME):
        with torch.no_grad():
            results[attn] = tiny_llm(attn)(input_ids=ids, position_ids=positions, use_cache=False).logits
    torch.testing.assert_close(results[NAME], results["sdpa"], atol=1e-5, rtol=1e-4)


def test_padded_batches_and_generation_fall_back_to_sdpa():
    torch.manual_seed(2)
    ids = torch.randint(0, 100, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, :4] = 0  # left padding
    with torch.no_grad():
        packed_model, plain = tiny_llm(NAME), tiny_llm("sdpa")
        torch.testing.assert_close(
            packed_model(input_ids=ids, attention_mask=mask).logits,
            plain(input_ids=ids, attention_mask=mask).logits,
        )
        generated = packed_model.generate(ids[:1], max_new_tokens=6, do_sample=False)
        expected = plain.generate(ids[:1], max_new_tokens=6, do_sample=False)
    assert torch.equal(generated, expected)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    model, processor = build_model_and_processor(ModelSettings())
    assert model.language_model.config._attn_implementation == NAME  # the default kernel
    folder = tmp_path_factory.mktemp("checkpoint")
    save_model_and_processor(model, processor, folder)
    return folder


@pytest.mark.parametrize("attn", [NAME, "eager"])
def test_later_stages_load_with_the_configured_kernel(tiny_checkpoint, attn):
    """A saved config does not carry the kernel: stage 2+ must get the `model:` block's, not sdpa."""
    params = load_params(PARAMS_FILE, "tiny")
    model_settings = params.model.model_copy(update={"attn_implementation": attn})
    params = params.model_copy(update={"model": model_settings})
    model, _ = load_initial_model(params, str(tiny_checkpoint))
    assert model.language_model.config._attn_implementation == attn
    default, _ = load_model_and_processor(tiny_checkpoint)
    assert default.language_model.config._attn_implementation == "sdpa"
