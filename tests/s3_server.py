"""A real S3-compatible server on 127.0.0.1 for tests: moto's server (MinIO cannot be installed here).

Fixtures (import them into conftest.py):

- `s3_server` (session): moto's threaded server on a free loopback port, any credentials accepted.
- `s3_bucket`: a fresh, empty bucket on `s3_server` for one test.
- `s3_auth_server` (session): a `moto_server` subprocess that enforces IAM credentials; its
  `access_key`/`secret_key` are a real IAM user allowed `s3:*`, anything else is refused.
- `flaky_proxy`: a TCP proxy in front of `s3_server` that can be cut (connections reset, new ones refused)
  after a byte budget, then restored: "the server went away mid-transfer" without timing races.

`S3Server.env()` gives the environment (AWS_* keys, endpoint) a `dvc` or `kangaroo` subprocess needs.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

TEST_ACCESS_KEY = "kangaroo-test"
TEST_SECRET_KEY = "kangaroo-test-secret"
_bucket_counter = itertools.count()


@dataclass(frozen=True)
class S3Server:
    """Where a test S3 server listens and which credentials it accepts."""

    host: str
    port: int
    access_key: str = TEST_ACCESS_KEY
    secret_key: str = TEST_SECRET_KEY

    @property
    def endpoint(self) -> str:
        """`host:port`, the form the minio SDK and params.yaml `storage.endpoint` take."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """`http://host:port`, the form DVC's `endpointurl` and boto take."""
        return f"http://{self.endpoint}"

    def env(self) -> dict[str, str]:
        """os.environ plus this server's credentials, for subprocesses (dvc, kangaroo)."""
        return {
            **os.environ,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def boto_client(self):
        """A boto3 S3 client for assertions that must not go through the code under test."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(host: str, port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection((host, port), timeout=0.2).close()
            return
        except OSError as err:
            if time.monotonic() > deadline:
                raise RuntimeError(f"S3 test server on {host}:{port} did not start in {timeout_s}s") from err
            time.sleep(0.05)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """moto's server in a thread of this process, on a free loopback port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wait_for_port("127.0.0.1", port)
    yield S3Server("127.0.0.1", port)
    server.stop()


@pytest.fixture
def s3_bucket(s3_server: S3Server) -> str:
    """A new empty bucket (names are unique per test so tests never see each other's objects)."""
    name = f"test-bucket-{os.getpid()}-{next(_bucket_counter)}"
    s3_server.boto_client().create_bucket(Bucket=name)
    return name


@pytest.fixture(scope="session")
def s3_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A `moto_server` subprocess that checks credentials against its IAM users.

    moto enforces auth after INITIAL_NO_AUTH_ACTION_COUNT requests: the first three create the IAM user,
    its s3:* policy and its access key; every later request must be signed with that key.
    """
    import boto3

    port = free_port()
    log = tmp_path_factory.mktemp("moto-auth") / "moto_server.log"
    env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    moto_server = str(Path(sys.executable).with_name("moto_server"))
    with log.open("wb") as log_file:
        process = subprocess.Popen(
            [moto_server, "-H", "127.0.0.1", "-p", str(port)], env=env, stdout=log_file, stderr=log_file
        )
    try:
        wait_for_port("127.0.0.1", port)
        iam = boto3.client(
            "iam",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="kangaroo")
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
        }
        iam.put_user_policy(UserName="kangaroo", PolicyName="s3-all", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="kangaroo")["AccessKey"]
        yield S3Server("127.0.0.1", port, key["AccessKeyId"], key["SecretAccessKey"])
    finally:
        process.terminate()
        process.wait(timeout=10)


@dataclass
class FlakyProxy:
    """TCP proxy 127.0.0.1:port -> target that can die mid-transfer, deterministically (no timers).

    `cut_after(n)`: once n more bytes (both directions) have passed, every open connection is reset.
    Then, with `refuse=k`, the next k connections are accepted and reset at once and the proxy comes back
    by itself; with `refuse=None` the listener is closed (connection refused) until `restore()`.
    """

    target: S3Server
    port: int = field(default_factory=free_port)
    forwarded_bytes: int = 0
    refused_connections: int = 0
    _budget: float = float("inf")
    _refuse: int | None = None
    _down: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _conns: list[socket.socket] = field(default_factory=list)
    _listener: socket.socket | None = None

    @property
    def server(self) -> S3Server:
        """The proxy seen as an S3 server (same credentials as the target)."""
        return S3Server("127.0.0.1", self.port, self.target.access_key, self.target.secret_key)

    def start(self) -> None:
        self._open_listener()

    def _open_listener(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept_loop, args=(listener,), daemon=True).start()

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._down:
                self.refused_connections += 1
                _reset(client)
                if self._refuse is not None and self.refused_connections >= self._refuse:
                    self.restore()
                continue
            try:
                upstream = socket.create_connection((self.target.host, self.target.port))
            except OSError:
                _reset(client)
                continue
            with self._lock:
                self._conns += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                with self._lock:
                    self.forwarded_bytes += len(data)
                    self._budget -= len(data)
                    over = self._budget <= 0
                if over:
                    self.go_down(self._refuse)
                    return
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def cut_after(self, nbytes: int, refuse: int | None = None) -> None:
        """Die once `nbytes` more bytes have passed; then refuse `refuse` connections (None: stay down)."""
        with self._lock:
            self._budget = nbytes
            self._refuse = refuse
            self.refused_connections = 0

    def go_down(self, refuse: int | None = None) -> None:
        """Reset all open connections; refuse new ones (`refuse` of them, or all until restore())."""
        self._down = True
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            _reset(conn)
        if refuse is None and self._listener is not None:
            self._listener.close()
            self._listener = None

    def restore(self) -> None:
        """Come back up on the same port with no byte limit."""
        with self._lock:
            self._budget = float("inf")
            self._refuse = None
        self._down = False
        if self._listener is None:
            self._open_listener()

    def stop(self) -> None:
        self.go_down()


def _reset(conn: socket.socket) -> None:
    """Close with SO_LINGER 0: the peer sees a TCP reset, like a server process that died."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_RDWR)  # wakes a pump thread blocked in recv(), else close() waits for it
    with contextlib.suppress(OSError):
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()


@pytest.fixture
def flaky_proxy(s3_server: S3Server) -> Iterator[FlakyProxy]:
    """A proxy in front of `s3_server`; point the code under test at `flaky_proxy.server`."""
    proxy = FlakyProxy(s3_server)
    proxy.start()
    yield proxy
    proxy.stop()
