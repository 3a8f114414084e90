"""A real standalone Milvus 2.3 server (PyPI package ``milvus``, installed by ``.ci/milvus-server.sh`` in a
virtualenv of its own) on loopback, with its data in a folder: start it, SIGKILL it, restart it on the same
ports and data. Used by the integration tests and by the scale benchmark."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START_SECONDS = 240
# `milvus-server` test-binds its ports without SO_REUSEADDR, so right after a SIGKILL (sockets in TIME_WAIT) it would
# silently move the proxy and etcd to the next free ports. Run its entry point with SO_REUSEADDR on every bind, as the
# Go server itself does, so that a restart gets the same ports.
REUSE_PORTS_LAUNCHER = """
import socket, sys
class ReusableSocket(socket.socket):
    def bind(self, address):
        self.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        return super().bind(address)
socket.socket = ReusableSocket
from milvus import main
sys.argv[0] = "milvus-server"
sys.exit(main())
"""


def install() -> str:
    """Install the server (once; reused afterwards) and return the path of its ``milvus-server`` executable."""
    installed = subprocess.run(["bash", str(REPO / ".ci" / "milvus-server.sh")], capture_output=True, text=True,
                               timeout=1200)
    if installed.returncode != 0:
        raise RuntimeError(f".ci/milvus-server.sh failed ({installed.returncode}):\n{installed.stderr[-3000:]}")
    return installed.stdout.strip().splitlines()[-1]


def free_ports(count: int) -> list[int]:
    """Ports free on loopback right now (held open together, so they differ)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def proxy_port(config: Path) -> int | None:
    """The port the server's proxy (its gRPC endpoint) was given in the generated milvus.yaml."""
    if not config.exists():
        return None
    in_proxy = False
    for line in config.read_text().splitlines():
        if line and not line[0].isspace():
            in_proxy = line.startswith("proxy:")
        elif in_proxy and (match := re.match(r"^  port: (\d+)", line)):
            return int(match.group(1))
    return None


def answers(uri: str) -> bool:
    """Whether a Milvus server answers at ``uri`` right now."""
    from pymilvus import MilvusClient

    try:
        client = MilvusClient(uri=uri, timeout=5)
        try:
            client.list_collections()
        finally:
            client.close()
        return True
    except Exception:  # noqa: BLE001 - not up (yet)
        return False


def running_server(root: Path) -> Iterator[MilvusServer]:
    """A pytest fixture body: a started server under ``root`` (a failed install or start fails the test), killed
    afterwards."""
    import pytest

    try:
        server = MilvusServer(root)
        server.start()
    except RuntimeError as exc:
        pytest.fail(str(exc))
    try:
        yield server
    finally:
        server.kill()


class MilvusServer:
    """``milvus-server`` with its data under ``root``; :meth:`start` again after :meth:`kill` reuses ports and data."""

    def __init__(self, root: Path, executable: str | None = None) -> None:
        self.root = Path(root)
        self.executable = executable or install()
        self.data = self.root / "data"
        self.log_path = self.root / "milvus-server.log"
        self.etcd_client, etcd_peer, self.proxy = free_ports(3)
        self.uri = f"http://127.0.0.1:{self.proxy}"
        self.process: subprocess.Popen | None = None
        # the embedded etcd's peer port (2380) is no command-line option: give it one, so two servers can coexist
        self.etcd_config = self.root / "etcd.yaml"
        self.root.mkdir(parents=True, exist_ok=True)
        self.etcd_config.write_text(
            f"name: smar-test\ndata-dir: {self.data / 'data' / 'etcd.data'}\n"
            f"listen-client-urls: http://127.0.0.1:{self.etcd_client}\n"
            f"advertise-client-urls: http://127.0.0.1:{self.etcd_client}\n"
            f"listen-peer-urls: http://127.0.0.1:{etcd_peer}\ninitial-advertise-peer-urls: http://127.0.0.1:{etcd_peer}\n"
            f"initial-cluster: smar-test=http://127.0.0.1:{etcd_peer}\n")

    def start(self) -> str:
        """Start the server and wait until it answers; return its URI."""
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [str(Path(self.executable).with_name("python")), "-c", REUSE_PORTS_LAUNCHER, "--data", str(self.data),
                 "--proxy-port", str(self.proxy), "--etcd-port", str(self.etcd_client)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                env={**os.environ, "ETCD_CONFIG_PATH": str(self.etcd_config)})
        self._wait_until_up()
        return self.uri

    def kill(self) -> None:
        """SIGKILL the server: ``milvus-server`` ignores SIGTERM, and its process group holds the ``milvus`` binary."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        self.process = None

    def _wait_until_up(self) -> None:
        assert self.process is not None
        stderr_log = self.data / "logs" / "milvus-stderr.log"
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            crashed = stderr_log.exists() and "panic:" in stderr_log.read_text(errors="replace")
            if self.process.poll() is not None or crashed:
                details = stderr_log.read_text(errors="replace")[-3000:] if stderr_log.exists() else ""
                self.kill()
                raise RuntimeError(f"milvus-server stopped while starting; see {self.log_path} and {stderr_log}:\n"
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}\n{details}")
            if proxy_port(self.data / "configs" / "milvus.yaml") == self.proxy and answers(self.uri):
                return
            time.sleep(1)
        self.kill()
        raise RuntimeError(f"milvus-server did not answer within {START_SECONDS}s; see {self.log_path} and "
                           f"{stderr_log}")

    def __enter__(self) -> MilvusServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
