"""The one command line that runs a training stage under torchrun: locally (`--standalone`, N processes on
this machine) and in every PyTorchJob replica (N processes per node, nodes joined through the rendezvous
the Kubeflow training operator provides). Tests run the local form with gloo on CPU; the PyTorchJob
generator uses the multi-node form, so both exercise the same `kangaroo train` entry point.
"""

from __future__ import annotations

from pathlib import Path

TRAIN_ENTRY_POINT = ("kangaroo", "train")  # the console script of kangaroo/cli.py + the subcommand


def train_arguments(
    out: str | Path,
    *,
    params_file: str | Path | None = None,
    profile: str | None = None,
    overrides: tuple[str, ...] | list[str] = (),
    data: str | Path | None = None,
    init: str | Path | None = None,
    checkpoints: str | Path | None = None,
    dataset_version: str | None = None,
    max_steps: int | None = None,
    resume: bool = False,
) -> list[str]:
    """`kangaroo train` flags (see kangaroo/train/cli.py) other than `--stage`, unset values left out."""
    args = ["--out", str(out)]
    for flag, value in (
        ("--params", params_file),
        ("--profile", profile),
        ("--data", data),
        ("--init", init),
        ("--checkpoints", checkpoints),
        ("--dataset-version", dataset_version),
        ("--max-steps", max_steps),
    ):
        if value is not None:
            args += [flag, str(value)]
    for assignment in overrides:
        args += ["--set", assignment]
    if resume:
        args.append("--resume")
    return args


def torchrun_command(
    stage: str, args: list[str], nproc_per_node: int, nnodes: int = 1, bin_dir: str | Path | None = None
) -> list[str]:
    """`torchrun ... kangaroo train --stage STAGE ARGS`.

    nnodes == 1: `--standalone` (a local rendezvous on a free port). nnodes > 1: no rendezvous flags on
    purpose; torchrun reads PET_MASTER_ADDR, PET_MASTER_PORT and PET_NODE_RANK, which the training operator
    sets in each PyTorchJob pod (the Master pod's address, its `pytorchjob-port`, the pod's index).
    `--no-python` runs the `kangaroo` console script instead of a Python file. Both programs come from
    PATH (the image's venv), or from BIN_DIR when given (e.g. `Path(sys.executable).parent` locally).
    """
    if nproc_per_node < 1 or nnodes < 1:
        raise ValueError(f"nproc_per_node={nproc_per_node} and nnodes={nnodes} must be >= 1")
    program, subcommand = TRAIN_ENTRY_POINT
    torchrun = "torchrun"
    if bin_dir is not None:
        torchrun, program = str(Path(bin_dir) / torchrun), str(Path(bin_dir) / program)
    command = [torchrun, f"--nnodes={nnodes}", f"--nproc-per-node={nproc_per_node}"]
    if nnodes == 1:
        command.append("--standalone")
    return [*command, "--no-python", program, subcommand, "--stage", stage, *args]
