"""GET /metrics on the real app (in process, extractive backend, temp data dir): admin only unless
made public; drafting moves the counters by exactly what the draft holds; and nothing that names
a patient or a draft ever appears in the scrape."""

from __future__ import annotations

import json
import socket
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chartdraft_guardrails.statement import CheckResult
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from assistant.api.app import create_app
from assistant.auth import mint_dev_token
from assistant.draft import Draft, DraftStatement, Section
from assistant.metrics import Metrics
from assistant.settings import Settings

EHR_KEY = "ehr-metrics-key-0123456789"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Settings,
                                                                  list[dict[str, Any]]]]:
    from retrieval.synth import generate

    with socket.socket() as sock:  # a loopback port nothing listens on: a model that is down
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    settings = Settings(data_dir=tmp_path_factory.mktemp("metrics") / "data",
                        backend="extractive", dev_auth=True, api_keys={EHR_KEY: "ehr-service"},
                        openai_base_urls=[dead], retries=0, circuit_failures=1)
    bundles = generate(2, 23)
    with TestClient(create_app(settings)) as c:
        for b in bundles:
            r = c.post("/v1/charts", content=json.dumps(b), headers={
                "X-API-Key": EHR_KEY, "Content-Type": "application/fhir+json"})
            assert r.status_code == 200, r.text
        yield c, settings, bundles


def _auth(settings: Settings, role: str) -> dict[str, str]:
    return {"Authorization": "Bearer " + mint_dev_token(role, settings=settings)}


def _scrape(c: TestClient, settings: Settings) -> tuple[str, Samples]:
    r = c.get("/metrics", headers=_auth(settings, "admin"))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    samples: Samples = {}
    for fam in text_string_to_metric_families(r.text):
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return r.text, samples


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _draft(c: TestClient, settings: Settings, patient: str, **kw: str) -> dict[str, Any]:
    clin = _auth(settings, "clinician")
    r = c.post("/v1/drafts", json={"patient_id": patient, "doc_type": "summary", **kw},
               headers=clin)
    assert r.status_code == 202, r.text
    draft_id = r.json()["id"]
    # The worker counts a draft before it marks its channel done, so after this the counters
    # for it have moved.
    ch = c.app.state.services.jobs.channel(draft_id)  # type: ignore[attr-defined]
    assert ch is not None and ch.done.wait(120)
    d = c.get(f"/v1/drafts/{draft_id}", headers=clin).json()
    assert d["status"] == "draft", d
    return dict(d)


def _patient_ids(bundles: list[dict[str, Any]]) -> list[str]:
    return [e["resource"]["id"] for b in bundles for e in b["entry"]
            if e["resource"]["resourceType"] == "Patient"]


def test_metrics_need_admin(env: tuple[TestClient, Settings, list[dict[str, Any]]]) -> None:
    c, settings, _ = env
    assert c.get("/metrics").status_code == 401
    assert c.get("/metrics", headers={"Authorization": "Bearer nope"}).status_code == 401
    for role in ("clinician", "safety"):
        assert c.get("/metrics", headers=_auth(settings, role)).status_code == 403
    assert c.get("/metrics", headers={"X-API-Key": EHR_KEY}).status_code == 403
    _, samples = _scrape(c, settings)
    assert any(name == "chartdraft_http_requests_total" for name, _ in samples)


def test_public_setting_opens_the_scrape(tmp_path: Path) -> None:
    # A second app in the same process: each app has its own registry, so no collision.
    settings = Settings(data_dir=tmp_path / "data", backend="extractive", metrics_public=True)
    with TestClient(create_app(settings)) as c:
        r = c.get("/metrics")
        assert r.status_code == 200
        names = {f.name for f in text_string_to_metric_families(r.text)}
        assert {"chartdraft_http_requests", "chartdraft_drafts_finished",
                "chartdraft_outbox_items"} <= names


def test_a_summary_moves_the_counters(
        env: tuple[TestClient, Settings, list[dict[str, Any]]]) -> None:
    c, settings, bundles = env
    _, before = _scrape(c, settings)
    d = _draft(c, settings, _patient_ids(bundles)[0])
    _, after = _scrape(c, settings)

    def delta(name: str, **labels: str) -> float:
        return _get(after, name, **labels) - _get(before, name, **labels)

    assert delta("chartdraft_http_requests_total", route="/v1/drafts", method="POST",
                 status="202") == 1
    assert delta("chartdraft_http_requests_total", route="/v1/drafts/{draft_id}", method="GET",
                 status="200") == 1
    assert delta("chartdraft_http_request_duration_seconds_count", route="/v1/drafts",
                 method="POST") == 1
    assert delta("chartdraft_http_request_duration_seconds_sum", route="/v1/drafts",
                 method="POST") > 0
    assert delta("chartdraft_drafts_submitted_total", doc_type="summary") == 1
    assert delta("chartdraft_drafts_finished_total", doc_type="summary", backend="extractive",
                 mode="extractive", status="draft") == 1
    assert delta("chartdraft_drafts_finished_total", doc_type="summary", backend="extractive",
                 mode="extractive", status="failed") == 0
    assert delta("chartdraft_draft_generation_seconds_count", backend="extractive",
                 doc_type="summary") == 1
    assert delta("chartdraft_draft_generation_seconds_sum", backend="extractive",
                 doc_type="summary") > 0
    # The job has left the queue and the worker.
    assert _get(after, "chartdraft_draft_jobs", state="queued") == 0
    assert _get(after, "chartdraft_draft_jobs", state="running") == 0

    statements = [s for sec in d["sections"] for s in sec["statements"]]
    assert statements
    verdicts = Counter(s["verdict"] for s in statements)
    for verdict, n in verdicts.items():
        assert delta("chartdraft_guardrail_statements_total", doc_type="summary",
                     verdict=verdict) == n
    assert sum(delta("chartdraft_guardrail_statements_total", doc_type="summary", verdict=v)
               for v in ("supported", "unsupported", "contradicted", "uncited",
                         "invalid_citation", "other")) == len(statements)
    flags = Counter((r["check"], r["verdict"]) for s in statements for r in s["results"]
                    if r["verdict"] != "supported")
    moved = {(dict(labels)["check"], dict(labels)["verdict"]): v - before.get((name, labels), 0)
             for (name, labels), v in after.items() if name == "chartdraft_guardrail_flags_total"}
    assert {k: v for k, v in moved.items() if v} == dict(flags)
    # Nothing signed yet: the outbox is empty, and it is reported as such.
    assert _get(after, "chartdraft_outbox_items", status="pending") == 0
    assert _get(after, "chartdraft_outbox_pending_failed_attempts") == 0


