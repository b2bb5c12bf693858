"""Multiple-choice video QA benchmarks read into one shape, whatever layout they were published in.

Supported layouts (as released by their authors and mirrored on the Hugging Face hub):

- ``sample:DIR``: our corpus' ``questions.jsonl`` (docs/data-formats.md); ``--split`` filters rows.
- ``mvbench:DIR``: ``DIR/json/<task>.json`` lists of ``{video, question, candidates, answer, [start, end]}``
  whose ``answer`` is the text of the right candidate; videos under ``DIR/video/<source folder>/``.
- ``videomme:DIR``: ``DIR/videomme/test-*.parquet`` (or ``*.json``/``*.jsonl`` with the same columns:
  ``videoID, question_id, question, options ["A. ...", ...], answer, duration, domain, task_type``);
  videos at ``DIR/data/<videoID>.mp4``.
- ``egoschema:DIR``: ``DIR/questions.json`` (``q_uid, question, option 0..option 4``) and
  ``DIR/subset_answers.json`` (``{q_uid: index}``); videos at ``DIR/videos/<q_uid>.mp4``. Questions
  without a published answer cannot be scored and are dropped (with a log line).

``DIR`` may be an ``s3://bucket/prefix`` URL: the prefix is downloaded into the eval cache first.
"""

from __future__ import annotations

import json
import logging
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kangaroo.errors import KangarooError
from kangaroo.jsonl import read_jsonl

logger = logging.getLogger(__name__)

LETTERS = string.ascii_uppercase
BENCHMARK_KINDS = ("sample", "mvbench", "videomme", "egoschema")

# MVBench keeps each task's clips in the folder of the dataset they came from (the release's layout).
MVBENCH_VIDEO_FOLDERS = {
    "object_interaction": "star/Charades_segment",
    "action_sequence": "star/Charades_segment",
    "action_prediction": "star/Charades_segment",
    "action_localization": "sta/sta_video_segment",
    "moving_count": "clevrer/video_validation",
    "fine_grained_pose": "nturgbd_convert",
    "character_order": "perception/videos",
    "object_shuffle": "perception/videos",
    "egocentric_navigation": "vlnqa",
    "moving_direction": "clevrer/video_validation",
    "episodic_reasoning": "tvqa/video_fps3_hq_segment",
    "fine_grained_action": "Moments_in_Time_Raw/videos",
    "scene_transition": "scene_qa/video",
    "state_change": "perception/videos",
    "moving_attribute": "clevrer/video_validation",
    "action_antonym": "ssv2_video_mp4",
    "unexpected_action": "FunQA_test/test",
    "counterfactual_inference": "clevrer/video_validation",
    "object_existence": "clevrer/video_validation",
    "action_count": "perception/videos",
}


class BenchmarkError(KangarooError):
    """A benchmark spec or file is malformed; the message names the file (and row) and the cause."""


@dataclass(frozen=True)
class MCQuestion:
    """One multiple-choice video question in the common shape every scorer reads."""

    question_id: str
    video: str  # local path or s3:// URL
    question: str
    options: tuple[str, ...]
    answer: str | None  # gold letter "A".."Z"; None when the benchmark does not publish it
    category: str
    task: str
    start: float | None = None  # seconds; only this window of the clip is shown to the model
    end: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    @property
    def num_options(self) -> int:
        return len(self.options)

    @property
    def answer_index(self) -> int | None:
        return None if self.answer is None else LETTERS.index(self.answer)


@dataclass(frozen=True)
class BenchmarkSpec:
    """`kind:location` as given on the command line, e.g. ``sample:work/sample`` or ``mvbench:s3://b/mvbench``."""

    kind: str
    location: str
    split: str | None = None

    @classmethod
    def parse(cls, spec: str, split: str | None = None) -> BenchmarkSpec:
        kind, sep, location = spec.partition(":")
        if not sep or kind not in BENCHMARK_KINDS or not location:
            raise BenchmarkError(
                f"benchmark spec {spec!r}: expected KIND:PATH with KIND one of {', '.join(BENCHMARK_KINDS)}"
            )
        return cls(kind=kind, location=location, split=split)

    @property
    def name(self) -> str:
        return self.kind


def answer_letter(raw: Any, num_options: int, where: str) -> str:
    """A gold answer given as a letter ("b", " B"), checked against the number of options."""
    answer = str(raw).strip().upper()
    if answer not in LETTERS[:num_options]:
        raise BenchmarkError(f"{where}: answer {raw!r} is not one of {num_options} letters")
    return answer


