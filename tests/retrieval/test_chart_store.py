"""The chart store on SQLite, and on PostgreSQL when CHARTDRAFT_TEST_POSTGRES_URL is set."""

from __future__ import annotations

import copy
import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from retrieval.chart_store import ChartStore
from retrieval.errors import BadInput, StoreError
from retrieval.fhir_load import LoadedResource, LoadIssue, LoadResult, load_json, load_path
from retrieval.normalize import normalize_all

FIXTURES = Path(__file__).parent / "fixtures"
PID = "7f000001-0000-4000-8000-000000000001"
NOTE = "DocumentReference/7f000001-0000-4000-8000-000000000012"
POSTGRES_URL = os.environ.get("CHARTDRAFT_TEST_POSTGRES_URL")


def _postgres_param() -> object:
    return pytest.param("postgres", marks=[
        pytest.mark.postgres,
        pytest.mark.skipif(
            not POSTGRES_URL,
            reason="set CHARTDRAFT_TEST_POSTGRES_URL to run the store on PostgreSQL"),
    ])


@pytest.fixture(params=["sqlite", _postgres_param()])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChartStore]:
    if request.param == "sqlite":
        s = ChartStore(f"sqlite:///{tmp_path / 'charts.db'}")
        yield s
        s.close()
        return
    assert POSTGRES_URL
    s = ChartStore(POSTGRES_URL)
    # Each test owns its patients by giving them fresh ids (see _fresh); clean up after.
    yield s
    for p in s.patients():
        if p.id.startswith("t-"):
            s.delete_patient(p.id)
    s.close()


def _fresh(result: LoadResult) -> LoadResult:
    """The fixture chart under a fresh patient id, so parallel PostgreSQL runs do not collide."""
    new = f"t-{uuid.uuid4().hex[:12]}"
    out = []
    for r in result.resources:
        raw = copy.deepcopy(r.resource)
        text = _swap(raw, PID, new)
        rid = new if r.id == PID else f"{r.id}-{new}" if r.patient_id else r.id
        text["id"] = rid
        out.append(LoadedResource(r.resource_type, rid, new if r.patient_id else None, text,
                                  r.source))
    return LoadResult(resources=out)


def _swap(value: object, old: str, new: str) -> dict:
    import json

    return json.loads(json.dumps(value).replace(old, new))


@pytest.fixture
def chart() -> LoadResult:
    return _fresh(load_path(FIXTURES / "chart_bundle.json"))


def _pid(chart: LoadResult) -> str:
    return next(r.id for r in chart.resources if r.resource_type == "Patient")


def test_upsert_then_read_back(store: ChartStore, chart: LoadResult) -> None:
    evidence, _ = normalize_all(chart.resources)
    counts = store.upsert(chart.resources, evidence)
    # The 14 patient resources are new; the 3 shared directory entries (Practitioner,
    # Organization, Medication) may already be there from an earlier test on PostgreSQL.
    assert counts.changed == 0 and counts.new >= 14 and counts.total == 17
    pid = _pid(chart)
    row = store.patient(pid)
    assert row is not None and row.name == "Testa Synthetic" and row.gender == "female"
    mine = [e for e in evidence if e.patient_id == pid]
    assert row.evidence == len(mine)
    assert {e.id for e in store.evidence_for(pid)} == {e.id for e in mine}
    meds = store.evidence_for(pid, resource_types=["MedicationRequest"])
    assert len(meds) == 1 and meds[0].data["frequency"] == "twice daily"
    # Evidence comes back equal to what went in.
    assert store.get_evidence(meds[0].id) == next(e for e in evidence if e.id == meds[0].id)


def test_reupsert_same_content_changes_nothing(store: ChartStore, chart: LoadResult) -> None:
    evidence, _ = normalize_all(chart.resources)
    store.upsert(chart.resources, evidence)
    version = store.chart_version(_pid(chart))
    counts = store.upsert(chart.resources, evidence)
    assert (counts.new, counts.changed, counts.unchanged) == (0, 0, 17)
    assert store.chart_version(_pid(chart)) == version


def test_changed_resource_replaces_its_evidence(store: ChartStore, chart: LoadResult) -> None:
    evidence, _ = normalize_all(chart.resources)
    store.upsert(chart.resources, evidence)
    pid = _pid(chart)
    before = store.chart_version(pid)
    note_ref = next(r for r in chart.resources if r.resource_type == "DocumentReference")
    assert len(store.evidence_for(pid, ["DocumentReference"])) == 4
    # The note is amended to a single short paragraph: four old units must become one.
    import base64

    note = copy.deepcopy(note_ref)
    note.resource["content"][0]["attachment"]["data"] = base64.b64encode(
        b"Amended: patient doing well, no changes to medicines.").decode()
    new_ev, _ = normalize_all([note])
    counts = store.upsert([note], new_ev)
    assert (counts.new, counts.changed, counts.unchanged) == (0, 1, 0)
    units = store.evidence_for(pid, ["DocumentReference"])
    assert [u.id for u in units] == [f"{note.ref}#1"] and "Amended" in units[0].text
    assert store.chart_version(pid) != before
    raw = store.get_resource(f"{note.ref}#1")
    assert raw is not None and raw["content"] == note.resource["content"]


