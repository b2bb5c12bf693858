"""EVA02-CLIP vision encoder (the paper profile's EVA02-CLIP-L/14 at 448 px) in transformers conventions.

transformers has no EVA02; this re-expresses the vision tower of `EVA-CLIP`
(`eva_vit_model.EVAVisionTransformer` with `rope=True, subln=True, naiveswiglu=True, xattn=True`) with the
same parameter names, so a released checkpoint converts by dropping the `visual.` prefix
(`convert_eva_clip_state_dict`). Per frame:

    pixels [N, 3, H, W] -> Conv2d(patch, stride patch) -> [N, h*w, C]; prepend CLS -> [N, 1+h*w, C]
    + absolute position embedding (bicubic-resized when h x w differs from the pre-training grid)
    24 x block: x + proj(subLN(attn(LN(x)) with 2-D RoPE on patch tokens)); x + w3(ffnLN(silu(w1 x) * w2 x))
    -> hidden_states[i] [N, 1+h*w, C]; last_hidden_state = LN(final) ; pooler_output = CLS of it.

EVA02-CLIP-L/14-448: width 1024, 24 layers, 16 heads of 64, SwiGLU hidden 2730 (mlp ratio 2.6667),
patch 14 -> 32 x 32 grid, RoPE pre-trained on a 16 x 16 grid and frequency-interpolated to 32 ("intp_freq").
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from huggingface_hub.dataclasses import strict
from torch import nn
from transformers import PreTrainedConfig, PreTrainedModel
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutputWithPooling

from kangaroo.errors import KangarooError


class EvaConversionError(KangarooError):
    """The file given to the EVA-CLIP converter is not an EVA02-CLIP vision checkpoint of this shape."""


@strict
class EvaVisionConfig(PreTrainedConfig):
    r"""
    Args:
        hidden_size: token width. num_hidden_layers / num_attention_heads: depth and heads.
        intermediate_size: SwiGLU hidden width (EVA02-L: 2730).
        patch_size / image_size: patch side and the pre-training image side (position-embedding grid).
        rope_pretrain_grid: grid side the RoPE frequencies were pre-trained on (EVA02-L: 16).
        layer_norm_eps: LayerNorm epsilon (EVA uses 1e-6).
    """

    model_type = "eva_vision"
    base_config_key = "vision_config"

    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 2730
    patch_size: int = 14
    image_size: int = 448
    num_channels: int = 3
    rope_pretrain_grid: int = 16
    rope_theta: float = 10000.0
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02


def _rotate_half_interleaved(x: torch.Tensor) -> torch.Tensor:
    """EVA's rotate_half on interleaved pairs: (x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...)."""
    pairs = x.unflatten(-1, (-1, 2))
    return torch.stack((-pairs[..., 1], pairs[..., 0]), dim=-1).flatten(-2)


