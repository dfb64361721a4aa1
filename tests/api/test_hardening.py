"""Review fixes: no chart text in logs when a draft fails; CDS context ids and fhirServer are
checked (400s, not 500s, and no reads of unlisted servers); unknown encounter/order ids are 404
before queueing; a failed draft says why."""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from api_service import EHR_KEY, Service
from fastapi.testclient import TestClient

from assistant.api.app import create_app
from assistant.jobs import Jobs
from assistant.pipeline import DraftRequest
from assistant.runtime import Runtime
from assistant.settings import Settings
from assistant.store import Store
from retrieval.errors import BadInput

PROBLEM = "application/problem+json"
SECRET = "Jane Roe was seen for HIV follow-up"  # stands in for chart text in an exception


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert body["status"] == status and "Traceback" not in r.text
    return body


# --- item 1: a failing job logs type, draft id and incident id only ------------------------

def test_failed_job_logs_no_chart_text(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path, backend="extractive")
    rt, store = Runtime(settings), Store(f"sqlite:///{tmp_path / 'svc.db'}")
    jobs = Jobs(rt, store, workers=1)
    req = DraftRequest(patient_id="p-log", doc_type="summary")

    def boom() -> None:
        raise RuntimeError(SECRET)

    def bad_input() -> None:
        raise BadInput(f"bad chart for {SECRET}", where="x", fix="do y")

    try:
        with caplog.at_level(logging.DEBUG):
            unexpected = jobs.submit(req, actor="t", role="clinician", prepare=boom)
            ours = jobs.submit(req, actor="t", role="clinician", prepare=bad_input)
            for d in (unexpected, ours):
                ch = jobs.channel(d.id)
                assert ch is not None and ch.done.wait(30)
    finally:
        jobs.shutdown()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert SECRET not in logged and "bad chart" not in logged
    assert all(r.exc_info is None and r.exc_text is None for r in caplog.records)
    assert f"draft {unexpected.id} failed: RuntimeError (incident " in logged
    assert f"draft {ours.id} failed: BadInput (incident " in logged
    # The reader of the draft sees a reason: our error's detail, or the type + incident id.
    err = store.draft_meta(unexpected.id)["error"]
    assert store.get_draft(unexpected.id).status == "failed"
    assert "RuntimeError" in err and "incident" in err and SECRET not in err
    assert store.draft_meta(ours.id)["error"].endswith("fix: do y")
    store.close()
    rt.close()


def test_simultaneous_identical_cds_requests_make_one_draft(tmp_path: Path) -> None:
    import threading

    settings = Settings(data_dir=tmp_path, backend="extractive")
    rt, store = Runtime(settings), Store(f"sqlite:///{tmp_path / 'svc.db'}")
    jobs = Jobs(rt, store, workers=1)
    req = DraftRequest(patient_id="p-burst", doc_type="summary")
    gate = threading.Event()  # keeps the first draft in flight while the others arrive
    barrier = threading.Barrier(8)
    got: list[str] = []

    def call() -> None:
        barrier.wait()
        got.append(jobs.submit(req, actor="t", role="ehr-service", prepare=gate.wait,
                               reuse_inflight=True).id)

    try:
        threads = [threading.Thread(target=call) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(got) == 8 and len(set(got)) == 1
        # without reuse_inflight (a clinician asking again) a new draft is made
        other = jobs.submit(req, actor="t", role="clinician").id
        assert other != got[0]
        gate.set()
        for d in {got[0], other}:
            ch = jobs.channel(d)
            assert ch is not None and ch.done.wait(60)
    finally:
        gate.set()
        jobs.shutdown()
        store.close()
        rt.close()


# --- item 2: CDS context ids are checked: 400 naming the field, never 500 ------------------

def _call(svc: Service, service_id: str, hook: str, context: dict[str, Any],
          **extra: Any) -> httpx.Response:
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()),
            "context": {"userId": "Practitioner/pr-1", **context}, **extra}
    return httpx.post(f"{svc.url}/cds-services/{service_id}", json=body,
                      headers=svc.cds_jwt(service_id), timeout=30)


