"""`kangaroo train` (one curriculum stage) and `kangaroo plan-memory` (what each stage needs per GPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kangaroo.cli_options import Overrides, ParamsFile, Profile, resolve_params


def train(
    stage: Annotated[
        str,
        typer.Option(
            "--stage",
            help="Curriculum stage: image_text_pretrain, video_text_pretrain, pretrain_refinement, "
            "instruction_tuning or long_video_tuning (a block under train.stages in params.yaml).",
        ),
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Stage output folder: model/ (HF folder + processor), checkpoints/, metrics.jsonl, "
            "tensorboard/, summary.json.",
        ),
    ],
    data: Annotated[
        str,
        typer.Option(
            "--data",
            help="Packed training data (`kangaroo pack --out`): a folder or an s3:// prefix (endpoint from "
            "storage: in params.yaml, credentials from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).",
        ),
    ],
    init: Annotated[
        str | None,
        typer.Option(
            "--init",
            help="Model to start from: a model folder (or a stage output folder holding model/), or 'none' "
            "for fresh weights from the model: block. Default: the stage's init_from (previous stage's "
            "OUT/../<previous stage>/model).",
        ),
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the newest checkpoint in the checkpoint folder.")
    ] = False,
    max_steps: Annotated[
        int | None,
        typer.Option(
            "--max-steps",
            help="Override the stage's optimizer-step budget (a phased stage's phases share it).",
        ),
    ] = None,
    checkpoints: Annotated[
        Path | None,
        typer.Option("--checkpoints", help="DeepSpeed checkpoint folder (default OUT/checkpoints)."),
    ] = None,
    dataset_version: Annotated[
        str | None,
        typer.Option("--dataset-version", help="Dataset version (DVC md5) recorded in summary.json."),
    ] = None,
    num_gpus: Annotated[
        int,
        typer.Option(
            "--num-gpus",
            min=1,
            help="Processes (GPUs) on this node: more than one spawns torchrun with one rank each (gloo on "
            "CPU), unless already under a launcher.",
        ),
    ] = 1,
    num_nodes: Annotated[
        int,
        typer.Option(
            "--num-nodes",
            min=1,
            help="Nodes: more than one runs the stage as a cluster job (Trainer v2 TrainJob, placement from "
            "the cluster: block) that this process submits and follows.",
        ),
    ] = 1,
    vision_tower: Annotated[
        Path | None,
        typer.Option(
            "--vision-tower",
            help="Output of `kangaroo pretrain-vision`: a fresh model loads its tower (no effect when the "
            "folder holds no weights, i.e. pre-training was disabled, or when starting from a model).",
        ),
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Train one curriculum stage with DeepSpeed: in this process, as NUM_GPUS torchrun ranks, or as a cluster
    job on NUM_NODES nodes; the launcher a KFP training task runs (kangaroo.train.launch.run_stage)."""
    from kangaroo.train.launch import run_stage
    from kangaroo.train.vision_tags import tower_overrides

    params = resolve_params(params_file, profile, [*(overrides or ()), *tower_overrides(vision_tower)])
    run_stage(
        params,
        stage,
        out,
        data=data,
        init_from=init,
        resume=resume,
        max_steps=max_steps,
        checkpoint_dir=checkpoints,
        dataset_version=dataset_version,
        num_gpus=num_gpus,
        num_nodes=num_nodes,
    )


def pack(
    corpus: Annotated[
        str,
        typer.Option(
            "--corpus",
            help="Corpus folder or s3:// prefix: images.jsonl, image_questions.jsonl, questions.jsonl and "
            "the media they name.",
        ),
    ],
    out: Annotated[str, typer.Option("--out", help="Folder or s3:// prefix for the shards and index.")],
    dataset: Annotated[
        str | None,
        typer.Option("--dataset", help="Captioned dataset folder or s3:// prefix holding dataset.jsonl."),
    ] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Pack the train split of corpus + dataset into litdata shards with a per-sample index."""
    from kangaroo.packed.pack import pack_training_data

    params = resolve_params(params_file, profile, overrides)
    pack_training_data(params, corpus, out, dataset=dataset)


def plan_memory_command(
    gpus_per_node: Annotated[
        int | None, typer.Option("--gpus-per-node", help="Default: train.plan_gpus_per_node.")
    ] = None,
    num_nodes: Annotated[int | None, typer.Option("--nodes", help="Default: train.plan_num_nodes.")] = None,
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Per stage: DeepSpeed's model-state estimate per GPU for ZeRO-2/3 plus activations for its frames."""
    from kangaroo.train.memory_plan import plan_memory, render_plan

    params = resolve_params(params_file, profile, overrides)
    rows = plan_memory(params, gpus_per_node=gpus_per_node, num_nodes=num_nodes)
    render_plan(rows, params)


def pretrain_vision(
    corpus: Annotated[
        Path, typer.Option("--corpus", help="Corpus folder whose images.jsonl holds the captioned stills.")
    ],
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Vision-model folder to write (config.json, model.safetensors, tags.json, summary.json); "
            "the first curriculum stage loads it with --set model.vision_model=OUT.",
        ),
    ],
    params_file: ParamsFile = None,
    profile: Profile = None,
    overrides: Overrides = None,
) -> None:
    """Pre-train the `model.vision` tower on caption tags (CatLIP-style) when there is no pretrained one."""
    from kangaroo.train.vision_tags import pretrain_vision_tower

    params = resolve_params(params_file, profile, overrides)
    pretrain_vision_tower(params, corpus, out)
