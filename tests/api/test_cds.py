"""CDS Hooks 2.0 over real HTTP: discovery, patient-view with prefetch and without (fetching from
a real FHIR server), 412, encounter-discharge, order-sign with and without a covered order, the
client JWT rules, and feedback."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from api_service import Service
from fhirsnake_server import fhirsnake

SPEC_HOOKS = {"chartdraft-patient-view": "patient-view",
              "chartdraft-discharge": "encounter-discharge",
              "chartdraft-order-sign": "order-sign"}


def _resources(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The bundle's resources as a FHIR server holds them: urn:uuid references made relative."""
    refmap = {e["fullUrl"]: f"{e['resource']['resourceType']}/{e['resource']['id']}"
              for e in bundle["entry"] if e.get("fullUrl")}
    text = json.dumps([e["resource"] for e in bundle["entry"]])
    for full, rel in refmap.items():
        text = text.replace(f'"{full}"', f'"{rel}"')
    out: list[dict[str, Any]] = json.loads(text)
    return out


def _patient_id(bundle: dict[str, Any]) -> str:
    return str(next(r["id"] for r in _resources(bundle) if r["resourceType"] == "Patient"))


def _prefetch(bundle: dict[str, Any]) -> dict[str, Any]:
    res = _resources(bundle)

    def search(rt: str) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "searchset",
                "entry": [{"resource": r} for r in res if r["resourceType"] == rt]}

    # One key per discovery prefetch template, as an EHR fills them in.
    keys = {"conditions": "Condition", "medications": "MedicationRequest",
            "allergies": "AllergyIntolerance", "observations": "Observation",
            "encounters": "Encounter", "procedures": "Procedure",
            "immunizations": "Immunization", "notes": "DocumentReference",
            "coverage": "Coverage"}
    out: dict[str, Any] = {k: search(rt) for k, rt in keys.items()}
    out["patient"] = next(r for r in res if r["resourceType"] == "Patient")
    return out


def _call(svc: Service, service_id: str, context: dict[str, Any], **extra: Any) -> httpx.Response:
    body = {"hook": SPEC_HOOKS[service_id], "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/pr-1", **context}, **extra}
    return httpx.post(f"{svc.url}/cds-services/{service_id}", json=body,
                      headers=svc.cds_jwt(service_id), timeout=30)


def _check_card(svc: Service, card: dict[str, Any]) -> str:
    assert set(card) >= {"uuid", "summary", "indicator", "source", "links"}
    assert len(card["summary"]) < 140 and card["indicator"] in ("info", "warning", "critical")
    assert card["source"]["label"]
    link = card["links"][0]
    assert link["type"] in ("smart", "absolute") and link["url"].startswith(
        f"{svc.url}/ui/drafts/")
    return str(link["url"].rsplit("/", 1)[1])


def _wait_draft(svc: Service, draft_id: str, timeout: float = 90) -> dict[str, Any]:
    with svc.client(svc.token("admin")) as c:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            d = c.get(f"/v1/drafts/{draft_id}").json()
            if d["status"] in ("draft", "failed"):
                return dict(d)
            time.sleep(0.5)
    raise AssertionError(f"draft {draft_id} did not finish")


def test_discovery_shape(service: Service) -> None:
    d = httpx.get(f"{service.url}/cds-services").json()
    by_id = {s["id"]: s for s in d["services"]}
    assert {k: v["hook"] for k, v in by_id.items()} == SPEC_HOOKS
    for s in d["services"]:
        assert s["description"] and s["prefetch"]["patient"] == "Patient/{{context.patientId}}"


def test_patient_view_with_prefetch_answers_fast_and_draft_completes(service: Service) -> None:
    bundle = service.bundles[3]  # never ingested: the prefetch is the only source
    pid = _patient_id(bundle)
    t0 = time.perf_counter()
    r = _call(service, "chartdraft-patient-view", {"patientId": pid},
              prefetch=_prefetch(bundle))
    elapsed = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    assert elapsed < 0.5, f"CDS answer took {elapsed:.3f}s"
    draft_id = _check_card(service, r.json()["cards"][0])
    d = _wait_draft(service, draft_id)
    assert d["status"] == "draft" and d["patient_id"] == pid and d["sections"]


def test_patient_view_fetches_from_fhir_server(service: Service, tmp_path: Path) -> None:
    bundle = service.bundles[2]
    pid = _patient_id(bundle)
    with fhirsnake(tmp_path / "ehr", _resources(bundle)) as ehr:
        r = _call(service, "chartdraft-patient-view", {"patientId": pid}, fhirServer=ehr,
                  fhirAuthorization={"access_token": "t0k3n", "token_type": "Bearer",
                                     "expires_in": 300, "scope": "patient/*.read",
                                     "subject": "chartdraft"})
        assert r.status_code == 200, r.text
        draft_id = _check_card(service, r.json()["cards"][0])
        assert _wait_draft(service, draft_id)["status"] == "draft"


