"""Review keeps the omission rules: removing or editing away a required fact (a discharge
medicine) becomes an open flag on the draft, and signing is refused until the fact is back or the
flag acknowledged. Over real HTTP, with the API tests' service (extractive backend)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).parents[1] / "api"))

from api_service import Service, service  # noqa: E402,F401  (the session fixture)


def _draft(c: httpx.Client, patient: str) -> dict[str, Any]:
    r = c.post("/v1/drafts", json={"patient_id": patient, "doc_type": "discharge-instructions"})
    assert r.status_code == 202, r.text
    with c.stream("GET", f"/v1/drafts/{r.json()['id']}/events") as ev:
        for line in ev.iter_lines():
            if line.startswith("data:") and json.loads(line[5:]).get("status") in (
                    "draft", "failed"):
                break
    d: dict[str, Any] = c.get(f"/v1/drafts/{r.json()['id']}").json()
    assert d["status"] == "draft", d
    return d


def _medicine(d: dict[str, Any]) -> dict[str, Any]:
    """A statement in "Your medicines" that is the only one citing a required medicine."""
    required = set(d["checks"].get("required_ids") or [])
    sts = [s for sec in d["sections"] for s in sec["statements"]]
    for sec in d["sections"]:
        if sec["title"] != "Your medicines":
            continue
        for s in sec["statements"]:
            own = [c for c in s["citations"] if c in required and c.startswith(
                "MedicationRequest/") and sum(c in x["citations"] for x in sts) == 1]
            if own and len(sec["statements"]) >= 2:
                return dict(s)
    raise AssertionError("no patient-facing medicine statement to remove")


def _omission_flags(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for sec in d["sections"] for s in sec["statements"] for r in s["results"]
            if r["check"] == "omission"]


def _patient_with_medicines(svc: Service, c: httpx.Client) -> dict[str, Any]:
    for p in svc.patient_ids:
        d = _draft(c, p)
        try:
            _medicine(d)
        except AssertionError:
            continue
        return d
    raise AssertionError("no synthetic patient has two discharge medicines")


def test_removing_a_required_medicine_flags_the_draft_and_blocks_signing(
        service: Service) -> None:  # noqa: F811
    with service.client(service.token("clinician", subject="dr-omit")) as c:
        d = _patient_with_medicines(service, c)
        assert not d["open_flags"] and not d["checks"]["omissions"], d["open_flags"]
        med = _medicine(d)
        rid = next(x for x in med["citations"] if x.startswith("MedicationRequest/"))
        r = c.patch(f"/v1/drafts/{d['id']}", json={"edits": [{"statement_id": med["id"],
                                                              "remove": True}]})
        assert r.status_code == 200, r.text
        after = r.json()
        assert [o["evidence_id"] for o in after["checks"]["omissions"]] == [rid]
        flags = _omission_flags(after)
        assert flags and all(f["evidence_ids"] == [rid] for f in flags)
        assert "no longer in the draft" in flags[0]["reason"]
        assert after["open_flags"]
        # The flag sits on the section the medicine belonged to.
        meds = next(s for s in after["sections"] if s["title"] == "Your medicines")
        assert {s["id"] for s in meds["statements"]} >= set(after["open_flags"])
        r = c.post(f"/v1/drafts/{d['id']}/sign", json={})
        assert r.status_code == 409, r.text
        # Acknowledging the flag (with a reason) lets the clinician sign.
        r = c.post(f"/v1/drafts/{d['id']}/sign", json={
            "acknowledge": after["open_flags"], "note": "stopped at discharge by phone"})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "signed"


def test_editing_the_medicine_away_flags_it_and_putting_it_back_clears_it(
        service: Service) -> None:  # noqa: F811
    with service.client(service.token("clinician", subject="dr-omit")) as c:
        d = _patient_with_medicines(service, c)
        med = _medicine(d)
        r = c.patch(f"/v1/drafts/{d['id']}", json={"edits": [{
            "statement_id": med["id"], "text": "Take your medicines as before.",
            "citations": []}]})
        assert r.status_code == 200, r.text
        assert _omission_flags(r.json()) and r.json()["open_flags"]
        r = c.patch(f"/v1/drafts/{d['id']}", json={"edits": [{
            "statement_id": med["id"], "text": med["text"], "citations": med["citations"]}]})
        assert r.status_code == 200, r.text
        back = r.json()
        assert not _omission_flags(back) and not back["checks"]["omissions"]