def letter_of(index: int, num_options: int, where: str) -> str:
    if not 0 <= index < num_options:
        raise BenchmarkError(f"{where}: answer index {index} outside the {num_options} options")
    return LETTERS[index]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError as err:
        raise BenchmarkError(f"{path}: file not found") from err
    except json.JSONDecodeError as err:
        raise BenchmarkError(f"{path}: not valid JSON: {err}") from err


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    return read_jsonl(path, BenchmarkError)


def _require(row: dict[str, Any], keys: tuple[str, ...], where: str) -> None:
    missing = [key for key in keys if key not in row]
    if missing:
        raise BenchmarkError(f"{where}: missing key(s) {', '.join(missing)}")


def _resolve_video(root: Path, video: str) -> str:
    if video.startswith("s3://") or Path(video).is_absolute():
        return video
    return str(root / video)


def _optional_float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def load_sample(root: Path, split: str | None) -> list[MCQuestion]:
    """Our corpus' questions.jsonl; rows of other splits are skipped when `split` is given."""
    path = root / "questions.jsonl"
    questions = []
    for number, row in enumerate(_read_jsonl(path), start=1):
        where = f"{path}:{number}"
        _require(row, ("question_id", "video", "question", "options", "answer", "category"), where)
        if split is not None and row.get("split") != split:
            continue
        options = tuple(str(option) for option in row["options"])
        answer = answer_letter(row["answer"], len(options), where)
        questions.append(
            MCQuestion(
                question_id=str(row["question_id"]),
                video=_resolve_video(root, row["video"]),
                question=row["question"],
                options=options,
                answer=answer,
                category=row["category"],
                task=row["category"],
                start=_optional_float(row.get("start")),
                end=_optional_float(row.get("end")),
                extra={"clip_id": row.get("clip_id"), "split": row.get("split")},
            )
        )
    return questions


def _mvbench_video(root: Path, task: str, video: str) -> str:
    candidates = [root / "video" / MVBENCH_VIDEO_FOLDERS.get(task, task) / video, root / "video" / video]
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    return str(candidates[0])  # reported as undecodable later, with the path the release expects


def load_mvbench(root: Path, split: str | None) -> list[MCQuestion]:
    """MVBench: one JSON list per task; the gold answer is given as the candidate's text."""
    json_dir = root / "json"
    files = sorted(json_dir.glob("*.json"))
    if not files:
        raise BenchmarkError(f"{json_dir}: no MVBench task files (<task>.json)")
    questions = []
    for path in files:
        task = path.stem
        rows = _read_json(path)
        if not isinstance(rows, list):
            raise BenchmarkError(f"{path}: expected a JSON list of questions")
        for number, row in enumerate(rows):
            where = f"{path}[{number}]"
            _require(row, ("video", "question", "candidates", "answer"), where)
            options = tuple(str(candidate) for candidate in row["candidates"])
            if row["answer"] not in options:
                raise BenchmarkError(f"{where}: answer {row['answer']!r} is none of the candidates")
            questions.append(
                MCQuestion(
                    question_id=f"{task}/{number}",
                    video=_mvbench_video(root, task, row["video"]),
                    question=row["question"],
                    options=options,
                    answer=letter_of(options.index(row["answer"]), len(options), where),
                    category=task,
                    task=task,
                    start=_optional_float(row.get("start")),
                    end=_optional_float(row.get("end")),
                )
            )
    return questions


_OPTION_PREFIX = re.compile(r"^\s*\(?([A-Z])[.):]\s*")


def _videomme_rows(root: Path) -> list[dict[str, Any]]:
    folder = root / "videomme" if (root / "videomme").is_dir() else root
    parquet = sorted(folder.glob("*.parquet"))
    if parquet:
        import pandas as pd

        frame = pd.concat([pd.read_parquet(path) for path in parquet], ignore_index=True)
        rows = frame.to_dict(orient="records")
        for row in rows:  # parquet list columns arrive as numpy arrays
            row["options"] = [str(option) for option in row.get("options", [])]
        return rows
    for pattern, reader in (("*.jsonl", _read_jsonl), ("*.json", _read_json)):
        files = sorted(folder.glob(pattern))
        if files:
            return [row for path in files for row in reader(path)]
    raise BenchmarkError(f"{folder}: no Video-MME annotation file (*.parquet, *.jsonl or *.json)")


