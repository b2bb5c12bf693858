"""Captioning: the source, transformers (a tiny model built here) and openai (a real local HTTP server)
backends, through caption_curated and the `kangaroo caption` CLI."""

from __future__ import annotations

import json
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from curation_helpers import tiny_params
from typer.testing import CliRunner

from kangaroo.cli import app
from kangaroo.config import load_params
from kangaroo.config_policy import SecuritySettings
from kangaroo.curation.captioning import CaptionError, FrameCaption, caption_curated, merge_deterministic
from kangaroo.curation.ledger import LedgerRow, write_ledger
from kangaroo.video.synthetic import write_index_clip

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = {
    "a.mp4": "A red circle moves left. Then it turns blue.",
    "b.mp4": "A green square appears in the middle.",
    "c.mp4": "A yellow star slides up. It stops. It disappears.",
}


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> Path:
    """Four kept clips with the three source-caption conventions (and one without any), one rejected."""
    root = tmp_path_factory.mktemp("raw")
    videos = root / "videos"
    for name in ("a.mp4", "b.mp4", "c.mp4", "nocaption.mp4", "rejected.mp4"):
        write_index_clip(videos / name, 50, fps=25.0)
    (videos / "a.txt").write_text(CAPTIONS["a.mp4"] + "\n")
    (videos / "b.json").write_text(json.dumps({"caption": CAPTIONS["b.mp4"]}))
    (root / "ground_truth.jsonl").write_text(
        json.dumps({"video": "videos/c.mp4", "source_caption": CAPTIONS["c.mp4"]}) + "\n"
    )
    rows = [
        LedgerRow(
            str(videos / name),
            name,
            "kept",
            scores={"static_scene": 3.0},
            duration=2.0,
            fps=25.0,
            width=160,
            height=96,
        )
        for name in ("a.mp4", "b.mp4", "c.mp4", "nocaption.mp4")
    ]
    rows.append(LedgerRow(str(videos / "rejected.mp4"), "rejected.mp4", "rejected", "static_scene"))
    out = tmp_path_factory.mktemp("curated")
    write_ledger(out / "ledger.jsonl", rows)
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_source_backend_through_the_cli(curated, tmp_path):
    args = [
        "caption",
        "--curated",
        str(curated),
        "--out",
        str(tmp_path),
        "--params",
        str(ROOT / "params.yaml"),
    ]
    result = CliRunner().invoke(app, [*args, "--backend", "source"])
    assert result.exit_code == 0, result.output[-3000:]
    assert "videos/min" in result.output
    rows = {row["key"]: row for row in read_jsonl(tmp_path / "dataset.jsonl")}
    assert set(rows) == set(CAPTIONS)  # kept and captioned; the rejected clip never reaches captioning
    for key, row in rows.items():
        assert row["caption"] == CAPTIONS[key] and row["captioner"] == "source"
        assert set(row) >= {"video", "duration", "fps", "width", "height", "scores", "frame_captions"}
        times = [fc["t"] for fc in row["frame_captions"]]
        assert len(times) == 5 and times == sorted(times) and 0 <= times[0] and times[-1] < 2.0
        # frame captions are the source sentences in order, spread over the key frames
        assert [fc["caption"] for fc in row["frame_captions"]][0] == CAPTIONS[key].split(". ")[0].rstrip(
            "."
        ) + ("." if "." in CAPTIONS[key] else "")
    failures = read_jsonl(tmp_path / "caption_failures.jsonl")
    assert [f["key"] for f in failures] == ["nocaption.mp4"] and "no source caption" in failures[0]["error"]
    assert (tmp_path / "ledger.jsonl").read_text() == (curated / "ledger.jsonl").read_text()
    summary = json.loads((tmp_path / "caption_summary.json").read_text())
    assert (summary["num_kept"], summary["captioned"], summary["failed"]) == (4, 3, 1)


def test_deterministic_merge_drops_repeated_sentences():
    frames = [
        FrameCaption(2.0, "A red ball rolls to the left."),
        FrameCaption(0.0, "A red ball sits on a table."),
        FrameCaption(4.0, "A red ball rolls to the left!"),
        FrameCaption(6.0, "The ball stops"),
    ]
    merged = merge_deterministic(frames, 0.8)
    assert merged == "A red ball sits on a table. A red ball rolls to the left. The ball stops."


# ---- transformers backend: a tiny LLaVA and a tiny Llama built and saved here -------------------------


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlamaForCausalLM,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from kangaroo.model.tokenizer import build_tiny_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer(512)
    tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
    tokenizer.chat_template = (
        "{% for message in messages %}{{ message['role'] }}: {% if message['content'] is string %}"
        "{{ message['content'] }}{% else %}{% for part in message['content'] %}"
        "{% if part['type'] == 'image' %}<image>{% else %}{{ part['text'] }}{% endif %}{% endfor %}"
        "{% endif %}\n{% endfor %}"
        "{% if add_generation_prompt %}assistant: {% endif %}"
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
    )
    processor = LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}),
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="full",
        num_additional_image_tokens=1,  # CLIP's class token
        chat_template=tokenizer.chat_template,
    )
    vlm_dir, llm_dir = tmp_path_factory.mktemp("tiny_vlm"), tmp_path_factory.mktemp("tiny_llm")
    LlavaForConditionalGeneration(config).save_pretrained(vlm_dir)
    processor.save_pretrained(vlm_dir)
    LlamaForCausalLM(text).save_pretrained(llm_dir)
    tokenizer.save_pretrained(llm_dir)
    return vlm_dir, llm_dir


