"""The two API additions the review screen relies on, in-process: POST /v1/drafts/{id}/cancel
(clinician only, audited, 409 once finished, the worker really stops) and the evidence titles
that every streamed statement event carries. The pipeline is replaced by a slow fake so a draft
is still running when the cancel arrives."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import assistant.jobs
from assistant.api.app import create_app
from assistant.auth import mint_dev_token
from assistant.draft import Draft, DraftStatement, Section
from assistant.jobs import statement_event
from assistant.pipeline import DraftRequest
from assistant.settings import Settings
from retrieval.evidence import Evidence
from retrieval.synth import generate

EMITTED: list[int] = []


def slow_run_draft(rt: Any, req: DraftRequest, *, on_event: Any = None,
                   draft: Draft | None = None) -> Draft:
    """A statement every 50 ms for up to 10 s: long enough to be cancelled in between."""
    assert draft is not None and on_event is not None
    draft.sections = [Section(title="Medicines")]
    for i in range(200):
        st = DraftStatement(text=f"Statement {i}.", citations=[])
        draft.sections[0].statements.append(st)
        on_event({"type": "statement", "section": "Medicines", "statement": st})
        EMITTED.append(i)
        time.sleep(0.05)
    draft.status = "draft"
    return draft


@pytest.fixture()
def app_client(tmp_path: Path) -> Iterator[tuple[TestClient, Settings, str]]:
    settings = Settings(data_dir=tmp_path, dev_auth=True, backend="extractive")
    with TestClient(create_app(settings)) as c:
        admin = {"Authorization": f"Bearer {mint_dev_token('admin', settings=settings)}"}
        r = c.post("/v1/charts", content=json.dumps(generate(1, 5)[0]),
                   headers={**admin, "Content-Type": "application/fhir+json"})
        assert r.status_code == 200, r.text
        yield c, settings, r.json()["patient_ids"][0]


def _auth(settings: Settings, role: str = "clinician") -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_dev_token(role, settings=settings, subject='dr-a')}"}


def test_cancel_stops_a_running_draft(app_client: tuple[TestClient, Settings, str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    c, settings, pid = app_client
    monkeypatch.setattr(assistant.jobs, "run_draft", slow_run_draft)
    EMITTED.clear()
    r = c.post("/v1/drafts", json={"patient_id": pid, "doc_type": "summary"},
               headers=_auth(settings))
    assert r.status_code == 202, r.text
    draft_id = r.json()["id"]
    while len(EMITTED) < 3:
        time.sleep(0.02)
    # Only a clinician may cancel.
    assert c.post(f"/v1/drafts/{draft_id}/cancel",
                  headers=_auth(settings, "ehr-service")).status_code == 403
    r = c.post(f"/v1/drafts/{draft_id}/cancel", headers=_auth(settings))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "failed" and body["extras"]["cancelled_by"] == "dr-a"
    assert "cancelled by dr-a" in body["error"]
    stopped_at = len(EMITTED)
    time.sleep(0.3)
    assert len(EMITTED) == stopped_at < 200  # the worker stopped, it did not run on
    # Cancelled is final: a second cancel, like one of any finished draft, is a conflict.
    again = c.post(f"/v1/drafts/{draft_id}/cancel", headers=_auth(settings))
    assert again.status_code == 409
    admin = {"Authorization": f"Bearer {mint_dev_token('admin', settings=settings)}"}
    audit = c.get("/v1/audit", params={"patient_id": pid}, headers=admin).json()
    assert [a["actor"] for a in audit if a["action"] == "draft.cancel"] == ["dr-a"]


def test_cancel_of_a_finished_draft_is_409(app_client: tuple[TestClient, Settings, str]) -> None:
    c, settings, pid = app_client
    r = c.post("/v1/drafts", json={"patient_id": pid, "doc_type": "summary"},
               headers=_auth(settings))
    draft_id = r.json()["id"]
    for _ in range(600):
        if c.get(f"/v1/drafts/{draft_id}", headers=_auth(settings)).json()["status"] == "draft":
            break
        time.sleep(0.1)
    r = c.post(f"/v1/drafts/{draft_id}/cancel", headers=_auth(settings))
    assert r.status_code == 409 and "already draft" in r.json()["detail"]
    # The replayed event stream names every cited source of every statement.
    events = c.get(f"/v1/drafts/{draft_id}/events", headers=_auth(settings)).text
    statements = [json.loads(line[5:]) for line in events.splitlines()
                  if line.startswith("data:") and '"statement"' in line]
    assert statements
    for ev in statements:
        assert set(ev["sources"]) == set(ev["statement"]["citations"])
        assert all(s["title"] for s in ev["sources"].values())


def test_statement_event_carries_titles_of_cited_sources_only() -> None:
    ev = [Evidence(id="Condition/1", resource_type="Condition", title="Asthma", text="Asthma",
                   date="2024-01-02"),
          Evidence(id="Condition/2", resource_type="Condition", title="Gout", text="Gout")]
    st = DraftStatement(text="Has asthma.", citations=["Condition/1", "Condition/9"])
    out = statement_event("Problems", st, ev)
    assert out["sources"] == {"Condition/1": {"title": "Asthma", "date": "2024-01-02",
                                              "kind": "chart"}}
    assert statement_event("Problems", st)["sources"] == {}

