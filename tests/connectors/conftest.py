"""Fixtures for the connector conformance suite: one ``store_factory`` per registered connector, plus real servers.

Every connector registered in the ``smar_sdk.connectors`` entry-point group is tested, a third-party one too:
it gets a fresh path under the test's tmp folder as ``uri`` (a folder for Qdrant, a ``.db`` file for Milvus;
add an entry to ``LOCAL_URIS`` if yours needs another form). Cases in ``SERVER_CASES`` run the same suite against
a real server; they are marked ``integration`` and ``slow`` (run them with ``pytest -m integration -o addopts=""``).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smar_sdk.store import VectorStore, available_connectors, open_store

REPO = Path(__file__).resolve().parents[2]
LOCAL_URIS: dict[str, Callable[[Path], str]] = {
    "qdrant": lambda tmp: str(tmp / "qdrant"),
    "milvus": lambda tmp: str(tmp / "milvus.db"),
}
# extra embedded cases of a registered connector: case id -> (connector name, options)
OPTION_CASES: dict[str, tuple[str, dict[str, Any]]] = {"qdrant-edge": ("qdrant", {"engine": "edge"})}
# case id -> (connector name, session fixture that yields the server's URI)
SERVER_CASES: dict[str, tuple[str, str]] = {"milvus-server": ("milvus", "milvus_server_uri")}
SERVER_START_SECONDS = 240


def connector_cases() -> list[Any]:
    """Every registered connector (embedded/local mode), its option variants, then the real-server cases."""
    cases = [pytest.param(name, id=name) for name in sorted(available_connectors())]
    cases += [pytest.param(case, id=case) for case, (name, _) in OPTION_CASES.items() if name in available_connectors()]
    cases += [pytest.param(case, id=case, marks=[pytest.mark.integration, pytest.mark.slow]) for case in SERVER_CASES]
    return cases


class StoreFactory:
    """Opens stores of one connector at one place; every call with the same collection reaches the same data.

    On a shared server each test gets its own collection-name prefix, so tests never see each other's data.
    """

    def __init__(self, name: str, uri: str | None, prefix: str = "", options: dict[str, Any] | None = None) -> None:
        self.name, self.uri, self.prefix = name, uri, prefix
        self.options = options or {}
        self.opened: list[VectorStore] = []

    def __call__(self, collection: str = "products", **options: Any) -> VectorStore:
        store = open_store(self.name, uri=self.uri, collection=self.prefix + collection, **{**self.options, **options})
        self.opened.append(store)
        return store

    def close_all(self) -> None:
        for store in self.opened:
            with contextlib.suppress(Exception):  # a store closed twice must not hide the test's own failure
                store.close()


@pytest.fixture(params=connector_cases())
def store_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    case: str = request.param
    if case in SERVER_CASES:
        name, uri_fixture = SERVER_CASES[case]
        factory = StoreFactory(name, request.getfixturevalue(uri_fixture), prefix=f"t{uuid.uuid4().hex[:12]}_")
    else:
        name, options = OPTION_CASES.get(case, (case, {}))
        factory = StoreFactory(name, LOCAL_URIS.get(name, lambda tmp: str(tmp / name))(tmp_path), options=options)
    try:
        available_connectors()[name].load()
    except ImportError as exc:
        pytest.skip(f"connector {name!r} is registered but cannot be imported: {exc}")
    yield factory
    factory.close_all()


# ----- a real Milvus server (PyPI package `milvus`, a standalone Milvus 2.3 in its own virtualenv) -----
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


def _answers(uri: str) -> bool:
    from pymilvus import MilvusClient

    try:
        client = MilvusClient(uri=uri, timeout=5)
        try:
            client.list_collections()
        finally:
            client.close()
        return True
    except Exception:  # noqa: BLE001 - not up yet
        return False


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``milvus-server`` on loopback with its data in a tmp folder, yield its URI, SIGKILL it at the end."""
    installed = subprocess.run(["bash", str(REPO / ".ci" / "milvus-server.sh")], capture_output=True, text=True,
                               timeout=1200)
    if installed.returncode != 0:
        pytest.fail(f".ci/milvus-server.sh failed ({installed.returncode}):\n{installed.stderr[-3000:]}")
    executable = installed.stdout.strip().splitlines()[-1]
    root = tmp_path_factory.mktemp("milvus-server")
    data = root / "data"
    etcd_client, etcd_peer, proxy = free_ports(3)
    # the embedded etcd's peer port (2380) is no command-line option: give it one, so that two servers can coexist
    etcd_config = root / "etcd.yaml"
    etcd_config.write_text(
        f"name: smar-test\ndata-dir: {data / 'data' / 'etcd.data'}\n"
        f"listen-client-urls: http://127.0.0.1:{etcd_client}\nadvertise-client-urls: http://127.0.0.1:{etcd_client}\n"
        f"listen-peer-urls: http://127.0.0.1:{etcd_peer}\ninitial-advertise-peer-urls: http://127.0.0.1:{etcd_peer}\n"
        f"initial-cluster: smar-test=http://127.0.0.1:{etcd_peer}\n")
    log_path = root / "milvus-server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [executable, "--data", str(data), "--proxy-port", str(proxy), "--etcd-port", str(etcd_client)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            env={**os.environ, "ETCD_CONFIG_PATH": str(etcd_config)})
    try:
        uri = _wait_until_up(server, data, log_path)
        yield uri
    finally:
        # milvus-server ignores SIGTERM; kill its whole process group, which holds the `milvus` binary too
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(timeout=30)


def _wait_until_up(server: subprocess.Popen, data: Path, log_path: Path) -> str:
    stderr_log = data / "logs" / "milvus-stderr.log"
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        crashed = stderr_log.exists() and "panic:" in stderr_log.read_text(errors="replace")
        if server.poll() is not None or crashed:
            details = stderr_log.read_text(errors="replace")[-3000:] if stderr_log.exists() else ""
            raise RuntimeError(f"milvus-server stopped while starting; see {log_path} and {stderr_log}:\n"
                               f"{log_path.read_text(errors='replace')[-2000:]}\n{details}")
        port = proxy_port(data / "configs" / "milvus.yaml")
        if port and _answers(f"http://127.0.0.1:{port}"):
            return f"http://127.0.0.1:{port}"
        time.sleep(1)
    raise RuntimeError(f"milvus-server did not answer within {SERVER_START_SECONDS}s; see {log_path} and "
                       f"{stderr_log}")
