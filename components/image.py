"""The project image, from the one place it is set: `cluster.image` in params.yaml."""

import functools
import json
from pathlib import Path

from kfp import dsl

from kangaroo.config import default_params_path, load_params, read_params_tree

PROJECT_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def project_params_text() -> str:
    """params.yaml next to the code (the repo root, or /app in the image), else $KANGAROO_PARAMS, as one line
    of JSON (valid YAML): the KFP compiler copies defaults into the YAML header comment, where a multi-line
    string would break the file."""
    path = PROJECT_PARAMS if PROJECT_PARAMS.is_file() else default_params_path()
    return json.dumps(read_params_tree(path), separators=(",", ":"))


PROJECT_IMAGE = load_params(PROJECT_PARAMS if PROJECT_PARAMS.is_file() else None).cluster.image

# The image already holds the pinned kfp: don't let each step pip-install it at start-up (offline clusters).
project_component = functools.partial(dsl.component, base_image=PROJECT_IMAGE, install_kfp_package=False)
