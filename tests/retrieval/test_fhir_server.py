"""Loading from a FHIR server over loopback HTTP.

Two real servers: a small FHIR server written here on ``http.server`` that pages its searchsets,
supports (or refuses) ``Patient/$everything`` and checks a bearer token; and fhirsnake (PyPI), run
from its own venv (``.cache/fhirsnake-venv``, made by ``make install`` because it pins an old
FastAPI). fhirsnake does no paging, no search parameters and no ``$everything``, so it exercises
the per-type fallback and the other-patient filter.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from retrieval.errors import BadInput, StoreError
from retrieval.fhir_server import load_server

ROOT = Path(__file__).resolve().parents[2]
FHIRSNAKE_VENV = ROOT / ".cache" / "fhirsnake-venv"
TOKEN = "synthetic-test-token"


def _chart(pid: str, n_conditions: int) -> list[dict[str, Any]]:
    res: list[dict[str, Any]] = [{"resourceType": "Patient", "id": pid, "gender": "female",
                                  "name": [{"family": f"Synthetic{pid}"}]}]
    for i in range(n_conditions):
        res.append({"resourceType": "Condition", "id": f"{pid}-c{i}",
                    "subject": {"reference": f"Patient/{pid}"}, "code": {"text": f"Finding {i}"}})
    res.append({"resourceType": "MedicationRequest", "id": f"{pid}-m", "status": "active",
                "intent": "order", "subject": {"reference": f"Patient/{pid}"},
                "medicationReference": {"reference": "Medication/med1"},
                "requester": {"reference": "Practitioner/dr1"}})
    return res


DIRECTORY: list[dict[str, Any]] = [
    {"resourceType": "Medication", "id": "med1", "code": {"text": "Lisinopril 10 MG Oral Tablet"}},
    {"resourceType": "Practitioner", "id": "dr1", "name": [{"family": "Example"}]},
]


class _State:
    def __init__(self, *, everything: bool, page_size: int = 3) -> None:
        self.resources = _chart("p1", 7) + _chart("p2", 2) + DIRECTORY
        self.everything = everything
        self.page_size = page_size
        self.requests: list[str] = []


def _handler(state: _State) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # keep test output quiet
            pass

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _outcome(self, code: int, text: str) -> None:
            self._send(code, {"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "processing", "diagnostics": text}]})

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            state.requests.append(self.path)
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return self._outcome(401, "missing or invalid bearer token")
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            parts = [p for p in url.path.split("/") if p]
            if parts == ["Observation"]:
                return self._outcome(500, "Observation search is broken today")
            if len(parts) == 3 and parts[2] == "$everything":
                if not state.everything:
                    return self._outcome(404, "Unknown operation $everything")
                pid = parts[1]
                hits = [r for r in state.resources if r["id"] == pid
                        or r.get("subject", {}).get("reference") == f"Patient/{pid}"]
                return self._page(hits, q, url.path)
            if len(parts) == 2:
                hit = next((r for r in state.resources
                            if r["resourceType"] == parts[0] and r["id"] == parts[1]), None)
                return self._send(200, hit) if hit else self._outcome(404, "not found")
            if len(parts) == 1:
                hits = [r for r in state.resources if r["resourceType"] == parts[0]]
                if "patient" in q:
                    hits = [r for r in hits
                            if r.get("subject", {}).get("reference") == f"Patient/{q['patient']}"]
                return self._page(hits, q, url.path)
            return self._outcome(404, "not found")

        def _page(self, hits: list[dict[str, Any]], q: dict[str, str], path: str) -> None:
            offset = int(q.get("_offset", 0))
            chunk = hits[offset : offset + state.page_size]
            links = [{"relation": "self", "url": path}]
            if offset + state.page_size < len(hits):
                rest = "&".join(f"{k}={v}" for k, v in q.items() if k != "_offset")
                links.append({"relation": "next",
                              "url": f"{path}?{rest}&_offset={offset + state.page_size}"})
            self._send(200, {"resourceType": "Bundle", "type": "searchset", "total": len(hits),
                             "link": links, "entry": [
                                 {"fullUrl": f"http://127.0.0.1/fhir/{r['resourceType']}/{r['id']}",
                                  "resource": r, "search": {"mode": "match"}} for r in chunk]})

    return Handler


@pytest.fixture(params=[True, False], ids=["everything", "per-type"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, _State]]:
    state = _State(everything=request.param)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", state
    httpd.shutdown()
    httpd.server_close()


def test_loads_all_patients_following_next_links(server: tuple[str, _State]) -> None:
    url, state = server
    result = load_server(url, token=TOKEN)
    assert result.patient_ids() == {"p1", "p2"}
    conds = {r.id for r in result.resources if r.resource_type == "Condition"}
    assert conds == {f"p1-c{i}" for i in range(7)} | {"p2-c0", "p2-c1"}
    # Directory entries the charts point at are fetched by id.
    assert {"Medication/med1", "Practitioner/dr1"} <= {r.ref for r in result.resources}
    assert any("_offset=3" in p for p in state.requests), "paging was not followed"
    if state.everything:
        assert result.issues == []
        assert not any(p.startswith("/Condition") for p in state.requests)
    else:
        # The failing Observation search is reported per patient; everything else loaded.
        assert {i.location for i in result.issues} == {"HTTP 500"}
        assert "Observation search is broken today" in str(result.issues[0])
        everything_calls = [p for p in state.requests if "$everything" in p]
        assert len(everything_calls) == 1, "a refused $everything must not be retried per patient"


def test_patient_ids_limit_the_load(server: tuple[str, _State]) -> None:
    url, _ = server
    result = load_server(url, token=TOKEN, patient_ids=["p2"], resource_types=["Condition"])
    assert result.patient_ids() == {"p2"}


def test_ids_that_would_change_the_url_path_are_never_requested(
        server: tuple[str, _State]) -> None:
    url, state = server
    with pytest.raises(BadInput, match="not a FHIR id") as exc:
        load_server(url, token=TOKEN, patient_ids=["p1/../../Admin"])
    assert exc.value.where == "patient ids" and state.requests == []
    # A chart pointing at a directory entry with such an id: reported, not fetched.
    state.resources[0:0] = [{"resourceType": "MedicationRequest", "id": "p1-evil",
                             "status": "active", "intent": "order",
                             "subject": {"reference": "Patient/p1"},
                             "medicationReference": {"reference": "Medication/x?_format=xml"}},
                            {"resourceType": "MedicationRequest", "id": "p1-evil2",
                             "status": "active", "intent": "order",
                             "subject": {"reference": "Patient/p1"},
                             "medicationReference": {"reference": "Medication/../Admin"}}]
    result = load_server(url, token=TOKEN, patient_ids=["p1"])
    assert not any("_format" in p or "Admin" in p for p in state.requests)
    assert sum("not a FHIR id" in i.message for i in result.issues) == 2
    assert "Medication/med1" in {r.ref for r in result.resources}  # the good one still loads


def test_bad_token_is_a_store_error(server: tuple[str, _State]) -> None:
    url, _ = server
    with pytest.raises(StoreError, match="refused the request \\(HTTP 401\\).*bearer token"):
        load_server(url, token="wrong")


def test_unreachable_server_is_a_store_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    with pytest.raises(StoreError, match="cannot reach the FHIR server"):
        load_server(f"http://127.0.0.1:{port}/", client=httpx.Client(timeout=2))


# --- fhirsnake --------------------------------------------------------------------------------


@pytest.fixture
def fhirsnake(tmp_path: Path) -> Iterator[str]:
    python = FHIRSNAKE_VENV / "bin" / "python"
    pkg = next(iter(FHIRSNAKE_VENV.glob("lib/python*/site-packages/fhirsnake")), None)
    if not python.exists() or pkg is None:
        pytest.skip("fhirsnake venv missing: run `make install` (.cache/fhirsnake-venv)")
    # fhirsnake serves <cwd>/resources/<Type>/<id>.json and imports its helper as a top-level
    # module, so it runs from a folder of ours with its package dir as the app dir.
    for r in _chart("p1", 2) + _chart("p2", 1) + DIRECTORY:
        folder = tmp_path / "resources" / r["resourceType"]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{r['id']}.json").write_text(json.dumps(r))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "fhirsnake.log").open("w")
    proc = subprocess.Popen(
        [str(python), "-m", "uvicorn", "--app-dir", str(pkg), "main:app", "--host", "127.0.0.1",
         "--port", str(port)], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(100):
            try:
                if httpx.get(url, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            pytest.fail(f"fhirsnake did not start: {(tmp_path / 'fhirsnake.log').read_text()}")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        shutil.rmtree(tmp_path / "resources", ignore_errors=True)


def test_fhirsnake_per_type_fallback_keeps_patients_apart(fhirsnake: str) -> None:
    result = load_server(fhirsnake, resource_types=["Condition", "MedicationRequest"])
    assert result.patient_ids() == {"p1", "p2"}
    by_patient: dict[str, set[str]] = {}
    for r in result.resources:
        if r.patient_id:
            by_patient.setdefault(r.patient_id, set()).add(r.ref)
    # fhirsnake ignores ?patient=, so each search returns both charts; nothing may cross over.
    assert by_patient["p1"] == {"Patient/p1", "Condition/p1-c0", "Condition/p1-c1",
                                "MedicationRequest/p1-m"}
    assert by_patient["p2"] == {"Patient/p2", "Condition/p2-c0", "MedicationRequest/p2-m"}
    assert any("other patients" in n for n in result.notices)
    assert "Medication/med1" in {r.ref for r in result.resources}
    # Its 404s for types it does not hold are reported, not fatal.
    assert all(i.location.startswith("HTTP") for i in result.issues)
