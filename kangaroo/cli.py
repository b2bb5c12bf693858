"""`kangaroo` command line. Each subcommand lives in its package's `cli.py` and imports heavy libraries
lazily, so `kangaroo --help` stays fast."""

import logging
import sys

import typer

from kangaroo import config_cli
from kangaroo.curation import cli as curation_cli
from kangaroo.errors import InfrastructureError, KangarooError
from kangaroo.eval import cli as eval_cli
from kangaroo.k8s import cli as k8s_cli
from kangaroo.logs import setup_logging
from kangaroo.model import cli as model_cli
from kangaroo.quality import cli as quality_cli
from kangaroo.storage import cli as storage_cli
from kangaroo.synth import cli as synth_cli
from kangaroo.train import cli as train_cli
from kangaroo.video import cli as video_cli

EXIT_INFRASTRUCTURE = 75  # EX_TEMPFAIL

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    help="Kangaroo training system: synthesise, curate, caption, validate, train, evaluate.",
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(
    log_level: str = typer.Option("INFO", "--log-level", help="DEBUG, INFO, WARNING or ERROR."),
) -> None:
    setup_logging(log_level)


def _register_commands() -> None:
    # One line per subcommand, in pipeline order; each package keeps its command in its own cli.py.
    app.command("resolve-config")(config_cli.resolve_config)
    app.command("synth")(synth_cli.synth)
    app.command("frames")(video_cli.frames)
    app.command("curate")(curation_cli.curate)
    app.command("alignment-model")(curation_cli.alignment_model)
    app.command("caption")(curation_cli.caption)
    app.command("validate")(quality_cli.validate)
    app.command("version-dataset")(storage_cli.version_dataset_command)
    app.command("pack")(train_cli.pack)
    app.command("pretrain-vision")(train_cli.pretrain_vision)
    app.command("train")(train_cli.train)
    app.command("plan-memory")(train_cli.plan_memory_command)
    app.command("trainjob")(k8s_cli.trainjob)
    app.command("evaluate")(eval_cli.evaluate)
    app.command("check-benchmark")(eval_cli.check_benchmark)
    app.command("model-info")(model_cli.model_info)
    app.command("model-convert-eva")(model_cli.convert_eva)
    app.command("dvc-plot-data")(storage_cli.dvc_plot_data)


_register_commands()


def main() -> None:
    try:
        app()
    except KangarooError as err:
        logging.getLogger("kangaroo").error("%s: %s", type(err).__name__, err)
        # EX_TEMPFAIL: storage/network/disk failed, retrying the step may succeed; 2: a bad input or setting
        sys.exit(EXIT_INFRASTRUCTURE if isinstance(err, InfrastructureError) else 2)