def rope_2d(
    config: EvaVisionConfig, grid_h: int, grid_w: int, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin [grid_h*grid_w, head_dim]: half the head dim encodes the row, half the column (EVA02).

    Positions are scaled onto the pre-training grid (t = i / grid * pretrain_grid), EVA's `intp_freq`.
    """
    head_dim = config.hidden_size // config.num_attention_heads
    dim = head_dim // 2
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, device=device)[: dim // 2].float() / dim))

    def axis(n: int) -> torch.Tensor:
        t = torch.arange(n, device=device, dtype=torch.float32) / n * config.rope_pretrain_grid
        return torch.repeat_interleave(torch.outer(t, inv_freq), 2, dim=-1)  # [n, dim]

    rows, cols = axis(grid_h), axis(grid_w)
    freqs = torch.cat(
        [rows[:, None, :].expand(grid_h, grid_w, dim), cols[None, :, :].expand(grid_h, grid_w, dim)], dim=-1
    ).reshape(grid_h * grid_w, head_dim)
    return freqs.cos(), freqs.sin()


class EvaPatchEmbed(nn.Module):
    def __init__(self, config: EvaVisionConfig):
        super().__init__()
        self.proj = nn.Conv2d(
            config.num_channels, config.hidden_size, kernel_size=config.patch_size, stride=config.patch_size
        )

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.proj(pixel_values).flatten(2).transpose(1, 2)  # [N, h*w, C]


class EvaAttention(nn.Module):
    """q/k/v (no k bias: EVA's q_bias, v_bias), RoPE on patch tokens, sub-LayerNorm before the out proj."""

    def __init__(self, config: EvaVisionConfig):
        super().__init__()
        width = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = width // self.num_heads
        self.q_proj = nn.Linear(width, width, bias=False)
        self.k_proj = nn.Linear(width, width, bias=False)
        self.v_proj = nn.Linear(width, width, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(width))
        self.v_bias = nn.Parameter(torch.zeros(width))
        self.inner_attn_ln = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        n, length, width = x.shape
        # = EVA's F.linear(x, q_proj.weight, q_bias); calling the submodule keeps ZeRO-3's per-module gather
        q = self.q_proj(x) + self.q_bias
        k = self.k_proj(x)
        v = self.v_proj(x) + self.v_bias
        q, k, v = (t.view(n, length, self.num_heads, self.head_dim).transpose(1, 2) for t in (q, k, v))
        cos, sin = cos.to(q.dtype), sin.to(q.dtype)
        q = torch.cat([q[:, :, :1], q[:, :, 1:] * cos + _rotate_half_interleaved(q[:, :, 1:]) * sin], dim=2)
        k = torch.cat([k[:, :, :1], k[:, :, 1:] * cos + _rotate_half_interleaved(k[:, :, 1:]) * sin], dim=2)
        out = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(n, length, width)
        return self.proj(self.inner_attn_ln(out))


class EvaSwiGLU(nn.Module):
    def __init__(self, config: EvaVisionConfig):
        super().__init__()
        self.w1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.w2 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.ffn_ln = nn.LayerNorm(config.intermediate_size, eps=config.layer_norm_eps)
        self.w3 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w3(self.ffn_ln(F.silu(self.w1(x)) * self.w2(x)))


class EvaVisionBlock(GradientCheckpointingLayer):
    def __init__(self, config: EvaVisionConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attn = EvaAttention(config)
        self.norm2 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.mlp = EvaSwiGLU(config)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cos, sin)
        return x + self.mlp(self.norm2(x))


class EvaVisionModel(PreTrainedModel):
    """EVA02-CLIP vision transformer; see the module docstring for the shapes."""

    config: EvaVisionConfig
    config_class = EvaVisionConfig
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _no_split_modules = ["EvaVisionBlock"]

    def __init__(self, config: EvaVisionConfig):
        super().__init__(config)
        grid = config.image_size // config.patch_size
        self.patch_embed = EvaPatchEmbed(config)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + grid * grid, config.hidden_size))
        self.blocks = nn.ModuleList(EvaVisionBlock(config) for _ in range(config.num_hidden_layers))
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.post_init()

    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, EvaVisionModel):
            nn.init.trunc_normal_(module.cls_token, std=self.config.initializer_range)
            nn.init.trunc_normal_(module.pos_embed, std=self.config.initializer_range)
        elif isinstance(module, EvaAttention):
            nn.init.zeros_(module.q_bias)
            nn.init.zeros_(module.v_bias)

    def _position_embedding(self, grid_h: int, grid_w: int) -> torch.Tensor:
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        native = int(math.isqrt(patch_pos.shape[1]))
        if (grid_h, grid_w) != (native, native):
            grid = patch_pos.reshape(1, native, native, -1).permute(0, 3, 1, 2).float()
            grid = F.interpolate(grid, size=(grid_h, grid_w), mode="bicubic", align_corners=False)
            patch_pos = grid.permute(0, 2, 3, 1).reshape(1, grid_h * grid_w, -1).to(self.pos_embed.dtype)
        return torch.cat([cls_pos, patch_pos], dim=1)

    def forward(
        self,
        pixel_values: torch.Tensor,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = True,
        interpolate_pos_encoding: bool = True,
        **kwargs,
    ) -> BaseModelOutputWithPooling:
        """pixel_values [N, 3, H, W] (H, W multiples of the patch) -> hidden states [N, 1 + h*w, C]."""
        patch = self.config.patch_size
        grid_h, grid_w = pixel_values.shape[-2] // patch, pixel_values.shape[-1] // patch
        x = self.patch_embed(pixel_values.to(self.patch_embed.proj.weight.dtype))
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self._position_embedding(grid_h, grid_w)
        cos, sin = rope_2d(self.config, grid_h, grid_w, device=x.device)
        hidden_states = [x] if output_hidden_states else None
        for block in self.blocks:
            x = block(x, cos, sin)
            if hidden_states is not None:
                hidden_states.append(x)
        last = self.norm(x)
        return BaseModelOutputWithPooling(
            last_hidden_state=last,
            pooler_output=last[:, 0],
            hidden_states=tuple(hidden_states) if hidden_states is not None else None,
        )


def convert_eva_clip_state_dict(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An EVA-CLIP checkpoint (full CLIP or vision-only) -> EvaVisionModel weights.

    Keeps `visual.*` (prefix dropped), drops the RoPE buffers (recomputed here for every grid) and the CLIP
    projection head (`head.*`), which the video model does not use.
    """
    has_visual = any(k.startswith("visual.") for k in state_dict)
    converted = {}
    for key, value in state_dict.items():
        if has_visual:
            if not key.startswith("visual."):
                continue
            key = key[len("visual.") :]
        if "rope." in key or key.startswith("head.") or key.startswith("fc_norm."):
            continue
        converted[key] = value
    return converted


def convert_eva_clip_checkpoint(
    source: str, out_dir: str, config: EvaVisionConfig | None = None
) -> EvaVisionModel:
    """Convert a released EVA02-CLIP `.pt`/`.bin`/`.safetensors` file into a `save_pretrained` folder."""
    if source.endswith(".safetensors"):
        from safetensors.torch import load_file

        raw = load_file(source)
    else:
        raw = torch.load(source, map_location="cpu", weights_only=True)
        raw = raw.get("state_dict", raw.get("module", raw)) if isinstance(raw, dict) else raw
    model = EvaVisionModel(config or EvaVisionConfig())
    missing, unexpected = model.load_state_dict(convert_eva_clip_state_dict(raw), strict=False)
    if missing or unexpected:
        raise EvaConversionError(
            f"{source}: not an EVA02-CLIP vision checkpoint of this shape "
            f"(missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    model.save_pretrained(out_dir, safe_serialization=True)
    return model


def register_eva_vision() -> None:
    """Make AutoConfig/AutoModel know `eva_vision` (idempotent). Runs on import, so every path that can
    meet the tower (building from params, loading a saved Kangaroo config, conversion) knows it."""
    from transformers import AutoConfig, AutoModel

    AutoConfig.register(EvaVisionConfig.model_type, EvaVisionConfig, exist_ok=True)
    AutoModel.register(EvaVisionConfig, EvaVisionModel, exist_ok=True)


register_eva_vision()

__all__ = [
    "EvaConversionError",
    "EvaVisionConfig",
    "EvaVisionModel",
    "convert_eva_clip_checkpoint",
    "convert_eva_clip_state_dict",
    "register_eva_vision",
]
