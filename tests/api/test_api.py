"""End to end over real HTTP: every /v1 endpoint, every role, cross-patient denial, the one error
envelope, signing with write-back to a real FHIR server, and the audit chain after it all."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
from api_service import EHR_KEY, Service

PROBLEM = "application/problem+json"


def _problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = r.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status and "Traceback" not in r.text
    return body


def _sse(c: httpx.Client, draft_id: str) -> list[tuple[str, dict[str, Any]]]:
    events: list[tuple[str, dict[str, Any]]] = []
    name = "message"
    with c.stream("GET", f"/v1/drafts/{draft_id}/events") as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("event:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("data:"):
                events.append((name, json.loads(line.split(":", 1)[1])))
                if name == "done":
                    break
    return events


def _new_draft(svc: Service, c: httpx.Client, patient: str, doc_type: str = "summary",
               **kw: Any) -> dict[str, Any]:
    r = c.post("/v1/drafts", json={"patient_id": patient, "doc_type": doc_type, **kw})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["status"] == "pending" and body["links"]["ui"].endswith(f"/ui/drafts/{body['id']}")
    events = _sse(c, body["id"])
    assert events[-1][0] == "done" and events[-1][1]["status"] == "draft", events[-1]
    d = c.get(f"/v1/drafts/{body['id']}").json()
    assert d["status"] == "draft" and d["error"] is None
    return dict(d)


def test_error_envelope_everywhere(service: Service) -> None:
    with service.client() as c:
        _problem(c.get("/no/such/route"), 404)
        assert _problem(c.get("/v1/patients"), 401)["fix"]
        bad_auth = c.get("/v1/patients", headers={"Authorization": "Bearer not-a-jwt"})
        _problem(bad_auth, 401)
        c.headers.update(service.token("clinician"))
        body = _problem(c.post("/v1/drafts", json={"patient_id": "x", "doc_type": "poem"}), 422)
        assert body["where"].startswith("body")
        _problem(c.post("/v1/drafts", content=b"{not json"), 422)
        _problem(c.get("/v1/drafts/does-not-exist"), 404)
        _problem(c.delete("/v1/patients"), 405)
    assert httpx.get(f"{service.url}/healthz").json()["status"] == "ok"
    assert "/v1/drafts" in httpx.get(f"{service.url}/openapi.json").json()["paths"]


def test_ingest_roles_and_per_entry_errors(service: Service) -> None:
    with service.client(service.token("clinician")) as c:
        _problem(c.post("/v1/charts", content=json.dumps(service.bundles[0])), 403)
    with service.client({"X-API-Key": EHR_KEY}) as c:
        broken = {"resourceType": "Bundle", "type": "collection", "entry": [
            {"resource": {"resourceType": "Patient", "id": "broken-1", "gender": 12}},
            {"resource": {"resourceType": "Nonsense", "id": "n1"}}]}
        body = _problem(c.post("/v1/charts", content=json.dumps(broken)), 422)
        assert "nothing could be loaded" in body["detail"]
        _problem(c.post("/v1/charts", content=b""), 400)
        # Re-ingesting the same chart is fine (idempotent) and reports per patient.
        r = c.post("/v1/charts", content=json.dumps(service.bundles[0]))
        assert r.status_code == 200 and r.json()["embedded"] == 0


def test_patients_scoped(service: Service) -> None:
    a, b = service.patient_ids[:2]
    with service.client(service.token("admin")) as c:
        ids = {p["id"] for p in c.get("/v1/patients").json()}
        assert {a, b} <= ids
    with service.client(service.token("clinician", a)) as c:
        assert [p["id"] for p in c.get("/v1/patients").json()] == [a]
        assert c.get(f"/v1/patients/{a}").json()["chart_version"]
        _problem(c.get(f"/v1/patients/{b}"), 404)
        _problem(c.get("/v1/patients/not-a-patient"), 404)


def test_draft_lifecycle_edit_ack_sign_writeback(service: Service) -> None:
    a = service.patient_ids[0]
    with service.client(service.token("clinician", a, subject="dr-lee")) as c:
        d = _new_draft(service, c, a, "discharge-instructions")
        stmts = [s for sec in d["sections"] for s in sec["statements"]]
        assert stmts and all("verdict" in s and "citations" in s for s in stmts)
        assert d["model"] and d["backend"] == "extractive"
        # An edit is re-checked at once: a made-up dose is not supported by what it cites.
        target = next(s for s in stmts if s["citations"])
        r = c.patch(f"/v1/drafts/{d['id']}", json={"edits": [
            {"statement_id": target["id"], "text": "Take 9999 mg of warfarin every hour."}]})
        assert r.status_code == 200, r.text
        edited = next(s for sec in r.json()["sections"] for s in sec["statements"]
                      if s["id"] == target["id"])
        assert edited["origin"] == "clinician" and edited["flagged"]
        assert target["id"] in r.json()["open_flags"]
        # Signing with open flags: 409, listing each one.
        body = _problem(c.post(f"/v1/drafts/{d['id']}/sign", json={}), 409)
        assert target["id"] in {f["statement_id"] for f in body["open_flags"]}
        # Acknowledge one explicitly, the rest in the sign request.
        r = c.post(f"/v1/drafts/{d['id']}/acknowledge",
                   json={"statement_id": target["id"], "note": "checked with pharmacy"})
        assert r.status_code == 200
        rest = r.json()["open_flags"]
        r = c.post(f"/v1/drafts/{d['id']}/sign", json={"acknowledge": rest})
        assert r.status_code == 200, r.text
        signed = r.json()
        assert signed["status"] == "signed" and signed["writeback"]["status"] in ("pending",
                                                                                  "sent")
        _problem(c.patch(f"/v1/drafts/{d['id']}", json={"edits": [
            {"statement_id": target["id"], "remove": True}]}), 409)
        _problem(c.post(f"/v1/drafts/{d['id']}/reject", json={"reason": "late"}), 409)
        # Write-back reaches the real FHIR server.
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            wb = c.get(f"/v1/drafts/{d['id']}").json()["writeback"]
            if wb["status"] == "sent":
                break
            time.sleep(0.5)
        assert wb["status"] == "sent", wb
    found = httpx.get(f"{service.fhir_url}/DocumentReference").json()
    docs = [e["resource"] for e in found["entry"]
            if e["resource"]["identifier"][0]["value"] == d["id"]]
    assert len(docs) == 1 and docs[0]["docStatus"] == "final"
    assert docs[0]["type"]["coding"][0]["code"] == "8653-8"
    provs = httpx.get(f"{service.fhir_url}/Provenance").json()["entry"]
    prov = next(p["resource"] for p in provs
                if p["resource"]["target"][0]["reference"].endswith(docs[0]["id"]))
    cited = {c.split("#")[0] for s in stmts for c in s["citations"] if not c.startswith("kb:")}
    assert cited <= {e["what"].get("reference") for e in prov["entity"]}


def test_remove_reject_feedback_and_roles(service: Service) -> None:
    a = service.patient_ids[1]
    with service.client(service.token("clinician", a)) as c:
        d = _new_draft(service, c, a)
        first = d["sections"][0]["statements"][0]["id"]
        r = c.patch(f"/v1/drafts/{d['id']}", json={"edits": [{"statement_id": first,
                                                              "remove": True}]})
        assert first not in {s["id"] for sec in r.json()["sections"] for s in sec["statements"]}
        _problem(c.patch(f"/v1/drafts/{d['id']}", json={"edits": [{"statement_id": "nope",
                                                                   "text": "x"}]}), 404)
        assert c.post(f"/v1/drafts/{d['id']}/feedback",
                      json={"rating": "down", "comment": "too long"}).status_code == 201
        r = c.post(f"/v1/drafts/{d['id']}/reject", json={"reason": "not needed"})
        assert r.status_code == 200 and r.json()["status"] == "rejected"
    with service.client({"X-API-Key": EHR_KEY}) as c:  # a service reads but never signs
        assert c.get(f"/v1/drafts/{d['id']}").status_code == 200
        _problem(c.post(f"/v1/drafts/{d['id']}/sign", json={}), 403)
    with service.client(service.token("safety")) as c:
        assert c.post(f"/v1/drafts/{d['id']}/feedback", json={"rating": "up"}).status_code == 201
        _problem(c.post("/v1/drafts", json={"patient_id": a, "doc_type": "summary"}), 403)
        _problem(c.post(f"/v1/drafts/{d['id']}/reject", json={"reason": "x"}), 403)
    with service.client(service.token("clinician", scope="user/*.read")) as c:
        d2 = _new_draft(service, c, a)
        body = _problem(c.post(f"/v1/drafts/{d2['id']}/sign", json={}), 403)
        assert "DocumentReference.write" in body["detail"]


def test_cross_patient_denial_is_404(service: Service) -> None:
    a, b = service.patient_ids[:2]
    with service.client(service.token("clinician", b)) as cb:
        d_b = _new_draft(service, cb, b)
        ev_b = d_b["evidence"][0]["id"]
    with service.client(service.token("clinician", a)) as c:
        for r in (c.get(f"/v1/drafts/{d_b['id']}"),
                  c.get(f"/v1/drafts/{d_b['id']}/events"),
                  c.patch(f"/v1/drafts/{d_b['id']}", json={"edits": [
                      {"statement_id": "x", "remove": True}]}),
                  c.post(f"/v1/drafts/{d_b['id']}/sign", json={}),
                  c.post("/v1/drafts", json={"patient_id": b, "doc_type": "summary"}),
                  c.get(f"/v1/evidence/{ev_b}"),
                  c.get(f"/v1/patients/{b}/summary"),
                  c.get("/v1/drafts", params={"patient_id": b})):
            _problem(r, 404)
        own = c.get(f"/v1/evidence/{ev_b.replace(b, a)}")  # an id that does not exist: same 404
        assert own.status_code == 404


def test_evidence_with_raw_resource(service: Service) -> None:
    a = service.patient_ids[0]
    with service.client(service.token("clinician", a)) as c:
        d = _new_draft(service, c, a)
        chart_ev = next(e for e in d["evidence"] if e["kind"] == "chart")
        r = c.get(f"/v1/evidence/{chart_ev['id']}")
        assert r.status_code == 200
        body = r.json()
        assert body["evidence"]["id"] == chart_ev["id"]
        assert body["resource"]["resourceType"] == chart_ev["resource_type"]


def test_summary_wait_and_reuse(service: Service) -> None:
    c_id = service.patient_ids[2]
    with service.client({"X-API-Key": EHR_KEY}) as c:
        r = c.get(f"/v1/patients/{c_id}/summary", params={"wait": 0})
        assert r.status_code in (200, 202)
        r = c.get(f"/v1/patients/{c_id}/summary", params={"wait": 45})
        assert r.status_code == 200, r.text
        first = r.json()
        assert first["doc_type"] == "summary" and first["status"] == "draft"
        again = c.get(f"/v1/patients/{c_id}/summary", params={"wait": 5}).json()
        assert again["id"] == first["id"]  # chart unchanged: the same summary
        # The summary is the same view as GET /v1/drafts/{id} (one serializer for both).
        assert again == c.get(f"/v1/drafts/{first['id']}").json()
        assert {"open_flags", "links", "writeback", "error"} <= set(again)
        _problem(c.get(f"/v1/patients/{c_id}/summary", params={"wait": 999}), 422)
        assert _problem(c.get("/v1/patients/no-such-patient/summary"), 404)["fix"]


def test_audit_admin_only_and_chain_intact(service: Service) -> None:
    with service.client(service.token("clinician")) as c:
        _problem(c.get("/v1/audit"), 403)
    with service.client(service.token("admin")) as c:
        rows = c.get("/v1/audit", params={"limit": 1000}).json()
        actions = {r["action"] for r in rows}
        assert {"chart.ingest", "draft.create", "draft.read"} <= actions
        assert all(r["prev_hash"] and r["hash"] for r in rows)
        # No clinical text in audit records: ids and hashes only.
        assert not any("mg" in json.dumps(r) for r in rows if r["action"] == "draft.edit")
        v = c.get("/v1/audit/verify").json()
        assert v["ok"] and v["records"] >= len(rows)
