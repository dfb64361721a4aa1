"""Concepts, not words: lay terms, brands, classes and abbreviations are tied to what the cited
evidence carries; a different known concept is unsupported; an unknown clinical term is
not_verified. Small Evidence built here, one table per behaviour."""

from __future__ import annotations

from typing import Any

import pytest
from chartdraft_guardrails.api import check_statement
from chartdraft_guardrails.concepts import closure, mentions
from chartdraft_guardrails.lexicon import canonical
from chartdraft_guardrails.statement import CheckResult, Statement, worst
from chartdraft_guardrails.terminology import rows

from retrieval.evidence import Code, Evidence

PID = "p-concepts"


def ev(rid: str, title: str, text: str, codes: list[tuple[str, str, str]] | None = None,
       **data: Any) -> Evidence:
    rtype = rid.split("/")[0]
    return Evidence(id=rid, patient_id=PID, resource_type=rtype, title=title, text=text,
                    codes=[Code(system=s, code=c, display=d) for s, c, d in codes or []],
                    data=data)


SNOMED, LOINC, CVX = "http://snomed.info/sct", "http://loinc.org", "http://hl7.org/fhir/sid/cvx"
CHART = [
    ev("Patient/p", "Patient", "Patient", name="Pat Test"),
    ev("MedicationRequest/furo", "Furosemide 40 MG Oral Tablet",
       "Furosemide 40 mg oral tablet, 1 tablet once daily by mouth, active since 2024-01-02",
       drug="Furosemide 40 MG Oral Tablet", status="active", frequency="once daily"),
    ev("MedicationRequest/warf", "Warfarin Sodium 5 MG Oral Tablet",
       "Warfarin sodium 5 mg oral tablet, active since 2024-01-02",
       drug="Warfarin Sodium 5 MG Oral Tablet", status="active"),
    ev("MedicationRequest/iron", "ferrous sulfate 325 MG Oral Tablet",
       "ferrous sulfate 325 mg oral tablet, active since 2024-01-02",
       drug="ferrous sulfate 325 MG Oral Tablet", status="active"),
    ev("MedicationRequest/lis", "lisinopril 10 MG Oral Tablet",
       "lisinopril 10 mg oral tablet, active since 2024-01-02",
       drug="lisinopril 10 MG Oral Tablet", status="active"),
    ev("MedicationRequest/errin", "Errin 28 Day Pack", "Errin 28 day pack, active",
       drug="Errin 28 Day Pack", status="active"),
    ev("Observation/ldl", "Low Density Lipoprotein Cholesterol",
       "Low Density Lipoprotein Cholesterol: 130 mg/dL on 2024-03-01",
       [(LOINC, "18262-6", "Low Density Lipoprotein Cholesterol")],
       name="Low Density Lipoprotein Cholesterol", value=130, unit="mg/dL"),
    ev("Observation/egfr", "Estimated Glomerular Filtration Rate",
       "Estimated Glomerular Filtration Rate: 55 mL/min on 2024-03-01",
       [(LOINC, "33914-3", "Estimated Glomerular Filtration Rate")],
       name="Estimated Glomerular Filtration Rate", value=55, unit="mL/min"),
    ev("Immunization/hepb", "Hep B, adult", "Immunization: Hep B, adult, completed on 2023-05-01",
       [(CVX, "43", "Hep B, adult")], vaccine="Hep B, adult"),
    ev("Immunization/pcv", "Pneumococcal conjugate PCV 13",
       "Immunization: Pneumococcal conjugate PCV 13, completed on 2012-07-01",
       [(CVX, "133", "Pneumococcal conjugate PCV 13")], vaccine="Pneumococcal conjugate PCV 13"),
    ev("Immunization/tdap", "Tdap", "Immunization: Tdap, completed on 2018-09-02",
       [(CVX, "115", "Tdap")], vaccine="Tdap"),
    ev("Condition/htn", "Essential hypertension (disorder)",
       "Essential hypertension (disorder), active, since 2015-01-01",
       [(SNOMED, "59621000", "Essential hypertension (disorder)")],
       name="Essential hypertension (disorder)", clinical_status="active", status="active"),
    ev("Condition/pso", "Psoriasis", "Psoriasis, active, since 2019-02-01",
       [(SNOMED, "9014002", "Psoriasis")], name="Psoriasis", status="active"),
    ev("Condition/ad", "Atopic dermatitis", "Atopic dermatitis, active, since 2019-02-01",
       name="Atopic dermatitis", status="active"),
    ev("Condition/oa", "Osteoarthritis of knee", "Osteoarthritis of knee, active",
       name="Osteoarthritis of knee", status="active"),
    ev("Procedure/echo", "Echocardiography (procedure)",
       "Echocardiography (procedure), completed on 2022-04-04", name="Echocardiography"),
    ev("Procedure/pv", "Percutaneous mechanical thrombectomy of portal vein",
       "Percutaneous mechanical thrombectomy of portal vein, completed on 2022-04-04",
       name="Percutaneous mechanical thrombectomy of portal vein"),
    ev("Procedure/xr", "Right knee X-ray", "Right knee X-ray, completed on 2022-04-04",
       name="Right knee X-ray"),
    ev("Procedure/ankle", "Ankle X-ray", "Ankle X-ray, completed on 2022-04-04",
       name="Ankle X-ray"),
    ev("Condition/conc", "Concussion with no loss of consciousness",
       "Concussion with no loss of consciousness, resolved", status="resolved"),
    ev("AllergyIntolerance/shell", "Allergy: Shellfish allergy",
       "Allergy to Shellfish allergy (food), active", substance="Shellfish allergy",
       status="active"),
    ev("Condition/dm2", "Diabetes mellitus type 2 (disorder)",
       "Diabetes mellitus type 2 (disorder), active", status="active"),
    ev("Condition/prediab", "Prediabetes", "Prediabetes, active", status="active"),
    ev("DocumentReference/op#1", "Operative note",
       "Laparoscopic appendectomy without complication.", section="Procedure"),
    ev("MedicationRequest/ibu", "Ibuprofen 200 MG Oral Tablet",
       "Ibuprofen 200 mg oral tablet, by mouth as needed, active",
       drug="Ibuprofen 200 MG Oral Tablet", status="active", as_needed=True),
    ev("MedicationRequest/mep", "Meperidine Hydrochloride 50 MG Oral Tablet",
       "Meperidine hydrochloride 50 mg oral tablet 1 tablet by mouth, stopped",
       drug="Meperidine Hydrochloride 50 MG Oral Tablet", status="stopped"),
]