def _videomme_video(root: Path, video_id: str) -> str:
    """`data/<videoID>.mp4`, or the .MP4/.mkv variants some downloads have."""
    for suffix in (".mp4", ".MP4", ".mkv"):
        candidate = root / "data" / f"{video_id}{suffix}"
        if candidate.exists():
            return str(candidate)
    return str(root / "data" / f"{video_id}.mp4")


def load_videomme(root: Path, split: str | None) -> list[MCQuestion]:
    """Video-MME: options carry their letter ("A. ..."), the answer is a letter; `split` filters duration."""
    questions = []
    for number, row in enumerate(_videomme_rows(root)):
        where = f"{root} Video-MME row {number}"
        _require(row, ("videoID", "question_id", "question", "options", "answer"), where)
        if split is not None and row.get("duration") != split:
            continue
        options = tuple(_OPTION_PREFIX.sub("", option, count=1) for option in row["options"])
        answer = answer_letter(row["answer"], len(options), where)
        questions.append(
            MCQuestion(
                question_id=str(row["question_id"]),
                video=_videomme_video(root, str(row["videoID"])),
                question=row["question"],
                options=options,
                answer=answer,
                category=str(row.get("task_type") or "videomme"),
                task=str(row.get("duration") or "videomme"),
                extra={"domain": row.get("domain"), "sub_category": row.get("sub_category")},
            )
        )
    return questions


def load_egoschema(root: Path, split: str | None) -> list[MCQuestion]:
    """EgoSchema: five options per question; gold answers only for the published subset."""
    path = root / "questions.json"
    rows = _read_json(path)
    answers_path = root / "subset_answers.json"
    answers = _read_json(answers_path) if answers_path.is_file() else {}
    questions, unanswered = [], 0
    for number, row in enumerate(rows):
        where = f"{path}[{number}]"
        _require(row, ("q_uid", "question", "option 0"), where)
        options = tuple(str(row[f"option {i}"]) for i in range(5) if f"option {i}" in row)
        if row["q_uid"] not in answers:
            unanswered += 1
            continue
        questions.append(
            MCQuestion(
                question_id=row["q_uid"],
                video=str(root / "videos" / f"{row['q_uid']}.mp4"),
                question=row["question"],
                options=options,
                answer=letter_of(int(answers[row["q_uid"]]), len(options), f"{answers_path}[{row['q_uid']}]"),
                category="egoschema",
                task="subset",
            )
        )
    if unanswered:
        logger.info("%s: %d questions have no published answer and are not scored", path, unanswered)
    return questions


LOADERS: dict[str, Callable[[Path, str | None], list[MCQuestion]]] = {
    "sample": load_sample,
    "mvbench": load_mvbench,
    "videomme": load_videomme,
    "egoschema": load_egoschema,
}


def localise(location: str, cache_dir: Path, storage_settings: Any = None, store: Any = None) -> Path:
    """A local folder for `location`: itself, or the download of an s3:// prefix into `cache_dir`."""
    if not location.startswith("s3://"):
        root = Path(location)
        if not root.exists():
            raise BenchmarkError(f"benchmark folder {root} does not exist")
        return root
    from kangaroo.eval.remote import download_prefix

    return download_prefix(location, cache_dir, storage_settings, store)


def load_benchmark(
    spec: BenchmarkSpec,
    cache_dir: Path | str = "work/cache/benchmarks",
    storage_settings: Any = None,
    store: Any = None,
) -> list[MCQuestion]:
    """Read every question of a benchmark (local folder or S3/MinIO prefix) in the common shape.

    For s3:// locations the store is built from `storage_settings` (params' `storage:` block) unless an
    `ObjectStore` is given.
    """
    root = localise(spec.location, Path(cache_dir), storage_settings, store)
    questions = LOADERS[spec.kind](root, spec.split)
    if not questions:
        raise BenchmarkError(f"{spec.kind}:{spec.location}: no questions (split={spec.split!r})")
    seen: set[str] = set()
    for question in questions:
        if question.question_id in seen:
            raise BenchmarkError(f"{spec.kind}:{spec.location}: question_id {question.question_id!r} repeats")
        seen.add(question.question_id)
    logger.info("%s:%s: %d questions", spec.kind, spec.location, len(questions))
    return questions
