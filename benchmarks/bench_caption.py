"""Captioning throughput of the `openai` backend vs `caption.openai.max_concurrency`, against a local stub
chat-completions server that answers each request after 200 ms (a vLLM-like server with headroom).

Each video costs 5 frame requests, then a merge request. Same videos, same server, one run: prints videos/s
at each concurrency and its ratio to max_concurrency x the serial rate (goal: >= 0.8 at 8)."""

import json
import logging
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

log = logging.getLogger(__name__)
LATENCY_S = 0.2
NUM_VIDEOS = 24
CONCURRENCY = (1, 2, 4, 8)


class StubCompletions(BaseHTTPRequestHandler):
    """/v1/chat/completions that sleeps LATENCY_S, then answers with a short caption."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a real server

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(LATENCY_S)
        body = json.dumps(
            {
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": "A red circle moves left."}}
                ]
            }
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


def write_curated(folder: Path) -> Path:
    from kangaroo.curation.ledger import LedgerRow, write_ledger
    from kangaroo.video.synthetic import write_index_clip

    rows = []
    for i in range(NUM_VIDEOS):
        video = folder / "videos" / f"clip_{i:03d}.mp4"
        write_index_clip(video, 50, fps=25.0)
        rows.append(LedgerRow(str(video), video.name, "kept", duration=2.0, fps=25.0, width=160, height=96))
    write_ledger(folder / "curated" / "ledger.jsonl", rows)
    return folder / "curated"


def main() -> None:
    from kangaroo.config import load_params
    from kangaroo.curation.captioning import caption_curated

    logging.getLogger("httpx").setLevel(logging.WARNING)
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubCompletions)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    rates = {}
    try:
        with tempfile.TemporaryDirectory() as scratch:
            curated = write_curated(Path(scratch))
            for concurrency in CONCURRENCY:
                params = load_params(
                    profile="tiny",
                    overrides=[
                        "caption.backend=openai",
                        f"caption.openai.base_url={base_url}",
                        f"caption.openai.max_concurrency={concurrency}",
                        "caption.alignment.enabled=false",
                    ],
                )
                started = time.perf_counter()
                out = Path(scratch) / f"c{concurrency}"
                summary = caption_curated(curated, out, params, progress=False)
                seconds = time.perf_counter() - started
                assert (summary.captioned, summary.failed) == (NUM_VIDEOS, 0), summary
                rates[concurrency] = NUM_VIDEOS / seconds
                log.info(
                    "max_concurrency %d: %d videos in %.2f s = %.2f videos/s (%.1fx serial, %.2f of ideal)",
                    concurrency, NUM_VIDEOS, seconds, rates[concurrency], rates[concurrency] / rates[1],
                    rates[concurrency] / (concurrency * rates[1]),
                )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
    top = max(CONCURRENCY)
    ratio = rates[top] / (top * rates[1])
    log.info(
        "captioning throughput at max_concurrency %d: %.2f x (%d x serial rate) (goal >= 0.8): %s",
        top, ratio, top, "met" if ratio >= 0.8 else "NOT met",
    )  # fmt: skip