def test_412_when_no_chart_can_be_had(service: Service) -> None:
    r = _call(service, "chartdraft-patient-view", {"patientId": "unknown-patient"},
              fhirServer="http://127.0.0.1:9/fhir",
              fhirAuthorization={"access_token": "x", "token_type": "Bearer"})
    assert r.status_code == 412 and r.headers["content-type"].startswith(
        "application/problem+json")


def test_discharge_card(service: Service) -> None:
    bundle = service.bundles[0]
    pid = _patient_id(bundle)
    enc = next(r["id"] for r in _resources(bundle) if r["resourceType"] == "Encounter")
    r = _call(service, "chartdraft-discharge", {"patientId": pid, "encounterId": enc})
    assert r.status_code == 200, r.text
    d = _wait_draft(service, _check_card(service, r.json()["cards"][0]))
    assert d["doc_type"] == "discharge-instructions" and d["encounter_id"] == enc


def test_order_sign_only_for_covered_orders(service: Service) -> None:
    pid = service.patient_ids[0]

    def order(code: str, system: str) -> dict[str, Any]:
        return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
            "resourceType": "ServiceRequest", "id": f"sr-{uuid.uuid4().hex[:8]}",
            "status": "draft", "intent": "order", "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": system, "code": code}], "text": "ordered test"}}}]}

    none = _call(service, "chartdraft-order-sign",
                 {"patientId": pid, "draftOrders": order("85025", "http://www.ama-assn.org/go/cpt")})
    assert none.status_code == 200 and none.json() == {"cards": []}
    mri = _call(service, "chartdraft-order-sign",
                {"patientId": pid, "draftOrders": order("72148", "http://www.ama-assn.org/go/cpt")})
    assert mri.status_code == 200, mri.text
    card = mri.json()["cards"][0]
    assert card["indicator"] == "warning"
    d = _wait_draft(service, _check_card(service, card))
    assert d["doc_type"] == "prior-auth" and d["order_id"].startswith("ServiceRequest/")


def test_client_jwt_rules(service: Service) -> None:
    sid = "chartdraft-patient-view"
    body = {"hook": "patient-view", "hookInstance": "h1",
            "context": {"userId": "Practitioner/1", "patientId": service.patient_ids[0]}}
    url = f"{service.url}/cds-services/{sid}"
    assert httpx.post(url, json=body).status_code == 401  # issuers configured: JWT required
    wrong_aud = service.cds_jwt(sid, aud=f"{service.url}/cds-services/other")
    assert httpx.post(url, json=body, headers=wrong_aud).status_code == 401
    once = service.cds_jwt(sid)
    assert httpx.post(url, json=body, headers=once, timeout=30).status_code == 200
    assert httpx.post(url, json=body, headers=once).status_code == 401  # jti replay


def test_feedback_stored(service: Service) -> None:
    sid = "chartdraft-patient-view"
    fb = {"feedback": [
        {"card": str(uuid.uuid4()), "outcome": "accepted",
         "outcomeTimestamp": "2026-01-02T10:00:00Z"},
        {"card": str(uuid.uuid4()), "outcome": "overridden",
         "overrideReason": {"reason": {"code": "not-relevant", "display": "Not relevant",
                                       "system": "urn:ehr:reasons"}, "userComment": "seen"},
         "outcomeTimestamp": "2026-01-02T10:01:00Z"}]}
    r = httpx.post(f"{service.url}/cds-services/{sid}/feedback", json=fb,
                   headers=service.cds_jwt(f"{sid}/feedback"))
    assert r.status_code == 200 and r.json() == {"stored": 2}
    from assistant.store import Store

    rows = Store(service.settings().sql_url if not _pg() else _pg()).cds_feedback(sid)
    assert {r["outcome"] for r in rows} >= {"accepted", "overridden"}
    assert any(r["override_reason"] and r["override_reason"]["reason"]["code"] == "not-relevant"
               for r in rows)
    bad = httpx.post(f"{service.url}/cds-services/{sid}/feedback",
                     json={"feedback": [{"card": "x", "outcome": "maybe"}]},
                     headers=service.cds_jwt(f"{sid}/feedback"))
    assert bad.status_code == 422 and json.loads(bad.text)["status"] == 422


def _pg() -> str | None:
    import os

    return os.environ.get("CHARTDRAFT_TEST_POSTGRES_URL")


def test_patient_view_reuses_current_summary(service: Service) -> None:
    pid = service.patient_ids[1]
    from api_service import EHR_KEY

    with service.client({"X-API-Key": EHR_KEY}) as c:
        summary = c.get(f"/v1/patients/{pid}/summary", params={"wait": 45})
        assert summary.status_code == 200, summary.text
    r = _call(service, "chartdraft-patient-view", {"patientId": pid})  # nothing new sent
    card = r.json()["cards"][0]
    assert _check_card(service, card) == summary.json()["id"]
    assert card["detail"].startswith("- ")  # highlights from the current summary
