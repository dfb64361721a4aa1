"""POST /v1/charts goes through the same loader: a malicious body gets a 4xx, never a 5xx."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.settings import Settings

KEY = "test-ehr-key"


def _client(tmp_path: Path) -> TestClient:
    settings = Settings(data_dir=tmp_path, backend="extractive", api_keys={KEY: "ehr-service"})
    return TestClient(create_app(settings))


def test_malicious_bodies_get_4xx(tmp_path: Path) -> None:
    bodies = {
        "deep": b'{"resourceType": "Bundle", "entry": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        "gzip-bomb": gzip.compress(b"[" + b" " * (600 * 2**20) + b"]"),
        "no-resource": json.dumps({"resourceType": "Bundle", "type": "collection",
                                   "entry": [{"fullUrl": "urn:uuid:1"}]}).encode(),
    }
    with _client(tmp_path) as c:
        for name, body in bodies.items():
            r = c.post("/v1/charts", content=body, headers={
                "X-API-Key": KEY, "Content-Type": "application/fhir+json"})
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text[:300])
            assert r.headers["content-type"].startswith("application/problem+json"), name


def test_deep_ndjson_line_is_reported_and_the_good_line_loads(tmp_path: Path) -> None:
    body = b'{"resourceType": "Patient", "id": "a"}\n' + b"[" * 100_000
    with _client(tmp_path) as c:
        r = c.post("/v1/charts", content=body, headers={
            "X-API-Key": KEY, "Content-Type": "application/fhir+ndjson"})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["patient_ids"] == ["a"]
    assert any("line 2" in e and "levels deep" in e for e in r.json()["errors"])
