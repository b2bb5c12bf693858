"""No secret leaves by configuration: the attacks of issue 21 through the real CLI and the KFP params path,
against a real HTTP listener on 127.0.0.1 standing in for an attacker's server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from kangaroo.config import ConfigError, load_params, load_params_text
from kangaroo.config_policy import SecuritySettings
from kangaroo.curation.ledger import LedgerRow, write_ledger
from kangaroo.k8s.pytorchjob import build_pytorchjob
from kangaroo.video.synthetic import write_index_clip

ROOT = Path(__file__).resolve().parents[1]
KANGAROO = Path(sys.executable).with_name("kangaroo")
OBJECT_STORE_SECRET = "s3-root-secret-never-sent-0123456789"
CAPTION_KEY = "captioner-key-42"


class RecordingServer(BaseHTTPRequestHandler):
    """Records every request (headers and body, raw) and answers like a chat-completions server."""

    received: list[bytes] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append(str(self.headers).encode() + b"\n" + body)
        reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": "a shape moves"}}]})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply.encode())

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def listener():
    RecordingServer.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), RecordingServer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def curated(tmp_path_factory) -> Path:
    """Two kept clips: enough for the captioner to send requests if it were let."""
    videos = tmp_path_factory.mktemp("raw")
    rows = []
    for name in ("a.mp4", "b.mp4"):
        write_index_clip(videos / name, 30, fps=25.0)
        rows.append(LedgerRow(str(videos / name), name, "kept", duration=1.2, fps=25.0, width=160, height=96))
    out = tmp_path_factory.mktemp("curated")
    write_ledger(out / "ledger.jsonl", rows)
    return out


def allow(tree: dict, profile: str, **extra: list[str]) -> None:
    """Add EXTRA entries to PROFILE's `security:` allow-lists (after the defaults), as an operator would."""
    block = tree["profiles"][profile].setdefault("security", {})
    for name, entries in extra.items():
        block[name] = [*getattr(SecuritySettings(), name), *entries]


def params_file(tmp_path: Path, edit) -> Path:
    """The project's params.yaml edited by EDIT(tree): what an operator deploys."""
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    edit(tree)
    path = tmp_path / "deployed.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False))
    return path


def caption_cli(curated: Path, out: Path, params: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "root",
        "AWS_SECRET_ACCESS_KEY": OBJECT_STORE_SECRET,
        "OPENAI_API_KEY": CAPTION_KEY,
        "COLUMNS": "2000",  # the console log handler keeps each record on one line
    }
    sets = [arg for assignment in ("caption.backend=openai", *overrides) for arg in ("--set", assignment)]
    command = [
        str(KANGAROO),
        "caption",
        "--curated",
        str(curated),
        "--out",
        str(out),
        "--params",
        str(params),
    ]
    return subprocess.run([*command, *sets], capture_output=True, text=True, env=env, timeout=300)


def error_lines(result: subprocess.CompletedProcess) -> list[str]:
    """The logged errors, each as one line (the console handler wraps long records to the terminal)."""
    text = " ".join((result.stdout + result.stderr).split())
    return [" ".join(record.split()) for record in text.split("ERROR")[1:]]


def caption_with_listener_allowed(curated: Path, listener: str, tmp_path: Path, *overrides: str):
    """`kangaroo caption` against LISTENER, which the deployed params allow as a captioning server."""
    deployed = params_file(tmp_path, lambda t: allow(t, "tiny", caption_endpoints=[listener]))
    return caption_cli(curated, tmp_path / "out", deployed, f"caption.openai.base_url={listener}", *overrides)


def test_captioner_key_can_never_be_the_object_store_secret(curated, listener, tmp_path):
    """The exfiltration of issue 21: key variable = the object-store secret, endpoint = the attacker's. Even
    with the attacker's URL on the allow-list, the override is refused, names the key, and nothing is sent."""
    result = caption_with_listener_allowed(
        curated, listener, tmp_path, "caption.openai.api_key_env=AWS_SECRET_ACCESS_KEY"
    )
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = error_lines(result)
    assert "caption.openai.api_key_env" in line and "AWS_SECRET_ACCESS_KEY" in line
    assert "Traceback" not in result.stdout + result.stderr
    assert RecordingServer.received == []
    assert not (tmp_path / "out" / "dataset.jsonl").exists()


def test_captioner_endpoint_off_the_allow_list_is_refused(curated, listener, tmp_path):
    result = caption_cli(
        curated, tmp_path / "out", ROOT / "params.yaml", f"caption.openai.base_url={listener}"
    )
    assert result.returncode == 2, result.stderr[-2000:]
    (line,) = error_lines(result)
    assert "caption.openai.base_url" in line and listener in line and "security.caption_endpoints" in line
    assert RecordingServer.received == []


def test_allowed_captioner_gets_its_own_key_and_never_the_object_store_secret(curated, listener, tmp_path):
    """Positive control on the same listener: once the operator allows it, requests arrive with the
    captioner's key; the object-store secret is in no header and no body."""
    result = caption_with_listener_allowed(curated, listener, tmp_path, "caption.openai.merge_with_llm=false")
    assert result.returncode == 0, result.stderr[-2000:]
    assert len(RecordingServer.received) == 2 * 5  # five key frames per kept clip
    assert all(f"Bearer {CAPTION_KEY}".encode() in request for request in RecordingServer.received)
    assert not any(OBJECT_STORE_SECRET.encode() in request for request in RecordingServer.received)


