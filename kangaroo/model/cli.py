"""`kangaroo model-info`: parameter count and visual-token budget of a profile, without weights."""

from pathlib import Path
from typing import Annotated

import typer

from kangaroo.cli_options import Overrides, ParamsFile, Profile, resolve_params


def model_info(
    frames: Annotated[
        list[int] | None,
        typer.Option("--frames", help="Video lengths to budget (repeatable; default 1 16 64 160)."),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the plan as JSON here.")] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Build the profile's model on the meta device and report parameters and visual tokens per video."""
    import json

    from rich.console import Console
    from rich.table import Table

    from kangaroo.model.footprint import plan_model

    params = resolve_params(params_file, profile, overrides)
    plan = plan_model(params.model, tuple(frames or (1, 16, 64, 160)))
    console = Console()
    parts = Table(title=f"'{params.profile}': {plan.total_parameters / 1e9:.3f} B parameters")
    parts.add_column("module group")
    parts.add_column("parameters", justify="right")
    for name, count in plan.parameters.items():
        parts.add_row(name, f"{count:,}")
    console.print(parts)
    tokens = Table(
        title=f"{plan.image_size} px: {plan.patches_per_frame} patches -> "
        f"{plan.visual_tokens_per_frame:g} tokens/frame"
    )
    for column in (
        "frames",
        "visual tokens",
        "with markers",
        f"of {plan.llm_max_position_embeddings} positions",
    ):
        tokens.add_column(column, justify="right")
    for n, count in plan.visual_tokens.items():
        with_markers = plan.video_tokens_with_markers[n]
        tokens.add_row(
            str(n),
            f"{count:,}",
            f"{with_markers:,}",
            f"{with_markers / plan.llm_max_position_embeddings:.0%}",
        )
    console.print(tokens)
    if json_out:
        json_out.write_text(json.dumps(plan.to_dict(), indent=2))


def convert_eva(
    source: Annotated[Path, typer.Argument(help="Released EVA02-CLIP weights (.pt, .bin or .safetensors).")],
    out: Annotated[Path, typer.Argument(help="Folder to write the transformers-format vision tower into.")],
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Convert EVA02-CLIP vision weights into the folder `model.vision_model` names (shape from params)."""
    from kangaroo.model.eva_vision import EvaVisionConfig, convert_eva_clip_checkpoint

    vision = resolve_params(params_file, profile, overrides).model.vision
    config = EvaVisionConfig(
        hidden_size=vision.hidden_size,
        num_hidden_layers=vision.num_hidden_layers,
        num_attention_heads=vision.num_attention_heads,
        intermediate_size=vision.intermediate_size,
        patch_size=vision.patch_size,
        image_size=vision.image_size,
    )
    convert_eva_clip_checkpoint(str(source), str(out), config)
