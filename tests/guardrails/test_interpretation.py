"""Interpretation claims ("elevated", "within normal limits", "well controlled", "positive",
"rising") against the cited Observations: their interpretation code, their reference range, and
the sourced reference-range / target table (issue 11, item 4). Each class has pass and flag rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chartdraft_guardrails.api import check_statement
from chartdraft_guardrails.interpretation import find_claims, reference_table
from chartdraft_guardrails.statement import CheckResult, Statement, worst

from retrieval.evidence import Evidence

SYNTHEA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "synthea-r4-bundles"
PID = "p-interp"


def obs(
    rid: str, name: str, loinc: str | None, value: Any, unit: str | None, when: str, **data: Any
) -> Evidence:
    d = {
        "name": name,
        "loinc": loinc,
        "value": value,
        "unit": unit,
        "effective": when,
        "components": [],
        **data,
    }
    return Evidence(
        id=f"Observation/{rid}",
        patient_id=PID,
        resource_type="Observation",
        title=name,
        text=f"{name}: {value} {unit or ''} on {when}",
        data=d,
        date=when,
    )


def patient(birth: str, sex: str) -> Evidence:
    return Evidence(
        id=f"Patient/{PID}",
        patient_id=PID,
        resource_type="Patient",
        title="Synthetic Patient",
        text="Synthetic Patient",
        data={"birth_date": birth, "gender": sex},
    )


def bp(rid: str, systolic: int, diastolic: int) -> Evidence:
    comps = [
        {"name": "Systolic Blood Pressure", "loinc": "8480-6", "value": systolic, "unit": "mm[Hg]"},
        {
            "name": "Diastolic Blood Pressure",
            "loinc": "8462-4",
            "value": diastolic,
            "unit": "mm[Hg]",
        },
    ]
    data = {
        "name": "Blood pressure panel",
        "loinc": "85354-9",
        "value": None,
        "unit": None,
        "effective": "2023-01-10",
        "components": comps,
    }
    return Evidence(
        id=f"Observation/{rid}",
        patient_id=PID,
        resource_type="Observation",
        title="Blood pressure panel",
        text=f"Blood pressure {systolic}/{diastolic}",
        data=data,
        date="2023-01-10",
    )


BP, BP_OK = bp("bp", 152, 94), bp("bp-ok", 122, 76)
CHART = [
    patient("1960-05-01", "female"),
    obs("a1c-old", "Hemoglobin A1c/Hemoglobin.total in Blood", "4548-4", 7.2, "%", "2022-01-10"),
    obs("a1c", "Hemoglobin A1c/Hemoglobin.total in Blood", "4548-4", 9.1, "%", "2023-01-10"),
    obs("a1c-good", "Hemoglobin A1c/Hemoglobin.total in Blood", "4548-4", 6.4, "%", "2023-06-10"),
    obs("ldl", "Low Density Lipoprotein Cholesterol", "18262-6", 162.3, "mg/dL", "2023-01-10"),
    obs("ldl-ok", "Low Density Lipoprotein Cholesterol", "18262-6", 88.0, "mg/dL", "2023-06-10"),
    obs(
        "egfr",
        "Glomerular filtration rate/1.73 sq M.predicted",
        "33914-3",
        52.0,
        "mL/min/{1.73_m2}",
        "2023-01-10",
    ),
    obs(
        "k",
        "Potassium",
        "2823-3",
        5.9,
        "mmol/L",
        "2023-01-10",
        interpretation="H",
        reference_low=3.5,
        reference_high=5.1,
    ),
    # the Observation's own range wins over the table: 5.0 is high against 3.5-4.8
    obs(
        "k-lab",
        "Potassium",
        "2823-3",
        5.0,
        "mmol/L",
        "2023-02-10",
        reference_low=3.5,
        reference_high=4.8,
    ),
    obs("hgb-low", "Hemoglobin", "718-7", 11.2, "g/dL", "2023-03-01", interpretation="Low"),
    obs("hgb-ok", "Hemoglobin", "718-7", 13.9, "g/dL", "2023-03-04", interpretation="Normal"),
    obs(
        "covid",
        "SARS-CoV-2 RNA Pr Resp NAA+probe",
        "94500-6",
        "Not detected (qualifier value)",
        None,
        "2023-01-12",
    ),
    obs(
        "pain", "Pain severity - 0-10 verbal numeric rating", "72514-3", 4, "{score}", "2023-01-10"
    ),
    obs("bmi", "Body mass index (BMI) [Ratio]", "39156-5", 29.38, "kg/m2", "2023-01-10"),
    obs("temp", "Body temperature", "8310-5", 101.3, "[degF]", "2023-01-10"),
    BP,
    BP_OK,
    Evidence(
        id="MedicationRequest/lis",
        patient_id=PID,
        resource_type="MedicationRequest",
        title="lisinopril 20 MG Oral Tablet",
        text="lisinopril 20 mg oral tablet, active",
        data={
            "drug": "lisinopril 20 MG Oral Tablet",
            "status": "active",
            "strength_value": 20,
            "strength_unit": "mg",
        },
    ),
]


def run(chart: list[Evidence], text: str, cites: list[str]) -> list[CheckResult]:
    by_id = {e.id: e for e in chart}
    return check_statement(
        Statement(text=text, citations=cites),
        cited=[by_id[c] for c in cites],
        chart=chart,
        shown_ids=set(by_id),
        patient_id=next(e.patient_id for e in chart if e.resource_type == "Patient") or "",
        doc_type="summary",
    )


def interp(res: list[CheckResult]) -> list[CheckResult]:
    return [r for r in res if r.check == "interpretation"]


CASES = [
    # (class, statement, citations, expected interpretation verdict, word the reason must name)
    ("target", "Her HbA1c of 9.1% is well controlled.", ["a1c"], "unsupported", "<7.0"),
    ("target", "Her HbA1c of 6.4% is at goal.", ["a1c-good"], "supported", None),
    ("target", "Her HbA1c of 9.1% is above goal.", ["a1c"], "supported", None),
    ("target", "Her HbA1c of 6.4% is poorly controlled.", ["a1c-good"], "unsupported", "6.4"),
    ("target", "Her blood pressure of 152/94 is at goal.", ["bp"], "unsupported", "mm[Hg]"),
    ("target", "Her blood pressure, 122/76, is well controlled.", ["bp-ok"], "supported", None),
    ("target", "Her pain score of 4 is well controlled.", ["pain"], "not_verified", "target"),
    ("level", "Her LDL of 162 mg/dL is elevated.", ["ldl"], "supported", None),
    ("level", "Her LDL of 162 mg/dL is within normal limits.", ["ldl"], "unsupported", "162"),
    ("level", "Her LDL was normal at 88 mg/dL.", ["ldl-ok"], "supported", None),
    ("level", "Her LDL of 88 mg/dL is high.", ["ldl-ok"], "unsupported", "88"),
    ("level", "Potassium was high at 5.9 mmol/L.", ["k"], "supported", None),
    ("level", "Potassium was normal at 5.9.", ["k"], "unsupported", "'H'"),
    ("level", "Potassium was elevated at 5.0 mmol/L.", ["k-lab"], "supported", None),
    ("level", "Potassium was normal at 5.0 mmol/L.", ["k-lab"], "unsupported", "3.5-4.8"),
    ("level", "Her blood pressure was 152/94, which is high.", ["bp"], "supported", None),
    ("level", "Her blood pressure of 152/94 is normal.", ["bp"], "unsupported", "mm[Hg]"),
    ("level", "Her potassium is not elevated at 5.9.", ["k"], "unsupported", "'H'"),
    ("level", "Her pain score was 4, which is high.", ["pain"], "not_verified", "pain"),
    (
        "values",
        "Her hemoglobin was low at 11.2 and normal at 13.9 three days later.",
        ["hgb-low", "hgb-ok"],
        "supported",
        None,
    ),
    (
        "values",
        "Her hemoglobin was normal at 11.2 and low at 13.9 three days later.",
        ["hgb-low", "hgb-ok"],
        "unsupported",
        None,
    ),
    ("severity", "Her eGFR is mildly reduced at 52 mL/min/1.73 m².", ["egfr"], "supported", None),
    ("severity", "Her eGFR is severely reduced at 52.", ["egfr"], "unsupported", "KDIGO"),
    ("severity", "Her LDL of 162 is severely elevated.", ["ldl"], "unsupported", ">=190"),
    ("outcome", "Her COVID-19 test was negative.", ["covid"], "supported", None),
    ("outcome", "Her COVID-19 test was positive.", ["covid"], "unsupported", "Not detected"),
    ("trend", "Her HbA1c rose from 7.2% to 9.1%.", ["a1c-old", "a1c"], "supported", None),
    ("trend", "Her HbA1c is improving, now 9.1%.", ["a1c-old", "a1c"], "unsupported", "7.2"),
    ("trend", "Her HbA1c is worsening, now 9.1%.", ["a1c-old", "a1c"], "supported", None),
    ("trend", "Her HbA1c fell from 9.1% to 6.4%.", ["a1c", "a1c-good"], "supported", None),
    ("trend", "Her HbA1c is rising, 9.1% to 6.4%.", ["a1c", "a1c-good"], "unsupported", "6.4"),
    ("trend", "Her HbA1c is rising.", ["a1c"], "not_verified", "two cited values"),
    ("trend", "Her HbA1c rose steadily.", ["a1c-old", "a1c", "a1c-good"], "unsupported", "6.4"),
    ("trend", "Her HbA1c rose steadily.", ["a1c-old", "a1c"], "supported", None),
    ("units", "She was febrile at 101.3 °F.", ["temp"], "supported", None),
    ("units", "Her temperature was normal at 101.3 °F.", ["temp"], "unsupported", "36.5-37.3"),
    ("category", "Her BMI of 29.4 puts her in the obese range.", ["bmi"], "unsupported", "30"),
    ("category", "Her BMI of 29.4 puts her in the overweight range.", ["bmi"], "supported", None),
    (
        "uncited",
        "Her blood pressure is now well controlled.",
        ["MedicationRequest/lis"],
        "not_verified",
        "blood pressure",
    ),
]


@pytest.mark.parametrize(("cls", "text", "cites", "verdict", "named"), CASES)
def test_interpretation_claims(
    cls: str, text: str, cites: list[str], verdict: str, named: str | None
) -> None:
    ids = [c if "/" in c else f"Observation/{c}" for c in cites]
    res = interp(run(CHART, text, ids))
    assert res, f"[{cls}] no interpretation result for {text!r}"
    worst_verdict = worst(res)
    assert worst_verdict == verdict, [r.reason for r in res]
    if named:
        assert any(named in r.reason for r in res if r.verdict == verdict), [r.reason for r in res]


@pytest.mark.parametrize(
    "text",
    [
        "Take lisinopril 20 mg for high blood pressure.",
        "Follow a low-salt diet and return to normal activities.",
        "Keep your leg elevated when sitting.",
        "Her LDL cholesterol was 88 mg/dL.",  # 'low density' is a name, not a claim
        "Take low-dose aspirin daily.",
    ],
)
def test_words_that_are_not_interpretations(text: str) -> None:
    assert find_claims(text.lower()) == [], find_claims(text.lower())


def test_no_claim_no_interpretation_result() -> None:
    assert interp(run(CHART, "Her LDL was 162.3 mg/dL.", ["Observation/ldl"])) == []


def test_age_decides_the_table_row() -> None:
    # ADA allows < 8.0 % for older adults with complex health: 7.6 % is "at goal" at 70, not 40.
    a1c = obs("a1c-76", "Hemoglobin A1c", "4548-4", 7.6, "%", "2023-01-10")
    old = [patient("1953-01-01", "male"), a1c]
    young = [patient("1983-01-01", "male"), a1c]
    text = "His HbA1c of 7.6% is at goal."
    assert worst(interp(run(old, text, [a1c.id]))) == "supported"
    assert worst(interp(run(young, text, [a1c.id]))) == "unsupported"


def test_sex_decides_the_table_row() -> None:
    hdl = obs("hdl", "HDL Cholesterol", "2085-9", 45.0, "mg/dL", "2023-01-10")
    text = "Her HDL of 45 is low."
    assert worst(interp(run([patient("1970-01-01", "female"), hdl], text, [hdl.id]))) == (
        "supported"
    )
    assert worst(interp(run([patient("1970-01-01", "male"), hdl], text, [hdl.id]))) == (
        "unsupported"
    )


def test_every_table_row_names_its_source() -> None:
    tests, by_loinc = reference_table()
    assert len(tests) >= 30 and "4548-4" in by_loinc and "33914-3" in by_loinc
    for t in tests:
        rows = [r for rs in t.rows.values() for r in rs]
        rows += [r for rs in t.grades.values() for r in rs]
        rows += [r for rs in t.categories.values() for r in rs]
        assert rows, t.name
        assert all(len(r.source) > 10 for r in rows), t.name


@pytest.fixture(scope="module")
def abdul() -> list[Evidence]:
    if not SYNTHEA.exists():
        pytest.skip("../shared/data is absent: the Synthea bundles are needed here")
    from retrieval.fhir_load import load_path
    from retrieval.normalize import normalize_all

    evidence, _ = normalize_all(load_path(next(SYNTHEA.glob("Abdul_Koepp_*.json"))).resources)
    pat = next(e for e in evidence if e.resource_type == "Patient")
    return [pat] + [e for e in evidence if e is not pat]


def test_synthea_bmi_category_and_trend(abdul: list[Evidence]) -> None:
    bmis = sorted(
        (e for e in abdul if e.resource_type == "Observation" and e.data.get("loinc") == "39156-5"),
        key=lambda e: str(e.date),
    )
    b2013 = next(e for e in bmis if str(e.date).startswith("2013"))
    first = bmis[0]
    res = run(
        abdul, "His BMI of 29.4 kg/m2 in October 2013 put him in the obese range.", [b2013.id]
    )
    assert worst(interp(res)) == "unsupported"
    res = run(
        abdul, "His BMI of 29.4 kg/m2 in October 2013 was in the overweight range.", [b2013.id]
    )
    assert worst(res) == "supported", [r.reason for r in res if r.verdict != "supported"]
    assert worst(interp(run(abdul, "His BMI has been rising.", [first.id, b2013.id]))) == (
        "supported"
    )
    assert worst(interp(run(abdul, "His BMI has been falling.", [first.id, b2013.id]))) == (
        "unsupported"
    )


@pytest.mark.parametrize(
    ("value", "claim", "verdict"),
    [
        (13.2, "normal", "supported"),  # WHO: not anaemic at >= 13.0 for men
        (13.2, "low", "supported"),  # MedlinePlus: below 13.8
        (12.0, "normal", "unsupported"),  # below both
        (15.0, "low", "unsupported"),  # within both
    ],
)
def test_sources_that_disagree_leave_a_grey_zone(value: float, claim: str, verdict: str) -> None:
    hgb = obs("hgb-m", "Hemoglobin", "718-7", value, "g/dL", "2023-01-10")
    chart = [patient("1970-01-01", "male"), hgb]
    res = interp(run(chart, f"His hemoglobin of {value} is {claim}.", [hgb.id]))
    assert worst(res) == verdict, [r.reason for r in res]


def test_a_trend_is_judged_per_test() -> None:
    # two tests, each with two values: "stable" holds for each, not across the mixed series
    chart = [
        patient("1970-01-01", "male"),
        obs("hr1", "Heart rate", "8867-4", 72, "/min", "2023-01-10"),
        obs("hr2", "Heart rate", "8867-4", 74, "/min", "2023-01-11"),
        obs("t1", "Body temperature", "8310-5", 37.0, "Cel", "2023-01-10"),
        obs("t2", "Body temperature", "8310-5", 36.9, "Cel", "2023-01-11"),
    ]
    ids = [e.id for e in chart[1:]]
    assert worst(interp(run(chart, "His vital signs were stable.", ids))) == "supported"
    chart[2] = obs("hr2", "Heart rate", "8867-4", 118, "/min", "2023-01-11")
    assert worst(interp(run(chart, "His vital signs were stable.", ids))) == "unsupported"


def test_synthea_report_claims_read_its_results(abdul: list[Evidence]) -> None:
    # "the lipid panel" cites the DiagnosticReport; the claim is checked on its result values
    panel = next(
        e for e in abdul if e.resource_type == "DiagnosticReport" and e.title == "Lipid Panel"
    )
    by_id = {e.id: e for e in abdul}
    ldl = next(
        by_id[r] for r in panel.data["result_ids"] if by_id[r].data.get("loinc") == "18262-6"
    )
    assert ldl.data["value"] < 100  # the first panel's LDL is optimal (ATP III)
    res = interp(run(abdul, "His lipid panel showed a high LDL.", [panel.id]))
    assert worst(res) == "unsupported" and ldl.id in res[0].evidence_ids
    assert worst(interp(run(abdul, "His LDL was normal on the lipid panel.", [panel.id]))) == (
        "supported"
    )