def test_transformers_backend_captions_every_key_frame_with_a_real_model(curated, tiny_models, tmp_path):
    vlm_dir, llm_dir = tiny_models
    p = tiny_params(
        "caption.backend=transformers",
        f"caption.transformers.model={vlm_dir}",
        f"caption.transformers.merge_model={llm_dir}",
        "caption.transformers.max_new_tokens=6",
        "caption.num_key_frames=3",
    )
    summary = caption_curated(curated, tmp_path, p, progress=False)
    assert (summary.captioned, summary.failed) == (4, 0)  # a model needs no source caption
    rows = read_jsonl(tmp_path / "dataset.jsonl")
    for row in rows:
        assert row["captioner"] == f"transformers:{vlm_dir}+{llm_dir}"
        assert len(row["frame_captions"]) == 3 and all(fc["caption"] for fc in row["frame_captions"])
        assert row["caption"].strip()
    # Different key frames (different pixels) give different generations: the image reaches the model.
    assert len({fc["caption"] for row in rows for fc in row["frame_captions"]}) > 1


def test_transformers_backend_names_a_missing_model(curated, tmp_path):
    p = tiny_params("caption.backend=transformers", f"caption.transformers.model={tmp_path / 'nope'}")
    with pytest.raises(CaptionError, match="nope"):
        caption_curated(curated, tmp_path / "out", p, progress=False)


# ---- openai backend: a real HTTP server on 127.0.0.1 ---------------------------------------------------


class FakeCompletions(BaseHTTPRequestHandler):
    """OpenAI-style /v1/chat/completions. `script` holds what the next requests do: an HTTP status, or
    "slow" (sleep past the client's timeout); once it is empty every request succeeds."""

    script: list = []
    requests: list = []
    in_flight = 0
    max_in_flight = 0
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cls = type(self)
        with cls.lock:
            action = cls.script.pop(0) if cls.script else 200
            cls.requests.append({"body": body, "auth": self.headers.get("Authorization"), "action": action})
            cls.in_flight += 1
            cls.max_in_flight = max(cls.max_in_flight, cls.in_flight)
        try:
            time.sleep(0.1)  # a bit of server time so concurrent requests overlap
            if action == "slow":
                time.sleep(3)
                return
            if action != 200:
                self._send(action, {"error": {"message": f"planned {action}"}})
                return
            content = body["messages"][0]["content"]
            if isinstance(content, str):
                reply = f"merged video caption from {content.count('[')} frames"
            else:
                reply = f"frame {len(content[1]['image_url']['url']) % 97} shows a shape"
            self._send(200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]})
        finally:
            with cls.lock:
                cls.in_flight -= 1

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def completions_server():
    FakeCompletions.script, FakeCompletions.requests = [], []
    FakeCompletions.in_flight = FakeCompletions.max_in_flight = 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def params_allowing_captioner(base_url: str) -> Path:
    """The project's params.yaml with BASE_URL added to security.caption_endpoints, as an operator would
    allow their captioning server (no run can add one: that block is fixed at deployment)."""
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    allowed = [*SecuritySettings().caption_endpoints, base_url]
    tree["profiles"]["tiny"].setdefault("security", {})["caption_endpoints"] = allowed
    path = Path(tempfile.mkdtemp(prefix="params-")) / "params.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def openai_params(base_url: str, *extra: str):
    return load_params(
        params_allowing_captioner(base_url),
        "tiny",
        [
            "caption.backend=openai",
            f"caption.openai.base_url={base_url}",
            "caption.openai.model=tiny-vlm",
            "caption.openai.timeout_s=1.0",
            "caption.openai.backoff_s=0.05",
            "caption.openai.max_retries=3",
            "caption.openai.max_concurrency=4",
            *extra,
        ],
    )


def test_openai_backend_batches_retries_and_times_out(curated, completions_server, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "secret-123")
    FakeCompletions.script = [503, "slow", 429]  # two errors and a stuck request, all retried
    summary = caption_curated(curated, tmp_path, openai_params(completions_server), progress=False)
    assert (summary.captioned, summary.failed) == (4, 0)
    rows = read_jsonl(tmp_path / "dataset.jsonl")
    assert all(row["caption"] == "merged video caption from 5 frames" for row in rows)
    assert all(len(row["frame_captions"]) == 5 and row["captioner"] == "openai:tiny-vlm" for row in rows)
    frame_requests = [
        r for r in FakeCompletions.requests if not isinstance(r["body"]["messages"][0]["content"], str)
    ]
    assert len(frame_requests) == 4 * 5 + 3  # every key frame once, plus the three retried attempts
    image = frame_requests[0]["body"]["messages"][0]["content"][1]["image_url"]["url"]
    assert image.startswith("data:image/jpeg;base64,")
    assert {r["body"]["model"] for r in FakeCompletions.requests} == {"tiny-vlm"}
    assert {r["auth"] for r in FakeCompletions.requests} == {"Bearer secret-123"}
    assert FakeCompletions.max_in_flight >= 2  # frames of a video are requested concurrently


def test_openai_backend_gives_up_on_a_bad_request_and_names_the_endpoint(
    curated, completions_server, tmp_path
):
    FakeCompletions.script = [400] * 5 + [500] * 4
    p = openai_params(completions_server, "caption.openai.merge_with_llm=false")
    summary = caption_curated(curated, tmp_path, p, progress=False)
    failures = read_jsonl(tmp_path / "caption_failures.jsonl")
    assert summary.failed >= 1 and summary.captioned + summary.failed == 4
    assert any("HTTP 400" in f["error"] and completions_server in f["error"] for f in failures)
    rows = read_jsonl(tmp_path / "dataset.jsonl")
    assert all(row["caption"] for row in rows)  # deterministic merge when the LLM merge is off
