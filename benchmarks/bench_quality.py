"""Caption quality gate on 500 vs 5,000 captions: GX import and context build (paid once), then each run,
split into pandas features and the whole gate; prints per-caption cost and the 10x-data time ratio."""

import json
import logging
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

SHAPES = ("circle", "square", "triangle", "star", "hexagon")
COLORS = ("red", "green", "blue", "yellow", "purple", "orange")
DIRECTIONS = ("left", "right", "up", "down")


def write_dataset(folder: Path, count: int) -> Path:
    """A clean captioned dataset folder of `count` videos (unique captions, 5 frame captions each)."""
    folder.mkdir(parents=True)
    rows, ledger = [], []
    for i in range(count):
        shape, color = SHAPES[i % 5], COLORS[(i // 5) % 6]
        direction, new_color = DIRECTIONS[(i // 30) % 4], COLORS[(i // 120) % 6]
        duration = 5.0 + (i % 50)
        caption = (
            f"A {color} {shape} moves {direction} across a grey background; at {duration * 0.6:.1f} seconds "
            f"it turns {new_color} and clip number {i} ends with the shape near the corner."
        )
        frames = [
            {"t": duration * (k + 0.5) / 5, "caption": f"a {color} {shape} in frame {k}"} for k in range(5)
        ]
        key = f"clip_{i:06d}"
        rows.append({"video": f"videos/{key}.mp4", "key": key, "duration": duration, "frame_captions": frames,
                     "caption": caption, "captioner": "source"})  # fmt: skip
        ledger.append({"video": f"videos/{key}.mp4", "key": key, "status": "kept", "reason": None})
    ledger += [{"video": f"bad/{j}.mp4", "key": f"bad_{j}", "status": "rejected", "reason": "duration"}
               for j in range(count // 4)]  # fmt: skip
    for name, records in (("dataset.jsonl", rows), ("ledger.jsonl", ledger)):
        (folder / name).write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def main() -> None:
    started = time.perf_counter()
    import great_expectations  # noqa: F401

    gx_import = time.perf_counter() - started

    from kangaroo.quality.dataset import load_captioned_dataset
    from kangaroo.quality.features import caption_features
    from kangaroo.quality.runner import gate_context, run_quality_gate
    from kangaroo.quality.settings import QualitySettings

    settings = QualitySettings(min_rows=10)
    started = time.perf_counter()
    gate_context(settings)
    context_build = time.perf_counter() - started
    log.info("GX import %.2f s, context build (once) %.2f s", gx_import, context_build)

    with tempfile.TemporaryDirectory() as scratch:
        timings = {}
        for count in (500, 5000):
            folder = write_dataset(Path(scratch) / f"d{count}", count)
            started = time.perf_counter()
            caption_features(load_captioned_dataset(folder).rows)
            features = time.perf_counter() - started
            run_quality_gate(folder, Path(scratch) / f"r{count}", settings)  # warm-up: first run per size
            started = time.perf_counter()
            result = run_quality_gate(folder, Path(scratch) / f"r{count}b", settings)
            gate = time.perf_counter() - started
            assert result.success, result.failed_expectations
            timings[count] = gate
            log.info(
                "%5d captions: gate %.2f s (%.2f ms/caption), of which load+features %.2f s",
                count, gate, 1000 * gate / count, features,
            )  # fmt: skip
    log.info("10x the captions costs %.1fx the gate time", timings[5000] / timings[500])
