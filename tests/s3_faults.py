"""An HTTP proxy on 127.0.0.1 in front of the test S3 server that answers 503 to object reads on demand.

`failing_reads`: bucket listings pass through to the real server; GET/HEAD of an object key get
`503 ServiceUnavailable` (the S3 error XML MinIO sends while it restarts or is overloaded) while
`proxy.fail_reads` is true. Point the code under test at `proxy.server`.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from s3_server import S3Server

ERROR_XML = (
    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)
_HOP_HEADERS = {"connection", "transfer-encoding", "keep-alive"}


class _Handler(BaseHTTPRequestHandler):
    server: FailingReadsProxy
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def _handle(self) -> None:
        _, _, key = self.path.split("?", 1)[0].lstrip("/").partition("/")
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if key and self.command in ("GET", "HEAD") and self.server.fail_reads:
            self.server.refused_reads += 1
            self.send_response(503)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(ERROR_XML)))
            self.end_headers()
            if self.command == "GET":
                self.wfile.write(ERROR_XML)
            return
        upstream = http.client.HTTPConnection(self.server.target.host, self.server.target.port, timeout=30)
        upstream.request(self.command, self.path, body=body or None, headers=dict(self.headers))
        response = upstream.getresponse()
        data = response.read()
        self.send_response(response.status)
        # HEAD answers carry the object's length with no body: pass the server's header through
        keep_length = self.command == "HEAD"
        for name, value in response.getheaders():
            if name.lower() not in _HOP_HEADERS and (keep_length or name.lower() != "content-length"):
                self.send_header(name, value)
        if not keep_length:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        upstream.close()

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle


class FailingReadsProxy(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: S3Server) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.target = target
        self.fail_reads = False
        self.refused_reads = 0

    @property
    def server(self) -> S3Server:
        return S3Server("127.0.0.1", self.server_address[1], self.target.access_key, self.target.secret_key)


@pytest.fixture
def failing_reads(s3_server: S3Server) -> Iterator[FailingReadsProxy]:
    proxy = FailingReadsProxy(s3_server)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield proxy
    proxy.shutdown()
    proxy.server_close()