def test_get_many_keeps_order_and_drops_unknown(store: ChartStore, chart: LoadResult) -> None:
    evidence, _ = normalize_all(chart.resources)
    store.upsert(chart.resources, evidence)
    ids = [evidence[3].id, "Condition/does-not-exist", evidence[0].id]
    assert [e.id for e in store.get_many(ids)] == [evidence[3].id, evidence[0].id]
    assert store.get_evidence("Condition/does-not-exist") is None
    assert store.get_resource("Patient/does-not-exist") is None


def test_delete_patient(store: ChartStore, chart: LoadResult) -> None:
    evidence, _ = normalize_all(chart.resources)
    store.upsert(chart.resources, evidence)
    pid = _pid(chart)
    assert store.delete_patient(pid) == 14  # all but Practitioner, Organization, Medication
    assert store.patient(pid) is None and store.evidence_for(pid) == []
    assert store.get_resource(f"Patient/{pid}") is None


def test_versions_are_per_patient(store: ChartStore) -> None:
    a = _fresh(load_path(FIXTURES / "chart_bundle.json"))
    b = _fresh(load_path(FIXTURES / "chart_bundle.json"))
    ea, _ = normalize_all(a.resources)
    store.upsert(a.resources, ea)
    va, vb = store.chart_version(_pid(a)), store.chart_version(_pid(b))
    eb, _ = normalize_all(b.resources)
    store.upsert(b.resources, eb)
    assert store.chart_version(_pid(a)) == va  # untouched by the other patient's load
    assert store.chart_version(_pid(b)) != vb


def test_sqlite_uses_wal_so_cli_and_service_can_share(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "charts.db"
    store = ChartStore(f"sqlite:///{path}")
    store.patients()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()


def test_bad_urls_raise_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="not a database URL"):
        ChartStore("definitely not a url")
    with pytest.raises(StoreError, match="cannot open chart store"):
        ChartStore("postgresql+psycopg://nobody:secret@127.0.0.1:1/none")


def _issue(pid: str | None, rid: str, message: str = "invalid field criticality") -> LoadIssue:
    return LoadIssue("bundle.json", "entry 3", "AllergyIntolerance", rid, message, patient_id=pid)


def test_record_issues_is_per_patient_and_idempotent(store: ChartStore, chart: LoadResult) -> None:
    evidence, _ = normalize_all(chart.resources)
    store.upsert(chart.resources, evidence)  # so the PostgreSQL clean-up finds this patient
    pid = _pid(chart)
    rid = f"bad-{uuid.uuid4().hex[:8]}"
    # An issue with no patient cannot be shown on anyone's draft: it is not recorded.
    assert store.record_issues([_issue(pid, rid), _issue(None, "orphan")]) == 1
    assert store.record_issues([_issue(pid, rid, "second message")]) == 1
    got = store.issues_for(pid)
    assert len(got) == 1
    assert got[0]["resource_type"] == "AllergyIntolerance" and got[0]["resource_id"] == rid
    assert got[0]["message"] == "second message" and got[0]["source"] == "bundle.json"
    assert got[0]["time"]
    assert store.issues_for(f"t-{uuid.uuid4().hex[:12]}") == []
    # The old positional constructor still works, with no patient.
    assert LoadIssue("s", "l", None, None, "m").patient_id is None


def test_loading_the_resource_clears_its_issue(store: ChartStore, chart: LoadResult) -> None:
    pid = _pid(chart)
    allergy = next(r for r in chart.resources if r.resource_type == "AllergyIntolerance")
    other = f"other-{uuid.uuid4().hex[:8]}"
    store.record_issues([_issue(pid, allergy.id), _issue(pid, other)])
    assert len(store.issues_for(pid)) == 2
    evidence, _ = normalize_all(chart.resources)
    store.upsert(chart.resources, evidence)
    # Only the resource that now loaded is readable again; the other stays unread.
    assert [i["resource_id"] for i in store.issues_for(pid)] == [other]
    store.delete_patient(pid)
    assert store.issues_for(pid) == []


def test_loader_names_the_patient_of_a_skipped_resource(chart: LoadResult) -> None:
    pid = _pid(chart)
    allergy = next(r for r in chart.resources if r.resource_type == "AllergyIntolerance")
    bad = {**copy.deepcopy(allergy.resource), "criticality": 42}
    result = load_json({"resourceType": "Bundle", "type": "collection",
                        "entry": [{"resource": bad}]})
    assert result.resources == []
    [issue] = result.issues
    assert (issue.patient_id, issue.resource_type, issue.resource_id) == (
        pid, "AllergyIntolerance", allergy.id)
    assert "criticality" in issue.message
