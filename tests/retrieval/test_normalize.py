"""Normalization: one test per resource type over a hand-written synthetic chart."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest

from retrieval.evidence import Evidence
from retrieval.fhir_load import LoadedResource, load_path
from retrieval.normalize import normalize_all
from retrieval.normalize_meds import frequency_text
from retrieval.normalize_notes import MAX_CHARS, split_sections

FIXTURES = Path(__file__).parent / "fixtures"
PID = "7f000001-0000-4000-8000-000000000001"


def _rid(n: int) -> str:
    return f"7f000001-0000-4000-8000-{n:012d}"


@pytest.fixture(scope="module")
def chart() -> dict[str, Evidence]:
    loaded = load_path(FIXTURES / "chart_bundle.json")
    assert not loaded.issues
    evidence, issues = normalize_all(loaded.resources)
    assert issues == []
    return {e.id: e for e in evidence}


# (evidence id, data fields that must hold, fragments the readable text must contain)
CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    # Patient: demographics and the identifiers the PHI check needs
    (f"Patient/{_rid(1)}", {"name": "Testa Synthetic", "birth_date": "1957-02-03",
                            "gender": "female", "race": "White",
                            "ethnicity": "Not Hispanic or Latino", "mrn": ["MRN-000123"],
                            "phone": ["555-0100"]}, ["Testa Synthetic", "1957-02-03"]),
    # Encounter: class, type, period, reason, discharge disposition
    (f"Encounter/{_rid(2)}", {"class": "inpatient encounter", "type": "Hospital admission",
                              "start": "2024-03-01T08:00:00Z", "end": "2024-03-04T12:00:00Z",
                              "reason": "Heart failure", "discharge_disposition": "Home"},
     ["2024-03-01 to 2024-03-04"]),
    # Condition: statuses, onset, ICD-10 and SNOMED codes
    (f"Condition/{_rid(3)}", {"clinical_status": "active", "verification_status": "confirmed",
                              "onset": "2019-05-06", "abatement": None, "icd10": ["I50.9"],
                              "snomed": ["84114007"]}, ["Heart failure", "since 2019-05-06"]),
    # Medication: strength parsed from the RxNorm name
    (f"Medication/{_rid(4)}", {"rxnorm": "313988", "strength_value": 40, "strength_unit": "mg"},
     ["40 mg"]),
    # MedicationRequest via medicationReference: drug resolved, dose, route, frequency
    (f"MedicationRequest/{_rid(5)}", {"drug": "Furosemide 40 MG Oral Tablet", "rxnorm": "313988",
                                      "strength_value": 40, "strength_unit": "mg",
                                      "dose_value": 1, "dose_unit": "tablet", "route": "oral",
                                      "frequency": "twice daily", "as_needed": False,
                                      "status": "active", "intent": "order",
                                      "authored_on": "2024-03-04",
                                      "timing": {"frequency": 2, "period": 1, "periodUnit": "d"}},
     ["Furosemide 40 mg oral tablet", "twice daily", "by mouth", "active since 2024-03-04"]),
    # AllergyIntolerance: substance, criticality, reactions with severity
    (f"AllergyIntolerance/{_rid(6)}", {"substance": "Penicillin", "criticality": "high",
                                       "category": ["medication"], "clinical_status": "active",
                                       "verification_status": "confirmed",
                                       "reactions": [{"manifestation": "Hives",
                                                      "severity": "moderate",
                                                      "substance": None}]},
     ["Penicillin", "Hives"]),
    # Observation: value with unit, reference range, interpretation, date
    (f"Observation/{_rid(7)}", {"loinc": "4548-4", "value": 7.2, "unit": "%",
                                "reference_low": 4, "reference_high": 5.6,
                                "interpretation": "High", "effective": "2024-03-02T09:00:00Z"},
     ["7.2 %", "2024-03-02"]),
    # Observation with components (blood pressure)
    (f"Observation/{_rid(8)}", {"value": None, "components": [
        {"name": "Systolic blood pressure", "loinc": "8480-6", "value": 142, "unit": "mm[Hg]"},
        {"name": "Diastolic blood pressure", "loinc": "8462-4", "value": 88, "unit": "mm[Hg]"}]},
     ["142 mmHg", "88 mmHg"]),
    # DiagnosticReport: result references rewritten from urn:uuid
    (f"DiagnosticReport/{_rid(9)}", {"result_ids": [f"Observation/{_rid(7)}"],
                                     "conclusion": "Above goal."}, ["Above goal."]),
    # Procedure: performed date and reason
    (f"Procedure/{_rid(10)}", {"performed": "2024-03-02T14:00:00Z", "reason": "Heart failure",
                               "snomed": "40701008"}, ["Echocardiography", "2024-03-02"]),
    # Immunization: vaccine and occurrence
    (f"Immunization/{_rid(11)}", {"vaccine": "Influenza, seasonal, injectable, preservative free",
                                  "cvx": "140", "occurrence": "2023-10-01"}, ["Influenza"]),
    # DocumentReference: base64 decoded and split per heading (#2 is the HPI section)
    (f"DocumentReference/{_rid(12)}#2", {"note_type": "Discharge summary",
                                         "section": "History of Present Illness",
                                         "section_index": 2,
                                         "encounter": f"Encounter/{_rid(2)}"},
     ["ankle swelling"]),
    # DocumentReference: an ALL-CAPS "MEDICATIONS:" heading starts its own section
    (f"DocumentReference/{_rid(12)}#3", {"section": "Medications", "section_index": 3},
     ["Furosemide 40 mg by mouth daily"]),
    # CarePlan: category and activities
    (f"CarePlan/{_rid(13)}", {"name": "Heart failure self management plan", "activities": [
        {"activity": "Low salt diet", "status": "in-progress"},
        {"activity": "Daily weights", "status": "in-progress"}]}, ["Low salt diet"]),
    # Coverage: payer, plan, member id (beneficiary gives the patient)
    (f"Coverage/{_rid(14)}", {"payer": "Example Synthetic Health Plan", "plan": "Gold PPO",
                              "member_id": "SYN-44556677"}, ["Gold PPO"]),
    # ServiceRequest: CPT code, intent, reason
    (f"ServiceRequest/{_rid(15)}", {"cpt": "93306", "intent": "order", "status": "active",
                                    "reason": "Heart failure"}, ["CPT 93306"]),
    # Practitioner: name and NPI (no patient)
    (f"Practitioner/{_rid(16)}", {"name": "Dr. Pat Example", "npi": "9999999901"},
     ["Dr. Pat Example"]),
    # Organization: name and NPI (no patient)
    (f"Organization/{_rid(17)}", {"name": "Synthetic General Hospital", "npi": "9999999902"},
     ["Synthetic General Hospital"]),
]


@pytest.mark.parametrize(("eid", "fields", "fragments"), CASES, ids=[c[0].split("/")[0] + c[0][-3:]
                                                                    for c in CASES])
def test_each_resource_type(
    chart: dict[str, Evidence], eid: str, fields: dict[str, Any], fragments: list[str]
) -> None:
    e = chart[eid]
    for key, want in fields.items():
        assert e.data.get(key) == want, f"{eid} data[{key!r}]"
    for frag in fragments:
        assert frag in e.text, f"{frag!r} not in {e.text!r}"
    assert e.kind == "chart" and e.title and e.resource_type == eid.split("/")[0]
    assert "status" in e.data
    directory = e.resource_type in ("Practitioner", "Organization", "Medication")
    assert e.patient_id == (None if directory else PID)


def test_codes_keep_system_code_display(chart: dict[str, Evidence]) -> None:
    codes = {c.key(): c.display for c in chart[f"Condition/{_rid(3)}"].codes}
    assert codes["http://hl7.org/fhir/sid/icd-10-cm|I50.9"] == "Heart failure, unspecified"
    assert codes["http://snomed.info/sct|84114007"] == "Heart failure"


def test_note_sections_are_numbered_in_order(chart: dict[str, Evidence]) -> None:
    units = sorted((e for e in chart.values() if e.id.startswith("DocumentReference/")),
                   key=lambda e: e.data["section_index"])
    assert [e.id.rsplit("#", 1)[1] for e in units] == ["1", "2", "3", "4"]
    assert all(e.data["full_text_chars"] > 0 for e in units)
    assert "Daily weights" in units[-1].text


def _res(rtype: str, body: dict[str, Any]) -> LoadedResource:
    return LoadedResource(rtype, "x1", "p1", {"resourceType": rtype, "id": "x1", **body}, "test")


def test_contained_medication_and_as_needed() -> None:
    mr = _res("MedicationRequest", {
        "status": "active", "intent": "order", "subject": {"reference": "Patient/p1"},
        "contained": [{"resourceType": "Medication", "id": "m", "code": {"coding": [{
            "system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "198440",
            "display": "Acetaminophen 500 MG Oral Tablet"}]}}],
        "medicationReference": {"reference": "#m"},
        "dosageInstruction": [{"asNeededCodeableConcept": {"text": "pain"},
                               "timing": {"repeat": {"frequency": 1, "period": 6,
                                                     "periodUnit": "h"}},
                               "doseAndRate": [{"doseQuantity": {"value": 2}}]}]})
    [e], issues = normalize_all([mr])
    assert issues == []
    assert e.data["drug"] == "Acetaminophen 500 MG Oral Tablet"
    assert e.data["as_needed"] is True and e.data["as_needed_for"] == "pain"
    assert e.data["frequency"] == "every 6 hours"
    assert "2 tablets" in e.text and "as needed for pain" in e.text


def test_stopped_order_keeps_its_reason() -> None:
    mr = _res("MedicationRequest", {
        "status": "stopped", "intent": "order", "subject": {"reference": "Patient/p1"},
        "statusReason": {"text": "Cough"}, "authoredOn": "2026-01-05",
        "medicationCodeableConcept": {"text": "Lisinopril 10 MG Oral Tablet"}})
    [e], _ = normalize_all([mr])
    assert e.data["status_reason"] == "Cough"
    assert "stopped" in e.text and "reason for status: Cough" in e.text


@pytest.mark.parametrize(("timing", "want"), [
    ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}, "once daily"),  # QD
    ({"repeat": {"frequency": 3, "period": 1, "periodUnit": "d"}}, "three times daily"),  # TID
    ({"repeat": {"frequency": 1, "period": 8, "periodUnit": "h"}}, "every 8 hours"),  # q8h
    ({"repeat": {"frequency": 1, "period": 1, "periodUnit": "wk"}}, "once weekly"),  # weekly
    ({"code": {"coding": [{"code": "BID"}]}}, "twice daily"),  # timing abbreviation only
    ({}, None),  # nothing said, nothing invented
])
def test_frequency_text(timing: dict[str, Any], want: str | None) -> None:
    assert frequency_text(timing) == want


def test_long_note_is_cut_into_bounded_units() -> None:
    text = "\n\n".join(f"Paragraph {i}. " + "word " * 120 for i in range(12))
    units = split_sections(text)
    assert len(units) > 1
    assert all(len(body) <= MAX_CHARS for _, body in units)
    assert "".join(body for _, body in units).count("Paragraph") == 12


def test_odd_shapes_are_tolerated() -> None:
    # Shapes no reader expects (not FHIR-valid, but a reader must not trip on them).
    odd = _res("Observation", {"status": "final", "code": {"text": "Weight"},
                               "referenceRange": [{"low": {"value": "not-a-number"}}],
                               "component": "oops", "valueQuantity": 12})
    [e], issues = normalize_all([odd])
    assert issues == []
    assert e.data["value"] is None and e.data["components"] == []


def test_malformed_but_parsed_resource_is_reported_not_raised() -> None:
    bad = _res("Encounter", {"status": "finished", "hospitalization": "home"})
    good = _res("Condition", {"code": {"text": "Asthma"}})
    good.id = "x2"
    evidence, issues = normalize_all([bad, good])
    assert [e.id for e in evidence] == ["Condition/x2"]
    [issue] = issues
    assert (issue.resource_type, issue.resource_id) == ("Encounter", "x1")
    assert "could not be normalized" in str(issue)


def test_document_without_inline_text_still_gives_one_unit() -> None:
    doc = _res("DocumentReference", {"status": "current", "description": "Scanned consent",
                                     "content": [{"attachment": {"url": "http://example.org/x"}}]})
    [e], _ = normalize_all([doc])
    assert e.id == "DocumentReference/x1" and "Scanned consent" in e.text


def test_html_note_is_stripped() -> None:
    html = "<html><body><h1>PLAN:</h1><p>Walk daily &amp; rest.</p></body></html>"
    doc = _res("DocumentReference", {"status": "current", "content": [{"attachment": {
        "contentType": "text/html", "data": base64.b64encode(html.encode()).decode()}}]})
    units, _ = normalize_all([doc])
    assert any("Walk daily & rest." in u.text for u in units)
    assert all("<p>" not in u.text for u in units)


@pytest.mark.parametrize(("name", "expected"), [
    ("Metformin 500 MG Oral Tablet", (500, "mg")),
    ("1 ML medroxyprogesterone acetate 150 MG/ML Injection", (150, "mg/ml")),
    ("3 ML insulin lispro 100 UNT/ML Pen Injector", (100, "unt/ml")),
    ("72 HR fentanyl 0.025 MG/HR Transdermal System", (0.025, "mg/hr")),
    ("Amoxicillin 250 MG / Clavulanate 125 MG Oral Tablet", (250, "mg")),
    ("NDA020503 200 ACTUAT Albuterol 0.09 MG/ACTUAT Metered Dose Inhaler", (0.09, "mg/actuat")),
    ("Sodium Chloride 9 MG/ML Injectable Solution", (9, "mg/ml")),
    ("10 ML Sodium Chloride", (10, "ml")),  # a quantity with no strength after it stays
])
def test_strength_is_the_ingredient_strength_not_the_package_size(
        name: str, expected: tuple[float, str]) -> None:
    from retrieval.normalize_meds import strength_of

    assert strength_of(name) == expected


def test_appointment_belongs_to_the_patient_among_its_participants() -> None:
    from retrieval.fhir_load import load_json

    appt = {"resourceType": "Appointment", "id": "ap1", "status": "booked",
            "serviceType": [{"text": "Cardiology follow-up"}],
            "start": "2026-12-03T09:30:00Z", "end": "2026-12-03T10:00:00Z",
            "reasonCode": [{"text": "Heart failure"}],
            "participant": [
                {"actor": {"reference": "Patient/p-appt", "display": "Synthetic Patient"},
                 "status": "accepted"},
                {"actor": {"reference": "Practitioner/dr9", "display": "Dr. Synthetic Heart"},
                 "status": "accepted"},
                {"actor": {"reference": "Location/loc1", "display": "Heart Clinic"},
                 "status": "accepted"}]}
    loaded = load_json({"resourceType": "Bundle", "type": "collection",
                        "entry": [{"resource": appt}]}, source="test")
    assert loaded.issues == [] and loaded.resources[0].patient_id == "p-appt"
    [e], issues = normalize_all(loaded.resources)
    assert issues == [] and e.patient_id == "p-appt" and e.date == "2026-12-03T09:30:00Z"
    assert e.data["with"] == ["Dr. Synthetic Heart"] and e.data["location"] == "Heart Clinic"
    assert e.data["status"] == "booked" and e.data["reason"] == "Heart failure"
    for part in ("Cardiology follow-up", "booked", "2026-12-03", "Dr. Synthetic Heart",
                 "Heart Clinic"):
        assert part in e.text


def test_fhir_links_are_kept_as_evidence_ids() -> None:
    """reasonReference, basedOn, partOf, Encounter.diagnosis, CarePlan.addresses and
    Condition.evidence survive normalization as ``data["links"]`` ids (``urn:uuid:`` rewritten);
    a reasonReference without a display is named by its target."""
    from retrieval.fhir_load import load_json

    def uid(n: int) -> str:
        return f"urn:uuid:7f000002-0000-4000-8000-{n:012d}"

    def ref(n: int) -> dict[str, str]:
        return {"reference": uid(n)}

    def entry(n: int, res: dict[str, Any]) -> dict[str, Any]:
        res["id"] = uid(n).split(":")[-1]
        return {"fullUrl": uid(n), "resource": res}

    subject = {"subject": ref(1)}
    gout = {"coding": [{"system": "http://snomed.info/sct", "code": "90560007",
                        "display": "Gout"}]}
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        entry(1, {"resourceType": "Patient"}),
        entry(2, {"resourceType": "Condition", "code": gout, **subject,
                  "evidence": [{"detail": [ref(7)]}]}),
        entry(3, {"resourceType": "MedicationRequest", "status": "active", "intent": "order",
                  "medicationCodeableConcept": {"text": "Allopurinol 100 MG Oral Tablet"},
                  "reasonReference": [ref(2)], "basedOn": [ref(6)], **subject}),
        entry(4, {"resourceType": "Encounter", "status": "finished", **subject,
                  "class": {"code": "AMB"},
                  "diagnosis": [{"condition": ref(2)}], "reasonReference": [ref(2)]}),
        entry(5, {"resourceType": "CarePlan", "status": "active", "intent": "plan", **subject,
                  "addresses": [ref(2)], "category": [{"text": "Gout care"}]}),
        entry(6, {"resourceType": "ServiceRequest", "status": "active", "intent": "order",
                  "code": {"text": "Rheumatology referral"}, "reasonReference": [ref(2)],
                  **subject}),
        entry(7, {"resourceType": "Observation", "status": "final",
                  "code": {"text": "Urate"}, "valueQuantity": {"value": 9.1, "unit": "mg/dL"},
                  **subject}),
        entry(8, {"resourceType": "Procedure", "status": "completed",
                  "code": {"text": "Joint aspiration"}, "reasonReference": [ref(2)],
                  "partOf": [ref(4)], **subject}),
    ]}
    loaded = load_json(bundle)
    assert not loaded.issues
    evidence, issues = normalize_all(loaded.resources)
    assert issues == []
    by_id = {e.id: e for e in evidence}
    cond = "Condition/7f000002-0000-4000-8000-000000000002"
    med = by_id["MedicationRequest/7f000002-0000-4000-8000-000000000003"]
    order = "ServiceRequest/7f000002-0000-4000-8000-000000000006"
    assert med.data["links"] == {"reason": [cond], "based_on": [order]}
    assert med.data["reason"] == "Gout"  # no display: the linked Condition's name
    enc = by_id["Encounter/7f000002-0000-4000-8000-000000000004"].data
    assert enc["links"] == {"reason": [cond], "diagnosis": [cond]} and enc["reason"] == "Gout"
    plan = by_id["CarePlan/7f000002-0000-4000-8000-000000000005"].data
    assert plan["links"] == {"addresses": [cond]} and plan["addresses"] == ["Gout"]
    assert by_id["ServiceRequest/7f000002-0000-4000-8000-000000000006"].data["links"] == {
        "reason": [cond]}
    assert by_id[cond].data["links"] == {
        "evidence": ["Observation/7f000002-0000-4000-8000-000000000007"]}
    proc = by_id["Procedure/7f000002-0000-4000-8000-000000000008"].data
    assert proc["links"] == {"reason": [cond],
                             "part_of": ["Encounter/7f000002-0000-4000-8000-000000000004"]}
    assert proc["reason"] == "Gout"