def run(text: str, cites: list[str]) -> list[CheckResult]:
    by_id = {e.id: e for e in CHART}
    return check_statement(Statement(text=text, citations=cites),
                           cited=[by_id[c] for c in cites], chart=CHART,
                           shown_ids=set(by_id), patient_id=PID, doc_type="summary")


SUPPORTED = [
    # lay words and drug classes
    ("Keep taking your water pill every day.", ["MedicationRequest/furo"]),
    ("You take a diuretic, furosemide 40 mg.", ["MedicationRequest/furo"]),
    ("Your blood thinner is warfarin.", ["MedicationRequest/warf"]),
    ("Keep taking your iron tablets.", ["MedicationRequest/iron"]),
    ("Your blood pressure medicine is lisinopril 10 mg.", ["MedicationRequest/lis"]),
    ("You have high blood pressure.", ["Condition/htn"]),
    ("Your cholesterol panel showed an LDL of 130 mg/dL.", ["Observation/ldl"]),
    ("Your kidney function test (eGFR) was 55 mL/min.", ["Observation/egfr"]),
    ("You got the hep B vaccine in May 2023.", ["Immunization/hepb"]),
    ("Your birth control is Errin.", ["MedicationRequest/errin"]),
    # brands and abbreviations
    ("Continue Lasix 40 mg once daily.", ["MedicationRequest/furo"]),
    ("Coumadin was started.", ["MedicationRequest/warf"]),
    ("History of HTN.", ["Condition/htn"]),
    ("She has eczema.", ["Condition/ad"]),
    ("He has arthritis in his knee.", ["Condition/oa"]),
    ("She had an echo in April 2022.", ["Procedure/echo"]),
    ("He had a pneumococcal vaccine (PCV13) in 2012.", ["Immunization/pcv"]),
    ("His right knee was x-rayed.", ["Procedure/xr"]),
    # a site the record does not name is context where the record names no site at all
    ("After the knee operation he was prescribed Demerol 50 mg.", ["MedicationRequest/mep"]),
    ("She had a concussion without loss of consciousness.", ["Condition/conc"]),
    ("He is allergic to shellfish.", ["AllergyIntolerance/shell"]),
    # the symptom of an as-needed order that records none; a time anchor to another event
    ("Take ibuprofen 200 mg as needed for pain or headache.", ["MedicationRequest/ibu"]),
    ("Warfarin was started after her stroke.", ["MedicationRequest/warf"]),
    ("He left after the right knee X-ray.", ["Procedure/xr"]),  # "left" the verb is no side
    ("She has type 2 diabetes.", ["Condition/dm2"]),
    ("He had a laparoscopic appendectomy.", ["DocumentReference/op#1"]),
]


