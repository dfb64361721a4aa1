"""Loading FHIR: bundles (urn:uuid mapping), NDJSON folders, broken input, idempotent reloads."""

from __future__ import annotations

import json
from pathlib import Path

from retrieval.fhir_load import LoadIssue, load_bytes, load_json, load_path, patient_of

FIXTURES = Path(__file__).parent / "fixtures"
PID = "7f000001-0000-4000-8000-000000000001"


def _patient(pid: str) -> dict:
    return {"resourceType": "Patient", "id": pid, "name": [{"family": "Synthetic"}],
            "gender": "other", "birthDate": "1980-01-01"}


def _condition(cid: str, pid: str, text: str = "Asthma") -> dict:
    return {"resourceType": "Condition", "id": cid, "subject": {"reference": f"Patient/{pid}"},
            "code": {"text": text}}


def _ndjson(*objs: dict) -> str:
    return "\n".join(json.dumps(o) for o in objs) + "\n"


def test_transaction_bundle_maps_urn_uuid_references() -> None:
    result = load_path(FIXTURES / "chart_bundle.json")
    assert result.issues == [] and len(result.resources) == 17
    by_ref = {r.ref: r for r in result.resources}
    mr = by_ref["MedicationRequest/7f000001-0000-4000-8000-000000000005"]
    assert mr.resource["subject"]["reference"] == f"Patient/{PID}"
    assert mr.resource["medicationReference"]["reference"] == (
        "Medication/7f000001-0000-4000-8000-000000000004")
    assert mr.patient_id == PID
    assert not any("urn:uuid" in json.dumps(r.resource) for r in result.resources)
    # Coverage finds its patient through beneficiary, AllergyIntolerance through patient.
    assert by_ref["Coverage/7f000001-0000-4000-8000-000000000014"].patient_id == PID
    assert by_ref["AllergyIntolerance/7f000001-0000-4000-8000-000000000006"].patient_id == PID
    assert by_ref["Practitioner/7f000001-0000-4000-8000-000000000016"].patient_id is None


def test_searchset_with_absolute_urls_and_an_outcome_entry() -> None:
    base = "https://fhir.example.org/r4"
    bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
        {"fullUrl": f"{base}/Patient/p9", "resource": _patient("p9")},
        {"fullUrl": f"{base}/Condition/c9", "resource": {
            **_condition("c9", "ignored"), "subject": {"reference": f"{base}/Patient/p9"}}},
        {"resource": {"resourceType": "OperationOutcome", "issue": [
            {"severity": "information", "code": "informational"}]}, "search": {"mode": "outcome"}},
    ]}
    result = load_json(bundle, source="search")
    assert result.issues == []
    refs = {r.ref: r for r in result.resources}
    assert set(refs) == {"Patient/p9", "Condition/c9"}
    assert refs["Condition/c9"].resource["subject"]["reference"] == "Patient/p9"
    assert refs["Condition/c9"].patient_id == "p9"
    assert any("OperationOutcome" in n for n in result.notices)


def test_collection_bundle_entry_without_id_takes_it_from_fullurl() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:11111111-1111-4111-8111-111111111111",
         "resource": {k: v for k, v in _patient("x").items() if k != "id"}}]}
    [r] = load_json(bundle).resources
    assert r.id == "11111111-1111-4111-8111-111111111111"


def test_ndjson_folder_skips_non_fhir_files_with_notices(tmp_path: Path) -> None:
    (tmp_path / "Patient.000.ndjson").write_text(_ndjson(_patient("p1"), _patient("p2")))
    (tmp_path / "Condition.000.ndjson").write_text(
        _ndjson(_condition("c1", "p1"), _condition("c2", "p2")))
    (tmp_path / "log.ndjson").write_text(_ndjson({"eventId": "kickoff"}, {"eventId": "done"}))
    (tmp_path / "LICENSE").write_text("CC0")
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "one.json").write_text(json.dumps(_patient("p3")))
    result = load_path(tmp_path)
    assert result.issues == []
    assert result.patient_ids() == {"p1", "p2", "p3"}
    assert len(result.resources) == 5
    assert any("LICENSE" in n for n in result.notices)
    assert any("log.ndjson" in n for n in result.notices)


