"""metrics.json re-shaped into lmms-eval's results layout, so our numbers sit beside published lmms-eval runs.

lmms-eval writes ``{"results": {task: {"alias": task, "<metric>,none": value, "<metric>_stderr,none": se}},
"configs": {...}, "versions": {...}, "n-samples": {...}, "config": {...}, "git_hash": ...}`` with accuracies
in percent for the video MCQ tasks; sub-tasks (here: categories) are listed as ``<benchmark>_<category>``.
"""

from __future__ import annotations

import datetime
import re
from typing import Any


def _task_name(benchmark: str, category: str) -> str:
    return f"{benchmark}_{re.sub(r'[^a-z0-9]+', '_', category.lower()).strip('_')}"


def lmms_eval_results(metrics: dict[str, Any]) -> dict[str, Any]:
    """The lmms-eval results dict for one metrics.json (every mode present becomes a metric)."""
    run = metrics.get("run", {})
    benchmark = str(run.get("benchmark", "benchmark"))
    num_frames = metrics.get("frames", {}).get("num_frames_setting")
    modes = [mode for mode in ("generation", "likelihood") if mode in metrics]
    results: dict[str, dict[str, Any]] = {benchmark: {"alias": benchmark}}
    samples: dict[str, dict[str, int]] = {
        benchmark: {"original": metrics["num_questions"], "effective": metrics["num_questions"]}
    }
    for mode in modes:
        block = metrics[mode]
        results[benchmark][f"{mode}_accuracy,none"] = 100.0 * block["accuracy"]
        results[benchmark][f"{mode}_accuracy_stderr,none"] = 100.0 * block["accuracy_stderr"]
        for category, entry in block["per_category"].items():
            task = _task_name(benchmark, category)
            results.setdefault(task, {"alias": f" - {category}"})[f"{mode}_accuracy,none"] = (
                100.0 * entry["accuracy"]
            )
            samples[task] = {"original": entry["num_questions"], "effective": entry["num_questions"]}
    return {
        "results": results,
        "group_subtasks": {benchmark: sorted(t for t in results if t != benchmark)},
        "configs": {
            benchmark: {
                "task": benchmark,
                "output_type": "generate_until" if "generation" in modes else "multiple_choice",
                "generation_kwargs": {"max_new_tokens": run.get("max_new_tokens"), "do_sample": False},
                "doc_to_text": run.get("prompt_template"),
                "metadata": {"num_frames": num_frames},
            }
        },
        "versions": {benchmark: run.get("code_version")},
        "n-samples": samples,
        "config": {
            "model": "kangaroo",
            "model_args": f"pretrained={run.get('checkpoint')},max_frames_num={num_frames}",
            "batch_size": run.get("batch_size"),
            "video_decode_backend": run.get("decoder_backend"),
        },
        "git_hash": run.get("code_version"),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y%m%d_%H%M%S"),
    }
