"""Memory per GPU for each curriculum stage, before launching: which node pool a stage needs.

Model states come from DeepSpeed's own estimators (`estimate_zero2/zero3_model_states_mem_needs`), applied
to the stage's *trainable* parameters (16-bit weights + fp32 grads/master/Adam moments); frozen parameters
only hold their 16-bit weights (sharded under ZeRO-3). Parameter counts come from the real model built on
the meta device (no weights, no downloads).

Activations per GPU for one packed row of `context_length` tokens (micro-batch 1), 16-bit, flash/SDPA
attention (no s^2 term), after Korthikanti et al. 2022: ~34*s*h bytes per transformer layer; with
gradient checkpointing only each layer's input (2*s*h bytes) is kept plus one layer being recomputed. The
LM head adds s*V logits in 16-bit plus their fp32 copy and gradient. The vision tower stores activations
only when it trains (frames x patches tokens); frozen, it runs in chunks without keeping them.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from typing import Any

from kangaroo.config import Params
from kangaroo.train.settings import STAGE_NAMES

log = logging.getLogger(__name__)

GB = 1024**3
BYTES_16BIT = 2
LAYER_ACTIVATION_FACTOR = 34  # bytes per token per hidden unit of one transformer layer (flash attention)


@dataclass(frozen=True)
class StagePlan:
    stage: str
    frames: int
    resolution: int
    context_length: int
    zero_stage: int
    trainable_params: int
    total_params: int
    zero2_model_states_gb: float
    zero3_model_states_gb: float
    activations_gb: float
    total_gb: float  # at the stage's configured ZeRO stage
    fits: bool


def parameter_counts(params: Params) -> dict[str, int]:
    """Parameters per module group of the configured model (built on the meta device)."""
    from kangaroo.model import build_model_and_processor

    # The attention kernel changes no parameter, and flash-attn may be absent where the plan is made.
    model, _ = build_model_and_processor(
        params.model.model_copy(update={"attn_implementation": "sdpa"}), device="meta"
    )
    return {
        name: sum(p.numel() for p in module.parameters()) for name, module in model.module_groups().items()
    }


def largest_layer(params: Params) -> int:
    """Parameters of the largest LLM decoder layer (what ZeRO-3 gathers at once)."""
    llm = params.model.llm
    attention = llm.hidden_size * llm.hidden_size * 2 + llm.hidden_size * (
        llm.hidden_size // llm.num_attention_heads * llm.num_key_value_heads * 2
    )
    return attention + 3 * llm.hidden_size * llm.intermediate_size


def activation_bytes(params: Params, stage_name: str) -> int:
    """Activation memory of one micro-batch (one packed row) for the stage, in bytes."""
    stage = params.train.stage(stage_name)
    llm, vision = params.model.llm, params.model.vision
    tokens, hidden = stage.context_length, llm.hidden_size
    per_layer = LAYER_ACTIVATION_FACTOR * tokens * hidden
    if stage.gradient_checkpointing:
        llm_bytes = BYTES_16BIT * tokens * hidden * llm.num_hidden_layers + per_layer
    else:
        llm_bytes = per_layer * llm.num_hidden_layers
    logits = tokens * llm.vocab_size * (BYTES_16BIT + 4 + 4)
    # frames in a full row: as many max-frame clips as the context holds (at least one)
    patches = (stage.resolution // vision.patch_size) ** 2
    vision_tokens = stage.max_frames * patches
    vision_layer = LAYER_ACTIVATION_FACTOR * vision_tokens * vision.hidden_size
    if "vision" in stage.trainable:
        layers = vision.num_hidden_layers
        vision_bytes = (
            BYTES_16BIT * vision_tokens * vision.hidden_size * layers + vision_layer
            if stage.gradient_checkpointing
            else vision_layer * layers
        )
    else:
        chunk = params.model.vision_frames_per_chunk or stage.max_frames
        vision_bytes = LAYER_ACTIVATION_FACTOR * min(chunk, stage.max_frames) * patches * vision.hidden_size
    return llm_bytes + logits + vision_bytes


def plan_memory(
    params: Params, gpus_per_node: int | None = None, num_nodes: int | None = None
) -> list[StagePlan]:
    """One StagePlan per curriculum stage for `gpus_per_node` x `num_nodes` GPUs."""
    from deepspeed.runtime.zero.stage3 import estimate_zero3_model_states_mem_needs
    from deepspeed.runtime.zero.stage_1_and_2 import estimate_zero2_model_states_mem_needs

    gpus = gpus_per_node or params.train.plan_gpus_per_node
    nodes = num_nodes or params.train.plan_num_nodes
    counts = parameter_counts(params)
    total = sum(counts.values())
    biggest = largest_layer(params)
    plans = []
    for name in STAGE_NAMES:
        stage = params.train.stage(name)
        trainable = sum(counts[group] for group in stage.trainable)
        frozen = total - trainable
        _, zero2 = estimate_zero2_model_states_mem_needs(
            trainable, gpus, nodes, cpu_offload=stage.offload_optimizer, additional_buffer_factor=1.0
        )
        zero2 += BYTES_16BIT * frozen
        _, zero3, _ = estimate_zero3_model_states_mem_needs(
            trainable,
            biggest,
            gpus,
            nodes,
            cpu_offload=stage.offload_optimizer,
            cpu_offload_params=stage.offload_params,
            additional_buffer_factor=1.0,
        )
        zero3 += BYTES_16BIT * frozen // (gpus * nodes)
        activations = activation_bytes(params, name)
        states = zero3 if stage.zero_stage == 3 else zero2
        total_gb = (states + activations) / GB
        plans.append(
            StagePlan(
                stage=name,
                frames=stage.max_frames,
                resolution=stage.resolution,
                context_length=stage.context_length,
                zero_stage=stage.zero_stage,
                trainable_params=trainable,
                total_params=total,
                zero2_model_states_gb=zero2 / GB,
                zero3_model_states_gb=zero3 / GB,
                activations_gb=activations / GB,
                total_gb=total_gb,
                fits=total_gb <= params.train.plan_gpu_memory_gb,
            )
        )
    return plans


def render_plan(plans: list[StagePlan], params: Params) -> None:
    """Print the plan as a table (rich) and log one line per stage."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"Memory per GPU, profile {params.profile}: {params.train.plan_gpus_per_node} GPUs/node x "
        f"{params.train.plan_num_nodes} node(s), {params.train.plan_gpu_memory_gb:.0f} GB each"
    )
    for column in (
        "stage",
        "frames",
        "px",
        "context",
        "trainable",
        "ZeRO-2 states",
        "ZeRO-3 states",
        "activations",
        "total @ZeRO",
        "fits",
    ):
        table.add_column(column, justify="left" if column == "stage" else "right")
    for plan in plans:
        table.add_row(
            plan.stage,
            str(plan.frames),
            str(plan.resolution),
            str(plan.context_length),
            f"{plan.trainable_params / 1e6:,.1f}M / {plan.total_params / 1e6:,.1f}M",
            f"{plan.zero2_model_states_gb:.2f} GB",
            f"{plan.zero3_model_states_gb:.2f} GB",
            f"{plan.activations_gb:.2f} GB",
            f"{plan.total_gb:.2f} GB (Z{plan.zero_stage})",
            "yes" if plan.fits else "NO",
        )
    Console(width=160).print(table)  # wide enough for every column in a CI log


def plans_as_dicts(plans: list[StagePlan]) -> list[dict[str, Any]]:
    return [asdict(plan) for plan in plans]