def test_broken_file_reports_each_entry_and_the_rest_loads(tmp_path: Path) -> None:
    lines = [
        json.dumps(_condition("ok1", "p1")),
        '{"resourceType": "Condition", "id": "broken", ',  # truncated JSON
        json.dumps({"resourceType": "Spaceship", "id": "s1"}),  # not a FHIR type
        json.dumps({**_condition("bad2", "p1"), "onsetDateTime": "yesterday"}),  # invalid field
        json.dumps({"resourceType": "Condition", "subject": {"reference": "Patient/p1"},
                    "code": {"text": "no id"}}),  # missing id
        json.dumps(_condition("ok2", "p1")),
    ]
    (tmp_path / "Condition.000.ndjson").write_text("\n".join(lines) + "\n")
    (tmp_path / "bad.json").write_text('{"resourceType": "Bundle", "entry": [')
    result = load_path(tmp_path)
    assert sorted(r.id for r in result.resources) == ["ok1", "ok2"]
    by_loc = {(Path(i.source).name, i.location): i for i in result.issues}
    assert set(by_loc) == {("Condition.000.ndjson", "line 2"), ("Condition.000.ndjson", "line 3"),
                           ("Condition.000.ndjson", "line 4"), ("Condition.000.ndjson", "line 5"),
                           ("bad.json", "line 1 column 38")}  # where the JSON stops
    assert "not valid JSON" in by_loc[("Condition.000.ndjson", "line 2")].message
    assert "unknown resourceType 'Spaceship'" in by_loc[("Condition.000.ndjson", "line 3")].message
    invalid = by_loc[("Condition.000.ndjson", "line 4")]
    assert (invalid.resource_type, invalid.resource_id) == ("Condition", "bad2")
    assert "onsetDateTime" in invalid.message
    assert "no id" in by_loc[("Condition.000.ndjson", "line 5")].message
    # One readable line each: file, where, what, why.
    text = str(invalid)
    assert "Condition.000.ndjson line 4: Condition/bad2: invalid field onsetDateTime" in text


def test_bundle_with_one_bad_entry_keeps_the_others() -> None:
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": _patient("p1")},
        {"resource": {**_patient("p2"), "gender": 42}},
        {"resource": _condition("c1", "p1")}]}
    result = load_json(bundle, source="upload.json")
    assert [r.ref for r in result.resources] == ["Patient/p1", "Condition/c1"]
    [issue] = result.issues
    assert issue == LoadIssue("upload.json", "entry 1", "Patient", "p2", issue.message)
    assert "gender" in issue.message


def test_load_bytes_reads_json_and_ndjson_bodies() -> None:
    one = load_bytes(json.dumps(_patient("p1")).encode())
    assert [r.ref for r in one.resources] == ["Patient/p1"]
    many = load_bytes(_ndjson(_patient("p1"), _condition("c1", "p1")).encode(), source="post")
    assert [r.ref for r in many.resources] == ["Patient/p1", "Condition/c1"]
    bad = load_bytes(b'{"resourceType": ', source="post")
    assert bad.resources == [] and "not valid JSON" in bad.issues[0].message
    not_fhir = load_bytes(b'{"hello": "world"}')
    assert "no resourceType" in not_fhir.issues[0].message


def test_reload_is_idempotent_and_last_copy_wins(tmp_path: Path) -> None:
    (tmp_path / "a.ndjson").write_text(_ndjson(_patient("p1"), _condition("c1", "p1", "Old")))
    (tmp_path / "b.ndjson").write_text(_ndjson(_condition("c1", "p1", "New")))
    first, second = load_path(tmp_path), load_path(tmp_path)
    assert [r.resource for r in first.resources] == [r.resource for r in second.resources]
    conds = [r for r in first.resources if r.resource_type == "Condition"]
    assert len(conds) == 1 and conds[0].resource["code"]["text"] == "New"
    assert any("more than once" in n for n in first.notices)


def test_patient_of_follows_the_usual_reference_fields() -> None:
    assert patient_of({"resourceType": "Patient", "id": "p"}) == "p"
    coverage = {"resourceType": "Coverage", "beneficiary": {"reference": "Patient/b"}}
    assert patient_of(coverage) == "b"
    assert patient_of({"resourceType": "Task", "for": {"reference": "Patient/t"}}) == "t"
    assert patient_of({"resourceType": "Condition", "subject": {"reference": "Group/g"}}) is None


def test_missing_path_is_an_issue_not_a_crash(tmp_path: Path) -> None:
    result = load_path(tmp_path / "nope.json")
    assert result.resources == [] and "no such file" in result.issues[0].message