@pytest.mark.parametrize(("text", "cites"), SUPPORTED)
def test_lay_terms_brands_classes_and_abbreviations_are_supported(
    text: str, cites: list[str]
) -> None:
    res = run(text, cites)
    assert worst(res) == "supported", [r.reason for r in res if r.verdict != "supported"]


FLAGGED = [
    # (text, cites, verdict, fragment of the reason)
    ("She has eczema.", ["Condition/pso"], "unsupported", "'eczema' is not what Condition/pso"),
    ("She had coronary angiography in April 2022.", ["Procedure/echo"], "unsupported",
     "coronary angiography"),
    ("Thrombectomy of the middle cerebral artery.", ["Procedure/pv"], "unsupported",
     "middle cerebral artery"),
    ("He received PPSV23 in 2012.", ["Immunization/pcv"], "unsupported", "ppsv23"),
    ("He received a DTaP booster in 2018.", ["Immunization/tdap"], "unsupported", "dtap"),
    ("Your blood thinner is furosemide.", ["MedicationRequest/furo"], "unsupported",
     "blood thinner"),
    ("Your water pill is warfarin.", ["MedicationRequest/warf"], "unsupported", "water pill"),
    ("His left knee was x-rayed.", ["Procedure/xr"], "unsupported", "side 'left'"),
    ("You got the hepatitis A vaccine in May 2023.", ["Immunization/hepb"], "unsupported",
     "hepatitis a"),
    ("He had a knee X-ray.", ["Procedure/ankle"], "unsupported", "site 'knee' differs"),
    ("You had a concussion with a brief loss of consciousness.", ["Condition/conc"],
     "unsupported", "rules out"),
    ("He is allergic to peanuts.", ["AllergyIntolerance/shell"], "unsupported", "'peanuts'"),
    ("Warfarin was started for her stroke.", ["MedicationRequest/warf"], "unsupported",
     "links MedicationRequest/warf to nothing"),
    ("She has type 1 diabetes.", ["Condition/dm2"], "unsupported", "type 1 diabetes"),
    ("She has type 2 diabetes.", ["Condition/prediab"], "unsupported", "type 2 diabetes"),
    ("He had an open appendectomy.", ["DocumentReference/op#1"], "unsupported", "'open'"),
    # unknown clinical-looking word: could not be tied, never silently passed
    ("She has blorbitis.", ["Condition/pso"], "not_verified", "'blorbitis' could not be tied"),
]


@pytest.mark.parametrize(("text", "cites", "verdict", "why"), FLAGGED)
def test_wrong_or_unknown_concepts_are_flagged(
    text: str, cites: list[str], verdict: str, why: str
) -> None:
    res = run(text, cites)
    bad = [r for r in res if r.verdict != "supported"]
    assert worst(res) == verdict, [r.reason for r in bad]
    assert any(why in r.reason for r in bad), [r.reason for r in bad]


def test_mentions_take_the_longest_term_and_map_lay_words_to_concepts() -> None:
    found = {m.term: m.concepts for m in mentions(canonical("Take your blood pressure medicine"))}
    assert list(found) == ["blood pressure medicine"]
    assert "class:antihypertensives" in found["blood pressure medicine"]
    assert "class:diuretics" in closure({"drug:furosemide"})
    assert "lab:lipid_panel" in closure({"lab:ldl"})


def test_every_data_file_names_its_source_and_license() -> None:
    from importlib.resources import files

    data = files("chartdraft_guardrails").joinpath("data")
    for name in ("drugs.csv", "drug_classes.csv", "concepts.csv", "icd10cm_terms.csv",
                 "synonyms.csv", "clinical_terms.csv"):
        head = data.joinpath(name).read_text(encoding="utf-8")[:900].lower()
        assert head.startswith("#") and "source" in head, name
        assert any(w in head for w in ("public domain", "license", "mit")), name
    assert len(rows("icd10cm_terms.csv", "code", "block", "term")) > 5000


def test_a_missing_column_is_a_clear_error() -> None:
    from retrieval.errors import BadInput

    with pytest.raises(BadInput, match="lacks column"):
        rows("drugs.csv", "generic", "no_such_column")
