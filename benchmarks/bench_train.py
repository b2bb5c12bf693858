"""Training: sequence packing vs. padding on the tiny profile, side by side; the paper-profile memory plan.

Both runs are the real recipe (`kangaroo.train.loop.train_stage`, DeepSpeed ZeRO-2, fp32, one rank) on the
instruction-tuning stage of the tiny profile, from the same fresh model and the same samples, for the same
number of optimizer steps; only `packing` differs. Padded = one sample per row of `context_length` tokens
(what a fixed-shape batch without packing computes). Reported per mode: the non-pad token fraction, real
(non-pad) training tokens per second, and the ratio packed/padded. Target: >= 95% utilisation packed.

The corpus (60 clips) is generated once into .cache/bench/train_corpus. The machine is shared: read the
ratio, not the absolute numbers.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path

from kangaroo.config import load_params
from kangaroo.synth.corpus import write_corpus
from kangaroo.synth.settings import SynthSettings
from kangaroo.train.reference_dataset import write_reference_dataset

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / ".cache" / "bench" / "train_corpus"
STAGE = "instruction_tuning"
STEPS = 30


def ensure_corpus() -> Path:
    if not (CORPUS / "questions.jsonl").is_file():
        write_corpus(
            CORPUS,
            SynthSettings(
                seed=11,
                num_videos=60,
                num_images=8,
                long_video_seconds=30.0,
                num_motion_clips=0,
                shape_radius_fraction=0.12,
            ),
        )
    return CORPUS


def run(mode_packing: bool, corpus: Path, work: Path) -> dict:
    from kangaroo.train.loop import train_stage

    params = load_params(ROOT / "params.yaml", "tiny")
    stage = params.train.stage(STAGE).model_copy(update={"packing": mode_packing, "init_from": "scratch"})
    train = params.train.model_copy(update={"stages": params.train.stages.model_copy(update={STAGE: stage})})
    params = params.model_copy(update={"train": train})
    out = work / ("packed" if mode_packing else "padded")
    train_stage(
        params,
        STAGE,
        out,
        corpus_dir=corpus,
        dataset_dir=work / "dataset",
        max_steps=STEPS,
        show_progress=False,
    )
    summary = json.loads((out / "summary.json").read_text())
    summary["real_tokens_per_s"] = summary["tokens"] / summary["wall_time_s"]
    return summary


def main() -> None:
    from kangaroo.train.memory_plan import plan_memory, render_plan

    corpus = ensure_corpus()
    with tempfile.TemporaryDirectory(prefix="bench_train_") as tmp:
        work = Path(tmp)
        write_reference_dataset(corpus, work / "dataset")
        packed, padded = run(True, corpus, work), run(False, corpus, work)
    for name, summary in (("packed", packed), ("padded", padded)):
        log.info(
            "%-6s  non-pad tokens %5.1f%%  real tokens/s %8.0f  (%d real tokens in %d steps, %.1f s)",
            name,
            100 * (1 - summary["padding_fraction"]),
            summary["real_tokens_per_s"],
            summary["tokens"],
            summary["steps"],
            summary["wall_time_s"],
        )
    log.info(
        "packing: utilisation %.1f%% (target >= 95%%) vs %.1f%% padded; training tokens/s x%.2f",
        100 * (1 - packed["padding_fraction"]),
        100 * (1 - padded["padding_fraction"]),
        packed["real_tokens_per_s"] / padded["real_tokens_per_s"],
    )
    paper = load_params(ROOT / "params.yaml", "paper")
    render_plan(plan_memory(paper), paper)


if __name__ == "__main__":
    from kangaroo.logs import setup_logging

    setup_logging("INFO")
    main()
