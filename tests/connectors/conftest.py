"""Fixtures for the connector conformance suite: one ``store_factory`` per registered connector, plus real servers.

Every connector registered in the ``smar_sdk.connectors`` entry-point group is tested, a third-party one too:
it gets a fresh path under the test's tmp folder as ``uri`` (a folder for Qdrant, a ``.db`` file for Milvus;
add an entry to ``LOCAL_URIS`` if yours needs another form). Cases in ``SERVER_CASES`` run the same suite against
a real server; they are marked ``integration`` and ``slow`` (run them with ``pytest -m integration -o addopts=""``).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from smar_sdk.store import VectorStore, available_connectors, open_store
from tests.milvus_server import running_server

LOCAL_URIS: dict[str, Callable[[Path], str]] = {
    "qdrant": lambda tmp: str(tmp / "qdrant"),
    "milvus": lambda tmp: str(tmp / "milvus.db"),
}
# extra embedded cases of a registered connector: case id -> (connector name, options); "qdrant" itself runs its
# default engine, Qdrant Edge
OPTION_CASES: dict[str, tuple[str, dict[str, Any]]] = {"qdrant-local": ("qdrant", {"engine": "local"})}
# case id -> (connector name, session fixture that yields the server's URI)
SERVER_CASES: dict[str, tuple[str, str]] = {"milvus-server": ("milvus", "milvus_server_uri")}


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
@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Start ``milvus-server`` on loopback with its data in a tmp folder, yield its URI, SIGKILL it at the end."""
    for server in running_server(tmp_path_factory.mktemp("milvus-server")):
        yield server.uri
