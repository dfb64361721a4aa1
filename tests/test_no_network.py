"""The app makes no network call of its own: ingest, embeddings, drafting, every check (Presidio
included) and the service's start-up all run with every non-loopback connection refused and
recorded. (guardrails-ai, textstat-style word-list downloads and model hubs are the usual culprits.)
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

attempts: list[str] = []


def _is_loopback(host: Any) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    attempts.clear()
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(host):
            attempts.append(f"connect {address}")
            raise OSError("network disabled in this test")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            attempts.append(f"resolve {host}")
            raise socket.gaierror("network disabled in this test")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield attempts


def test_ingest_draft_check_and_serve_make_no_network_call(
    no_network: list[str], tmp_path: Path
) -> None:
    from chartdraft_guardrails.phi import Deidentifier
    from fastapi.testclient import TestClient

    from assistant.api.app import create_app
    from assistant.pipeline import DraftRequest, run_draft
    from assistant.runtime import Runtime
    from assistant.settings import Settings
    from retrieval.ingest import ingest_paths
    from retrieval.synth import write

    settings = Settings(data_dir=tmp_path / "data", backend="extractive", dev_auth=True)
    rt = Runtime(settings)
    ingest_paths(write(1, 99, tmp_path / "charts", attacks=True), store=rt.store,
                 index=rt.index, embedder=rt.embedder)
    pid = rt.store.patients()[0].id
    for doc_type in ("summary", "discharge-instructions", "prior-auth"):
        run_draft(rt, DraftRequest(pid, doc_type))
    Deidentifier().deidentify("Jane Synthetic, MRN 7781234, phone (555) 201-3344")  # Presidio NER
    rt.close()
    with TestClient(create_app(settings)) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/ui").status_code == 200
    assert no_network == [], no_network