def test_security_block_cannot_be_widened_by_a_run(listener):
    """A KFP run controls overrides and the params text: neither may add an endpoint or a key variable."""
    with pytest.raises(ConfigError, match=r"security is fixed by the deployed params.yaml"):
        load_params(ROOT / "params.yaml", "tiny", [f"security.caption_endpoints=[{listener}]"])
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    allow(tree, "paper", caption_endpoints=[listener])
    tree["profiles"]["paper"]["caption"]["openai"] = {"base_url": listener}
    with pytest.raises(ConfigError, match=r"security differs from the deployed .*params.yaml"):
        load_params_text(json.dumps(tree), "paper")
    # The deployed file's own text (what the pipeline passes by default) is accepted.
    assert load_params_text((ROOT / "params.yaml").read_text(), "paper").profile == "paper"


def test_object_store_variables_never_qualify_as_captioner_keys(tmp_path):
    deployed = params_file(tmp_path, lambda t: allow(t, "paper", caption_key_envs=["AWS_SECRET_ACCESS_KEY"]))
    with pytest.raises(ConfigError, match=r"security.caption_key_envs: .*AWS_SECRET_ACCESS_KEY"):
        load_params(deployed, "paper")
    # a variable the MinIO Secret is mapped to counts too, whatever its name
    for variable in ("MINIO_ROOT_PASSWORD", "AWS_SESSION_TOKEN"):
        with pytest.raises(ConfigError, match=f"caption.openai.api_key_env.*{variable}"):
            load_params(ROOT / "params.yaml", "paper", [f"caption.openai.api_key_env={variable}"])
    with pytest.raises(
        ConfigError, match=r"caption.openai.api_key_env: 'HOME' is not in security.caption_key_envs"
    ):
        load_params(ROOT / "params.yaml", "paper", ["caption.openai.api_key_env=HOME"])


def test_a_run_cannot_choose_the_image_or_secret_of_multi_node_jobs(tmp_path):
    for assignment in (
        "cluster.image=attacker.example/kangaroo:1",
        "cluster.minio_secret=another-secret",
        "cluster.minio_secret_env.secretkey=OPENAI_API_KEY",
        "cluster.service_account=default",
    ):
        key = assignment.split("=")[0].rsplit(".secretkey", 1)[0]
        with pytest.raises(ConfigError, match=rf"{key} is fixed by the deployed params.yaml"):
            load_params(ROOT / "params.yaml", "paper", [assignment])
    tree = yaml.safe_load((ROOT / "params.yaml").read_text())
    tree["profiles"]["paper"]["cluster"]["image"] = "attacker.example/kangaroo:1"
    with pytest.raises(ConfigError, match="cluster.image differs from the deployed"):
        load_params_text(json.dumps(tree), "paper")
    # Settings that name nothing sensitive stay per-run (a test's PVC mount, poll interval).
    params = load_params(ROOT / "params.yaml", "paper", [f"cluster.checkpoint_mount={tmp_path}"])
    job = build_pytorchjob("kg-stage-x", "stage", ["--out", "o"], 2, 1, params.cluster)
    images = {
        spec["template"]["spec"]["containers"][0]["image"]
        for spec in job["spec"]["pytorchReplicaSpecs"].values()
    }
    assert images == {load_params(ROOT / "params.yaml", "paper").cluster.image}


def test_storage_endpoint_is_held_to_the_profile_allow_list():
    with pytest.raises(ConfigError, match=r"storage.endpoint: 'attacker.example:9000' is not in"):
        load_params(ROOT / "params.yaml", "paper", ["storage.endpoint=attacker.example:9000"])
    with pytest.raises(ConfigError, match=r"storage.endpoint: '127.0.0.1:9000'"):
        load_params(ROOT / "params.yaml", "paper", ["storage.endpoint=127.0.0.1:9000"])
    tiny = load_params(ROOT / "params.yaml", "tiny", ["storage.endpoint=127.0.0.1:43210"])
    assert tiny.storage.endpoint == "127.0.0.1:43210"  # a dev box's loopback S3 server (any port)


def test_a_steps_config_is_held_to_the_deployed_allow_lists(listener):
    """A run may hand a step its resolved config (kangaroo.step_config) instead of a whole params file; it
    holds no `security:` block, so the deployed one applies."""
    from kangaroo.step_config import resolve_step, step_json

    document = resolve_step(load_params(ROOT / "params.yaml", "paper"), "caption")
    assert (
        load_params_text(step_json(document)).caption.openai.base_url
        == document["settings"]["caption"]["openai"]["base_url"]
    )
    document["settings"]["caption"]["openai"]["base_url"] = listener
    with pytest.raises(
        ConfigError, match=r"caption.openai.base_url: .* is not in security.caption_endpoints"
    ):
        load_params_text(step_json(document))
    document = resolve_step(load_params(ROOT / "params.yaml", "paper"), "curate")
    document["settings"]["storage"]["endpoint"] = "attacker.example:9000"
    with pytest.raises(ConfigError, match=r"storage.endpoint: 'attacker.example:9000' is not in"):
        load_params_text(step_json(document))