def test_cds_context_ids_are_validated(service: Service) -> None:
    pid = service.patient_ids[0]
    dis = "chartdraft-discharge"
    for enc in (12345, "e" * 129, {"id": "x"}, "../Patient/other", ""):
        body = _problem(_call(service, dis, "encounter-discharge",
                              {"patientId": pid, "encounterId": enc}), 400)
        assert body["where"] == "context.encounterId" and body["fix"]
    for bad in (None, 7, "a/b", "..", "p" * 129):
        ctx = {} if bad is None else {"patientId": bad}
        body = _problem(_call(service, "chartdraft-patient-view", "patient-view", ctx), 400)
        assert body["where"] == "context.patientId"
    # An order id over the bound, from draftOrders, is a 400 too (DraftCreate's own limit).
    long_id = "s" * 140
    orders = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {
        "resourceType": "ServiceRequest", "id": long_id, "status": "draft", "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "http://www.ama-assn.org/go/cpt", "code": "72148"}]}}}]}
    body = _problem(_call(service, "chartdraft-order-sign", "order-sign",
                          {"patientId": pid, "draftOrders": orders}), 400)
    assert body["where"] == "context.draftOrders"


# --- item 3: fhirServer must be an allowed FHIR base; ids are quoted ------------------------

def _cds_app(tmp_path: Path, **kw: Any) -> TestClient:
    return TestClient(create_app(Settings(data_dir=tmp_path, backend="extractive", **kw)))


def _hook(fhir_server: str, patient: str = "pat-1") -> dict[str, Any]:
    return {"hook": "patient-view", "hookInstance": str(uuid.uuid4()), "fhirServer": fhir_server,
            "fhirAuthorization": {"access_token": "caller-token", "token_type": "Bearer"},
            "context": {"userId": "Practitioner/1", "patientId": patient}}


def test_cds_fhir_server_allowlist(tmp_path: Path) -> None:
    url = "/cds-services/chartdraft-patient-view"
    allowed = "http://127.0.0.1:9/fhir"  # nothing listens: getting past the list means a 412
    with _cds_app(tmp_path / "a", dev_auth=True, cds_fhir_servers=[allowed + "/"]) as c:
        evil = "http://169.254.169.254/latest"
        r = c.post(url, json=_hook(evil))
        assert r.status_code == 400 and r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["where"] == "fhirServer" and evil in r.json()["detail"]
        # Look-alikes of the allowed base are refused, not prefix-matched.
        for near in (allowed + "x", allowed + "/../admin", "http://127.0.0.1:9/fhir?x=1",
                     "file:///etc/passwd"):
            assert c.post(url, json=_hook(near)).status_code == 400, near
        assert c.post(url, json=_hook("HTTP://127.0.0.1:9/fhir/")).status_code == 412
    # No list and no dev_auth: no fhirServer is read at all.
    with _cds_app(tmp_path / "b", dev_auth=False) as c:
        from assistant.api import cds

        svc = c.app.state.services  # type: ignore[attr-defined]
        with pytest.raises(cds.ProblemError) as exc:
            cds._check_fhir_server(svc, allowed)
        assert exc.value.status == 400 and exc.value.where == "fhirServer"
    # No list with dev_auth: any http(s) server (local development).
    with _cds_app(tmp_path / "c", dev_auth=True) as c:
        assert c.post(url, json=_hook(allowed)).status_code == 412


def test_cds_patient_id_is_quoted_in_the_fhir_path(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from assistant.api import cds

    seen: list[str] = []

    def fake_get(u: str, **kw: Any) -> httpx.Response:
        seen.append(u)
        return httpx.Response(404)

    monkeypatch.setattr(cds.httpx, "get", fake_get)
    # quoting alone, with the id check switched off
    monkeypatch.setattr(cds, "is_fhir_id", lambda v: isinstance(v, str) and 0 < len(v) <= 128)
    with _cds_app(tmp_path, dev_auth=True) as c:
        c.post("/cds-services/chartdraft-patient-view",
               json=_hook("http://127.0.0.1:9/fhir", patient="x/../../Admin?y=1"))
    assert seen == ["http://127.0.0.1:9/fhir/Patient/x%2F..%2F..%2FAdmin%3Fy%3D1"]


# --- item 4: unknown ids are 404 before queueing; a failed draft says why -------------------

def test_unknown_encounter_or_order_is_404(service: Service) -> None:
    pid = service.patient_ids[0]
    with service.client(service.token("clinician")) as c:
        before = len(c.get("/v1/drafts", params={"patient_id": pid}).json())
        body = _problem(c.post("/v1/drafts", json={"patient_id": pid, "doc_type":
                                                   "discharge-instructions",
                                                   "encounter_id": "no-such-encounter"}), 404)
        assert body["where"] == "encounter_id" and "no-such-encounter" in body["detail"]
        body = _problem(c.post("/v1/drafts", json={"patient_id": pid, "doc_type": "prior-auth",
                                                   "order_id": "no-such-order"}), 404)
        assert body["where"] == "order_id"
        # Nothing was queued for either.
        assert len(c.get("/v1/drafts", params={"patient_id": pid}).json()) == before


def test_failed_draft_shows_its_reason(service: Service) -> None:
    pid = f"pa-none-{uuid.uuid4().hex[:8]}"
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": pid, "gender": "female",
                      "birthDate": "1970-01-01", "name": [{"family": "Synthetic"}]}},
        {"resource": {"resourceType": "Condition", "id": f"c-{pid}",
                      "subject": {"reference": f"Patient/{pid}"},
                      "clinicalStatus": {"coding": [{"code": "active"}]},
                      "code": {"text": "Hypertension", "coding": [{
                          "system": "http://snomed.info/sct", "code": "38341003"}]}}}]}
    with service.client({"X-API-Key": EHR_KEY}) as c:
        r = c.post("/v1/charts", content=json.dumps(bundle),
                   headers={"Content-Type": "application/fhir+json"})
        assert r.status_code == 200, r.text
    with service.client(service.token("clinician")) as c:
        # No order named and none in the chart that a policy covers: the pipeline refuses.
        r = c.post("/v1/drafts", json={"patient_id": pid, "doc_type": "prior-auth"})
        assert r.status_code == 202, r.text
        draft_id = r.json()["id"]
        deadline = time.monotonic() + 60
        while (d := c.get(f"/v1/drafts/{draft_id}").json())["status"] not in ("failed", "draft"):
            assert time.monotonic() < deadline, d["status"]
            time.sleep(0.3)
    assert d["status"] == "failed"
    assert "order" in d["error"] and "Traceback" not in d["error"]
