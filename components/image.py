"""The compile-time settings of the pipeline: its profile (placement, the `profile` parameter's default) and
the project image. `make compile` (pipelines/compile.py) sets both through the environment before the
pipeline is imported: the image by digest or commit-derived tag. Without them (in-process compiles, the
local runner) the default profile of params.yaml and `cluster.image` apply."""

import functools
import json
import os
from pathlib import Path

from kfp import dsl

from kangaroo.config import Params, default_params_path, load_params, read_params_tree
from kangaroo.step_config import COMPILE_PROFILE_ENV, IMAGE_ENV

PROJECT_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def project_params_text() -> str:
    """params.yaml next to the code (the repo root, or /app in the image), else $KANGAROO_PARAMS, as one line
    of JSON (valid YAML): the KFP compiler copies defaults into the YAML header comment, where a multi-line
    string would break the file."""
    path = PROJECT_PARAMS if PROJECT_PARAMS.is_file() else default_params_path()
    return json.dumps(read_params_tree(path), separators=(",", ":"))


def compile_time_params() -> Params:
    path = PROJECT_PARAMS if PROJECT_PARAMS.is_file() else None
    return load_params(path, profile=os.environ.get(COMPILE_PROFILE_ENV) or None)


COMPILE_TIME_PARAMS = compile_time_params()
PROJECT_IMAGE = os.environ.get(IMAGE_ENV) or COMPILE_TIME_PARAMS.cluster.image
# The reference of an image built from known code (set by `make compile`): every task's env carries it.
PINNED_IMAGE = bool(os.environ.get(IMAGE_ENV))

# The image already holds the pinned kfp: don't let each step pip-install it at start-up (offline clusters).
project_component = functools.partial(dsl.component, base_image=PROJECT_IMAGE, install_kfp_package=False)
