"""The UI's own routes without a browser: the page shell on every UI path, the development login
only when dev_auth is on, and the allergy/encounter/order helper behind the API's auth and
patient scopes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from api_service import Service
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.settings import Settings


@pytest.mark.parametrize("path", ["/ui", "/ui/signin", "/ui/patients/p1", "/ui/drafts/d1",
                                  "/ui/drafts/d1/print"])
def test_every_ui_path_serves_the_shell(service: Service, path: str) -> None:
    r = httpx.get(service.url + path)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert '<main id="main"' in r.text and "/ui/static/app.js" in r.text
    assert "https://" not in r.text  # nothing from a CDN


def test_static_files_are_served(service: Service) -> None:
    for name, kind in (("app.js", "javascript"), ("app.css", "text/css")):
        r = httpx.get(f"{service.url}/ui/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]


def test_dev_login_is_off_unless_dev_auth(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, dev_auth=False, backend="extractive"))
    with TestClient(app) as c:
        assert c.get("/ui/api/config").json()["dev_auth"] is False
        r = c.post("/ui/api/dev-login", json={})
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "paste a bearer token" in r.json()["fix"]
        home = c.get("/", follow_redirects=False)
        assert home.status_code == 307 and home.headers["location"] == "/ui"


def test_dev_login_mints_a_clinician_token_that_the_api_accepts(service: Service) -> None:
    r = httpx.post(f"{service.url}/ui/api/dev-login", json={})
    assert r.status_code == 200 and r.json()["role"] == "clinician"
    headers = {"Authorization": f"Bearer {r.json()['token']}"}
    assert httpx.get(f"{service.url}/v1/patients", headers=headers).status_code == 200


def test_patient_context_needs_auth_and_honours_patient_scope(service: Service) -> None:
    a, b = service.patient_ids[:2]
    assert httpx.get(f"{service.url}/ui/api/patients/{a}/context").status_code == 401
    scoped = service.token("clinician", patient=a)
    ok = httpx.get(f"{service.url}/ui/api/patients/{a}/context", headers=scoped)
    assert ok.status_code == 200
    body = ok.json()
    assert set(body) == {"allergies", "allergies_recorded", "encounters", "orders"}
    assert all(e["id"].startswith("Encounter/") for e in body["encounters"])
    other = httpx.get(f"{service.url}/ui/api/patients/{b}/context", headers=scoped)
    assert other.status_code == 404  # the same answer as for a patient that does not exist
    missing = httpx.get(f"{service.url}/ui/api/patients/nobody/context",
                        headers=service.token("clinician"))
    assert missing.status_code == 404


def test_allergy_banner_lists_the_charts_active_allergies(service: Service) -> None:
    """Compared with the chart's own AllergyIntolerance evidence, read through /v1."""
    with service.client(service.token("clinician")) as c:
        for pid in service.patient_ids:
            ctx = c.get(f"/ui/api/patients/{pid}/context").json()
            for allergy in ctx["allergies"]:
                ev = c.get(f"/v1/evidence/{allergy['id']}").json()["evidence"]
                assert ev["resource_type"] == "AllergyIntolerance"
                assert ev["patient_id"] == pid
                assert "no known" not in allergy["substance"].lower()