def test_no_patient_or_draft_identifiers_in_the_scrape(
        env: tuple[TestClient, Settings, list[dict[str, Any]]]) -> None:
    c, settings, bundles = env
    patients = _patient_ids(bundles)
    d = _draft(c, settings, patients[1])
    clin = _auth(settings, "clinician")
    # Concrete paths that carry ids, matched and unmatched, and a CDS call naming no service.
    c.get(f"/v1/drafts/{d['id']}/events", headers=clin)
    c.get(f"/v1/patients/{patients[1]}", headers=clin)
    c.get(f"/no/such/{patients[1]}")
    c.post(f"/cds-services/{patients[1]}", json={})
    c.post("/cds-services/chartdraft-patient-view", json={})  # a known service, a bad body
    body, samples = _scrape(c, settings)

    secrets = {d["id"], *patients}
    for b in bundles:
        for e in b["entry"]:
            res = e["resource"]
            if res["resourceType"] == "Patient":
                for name in res.get("name", []):
                    secrets.update(g for g in name.get("given", []) if len(g) > 2)
                    if len(name.get("family", "")) > 2:
                        secrets.add(name["family"])
    secrets.update(ev["id"] for ev in d["evidence"])
    for secret in secrets:
        assert secret not in body, secret
    routes = {dict(labels).get("route") for (_, labels) in samples} - {None}
    assert routes and all(r == "<unmatched>" or r.startswith("/") for r in routes)
    cds = {dict(labels)["service"] for (name, labels) in samples
           if name == "chartdraft_cds_calls_total"}
    assert cds == {"other", "chartdraft-patient-view"}
    assert _get(samples, "chartdraft_http_requests_total", route="<unmatched>", method="GET",
                status="404") >= 1


def test_a_model_that_is_down_counts_a_fallback_and_opens_its_circuit(
        env: tuple[TestClient, Settings, list[dict[str, Any]]]) -> None:
    c, settings, bundles = env
    _, before = _scrape(c, settings)
    d = _draft(c, settings, _patient_ids(bundles)[0], backend="openai")
    assert d["fallback_reason"] and d["backend"] == "extractive"
    _, after = _scrape(c, settings)
    labels = {"doc_type": "summary", "requested_backend": "openai"}
    assert (_get(after, "chartdraft_draft_fallbacks_total", **labels)
            - _get(before, "chartdraft_draft_fallbacks_total", **labels)) == 1
    assert _get(after, "chartdraft_llm_circuit_state", backend="openai", replica="0",
                state="open") == 1
    assert _get(after, "chartdraft_llm_circuit_state", backend="openai", replica="0",
                state="closed") == 0


def test_flags_are_counted_per_check_and_unknown_labels_collapse() -> None:
    # The extractive drafts above have no flags; a draft with flagged statements shows how they
    # are counted (one per non-supported result) and that label values stay in their sets.
    results = [CheckResult(check="citation", verdict="invalid_citation", reason="no such id"),
               CheckResult(check="support", verdict="unsupported", reason="not in the source"),
               CheckResult(check="a-new-check", verdict="contradicted", reason="x")]
    draft = Draft(patient_id="synthetic-patient-1", doc_type="summary", status="draft",
                  backend="Some Backend", mode="extractive", timings={"total": 0.5},
                  sections=[Section(title="Problems", statements=[
                      DraftStatement(text="a", citations=["Condition/1"], results=results),
                      DraftStatement(text="b", citations=["Condition/1"], results=[
                          CheckResult(check="support", verdict="supported")])])])
    m = Metrics()
    m.draft_finished(draft, requested_backend="openai")
    samples = {(s.name, frozenset(s.labels.items())): s.value
               for fam in text_string_to_metric_families(m.render().decode())
               for s in fam.samples}
    assert _get(samples, "chartdraft_guardrail_flags_total", check="citation",
                verdict="invalid_citation") == 1
    assert _get(samples, "chartdraft_guardrail_flags_total", check="support",
                verdict="unsupported") == 1
    assert _get(samples, "chartdraft_guardrail_flags_total", check="other",
                verdict="contradicted") == 1
    assert _get(samples, "chartdraft_guardrail_statements_total", doc_type="summary",
                verdict="supported") == 1
    assert _get(samples, "chartdraft_guardrail_statements_total", doc_type="summary",
                verdict="contradicted") == 1
    assert _get(samples, "chartdraft_drafts_finished_total", doc_type="summary",
                backend="other", mode="extractive", status="draft") == 1
    assert "synthetic-patient-1" not in m.render().decode()
