"""Purpose and causal claims against the chart's FHIR links: linked, linked elsewhere, linked to
nothing; on small Evidence built here and on a real normalized Synthea bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chartdraft_guardrails.api import check_statement
from chartdraft_guardrails.statement import CheckResult, Statement, worst

from retrieval.evidence import Evidence

PID = "p-links"
SYNTHEA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "synthea-r4-bundles"


def ev(rid: str, title: str, text: str, **data: Any) -> Evidence:
    return Evidence(id=rid, patient_id=PID, resource_type=rid.split("/")[0], title=title,
                    text=text, data=data)


CHART = [
    ev("Patient/p", "Patient", "Patient"),
    ev("Condition/gout", "Gout", "Gout, active", name="Gout", status="active"),
    ev("Condition/htn", "Hypertension", "Hypertension, active", name="Hypertension",
       status="active"),
    ev("Condition/ckd", "Chronic kidney disease stage 3 (disorder)",
       "Chronic kidney disease stage 3 (disorder), active", status="active"),
    ev("Condition/dm", "Diabetes mellitus type 2 (disorder)",
       "Diabetes mellitus type 2 (disorder), active", status="active"),
    ev("Condition/dkd", "Disorder of kidney due to diabetes mellitus (disorder)",
       "Disorder of kidney due to diabetes mellitus (disorder), active", status="active"),
    ev("Condition/anemia", "Anemia (disorder)", "Anemia (disorder), active", status="active",
       links={"evidence": ["Condition/ckd"]}),
    # the order's reason is the gout Condition (reasonReference, named at normalization)
    ev("MedicationRequest/allo", "Allopurinol 100 MG Oral Tablet",
       "Allopurinol 100 mg oral tablet, active", drug="Allopurinol 100 MG Oral Tablet",
       status="active", reason="Gout", links={"reason": ["Condition/gout"]}),
    ev("MedicationRequest/hctz", "Hydrochlorothiazide 25 MG Oral Tablet",
       "Hydrochlorothiazide 25 mg oral tablet, active",
       drug="Hydrochlorothiazide 25 MG Oral Tablet", status="active", reason="Hypertension",
       links={"reason": ["Condition/htn"]}),
    ev("MedicationRequest/apap", "Acetaminophen 325 MG Oral Tablet",
       "Acetaminophen 325 mg oral tablet, active", drug="Acetaminophen 325 MG Oral Tablet",
       status="active"),
    ev("Encounter/adm", "Hospital admission", "Hospital admission, reason: Pneumonia",
       reason="Pneumonia", type="Hospital admission"),
]


def run(chart: list[Evidence], text: str, cites: list[str]) -> list[CheckResult]:
    by_id = {e.id: e for e in chart}
    pid = chart[0].patient_id or ""
    return check_statement(Statement(text=text, citations=cites),
                           cited=[by_id[c] for c in cites], chart=chart,
                           shown_ids=set(by_id), patient_id=pid, doc_type="summary")


CASES = [
    # (text, cites, verdict, fragment of the links reason)
    ("Keep taking your allopurinol for your gout.", ["MedicationRequest/allo"], "supported",
     "reason: Condition/gout (Gout)"),
    ("Hydrochlorothiazide was started for high blood pressure.", ["MedicationRequest/hctz"],
     "supported", "reason: Condition/htn"),
    ("You were admitted because of pneumonia.", ["Encounter/adm"], "supported",
     "reason: Encounter/adm (Pneumonia)"),
    ("Your kidney disease is due to diabetes.", ["Condition/dkd"], "supported",
     "Condition/dkd"),
    ("Her anemia is caused by her chronic kidney disease.", ["Condition/anemia"], "supported",
     "reason: Condition/ckd"),
    # linked elsewhere
    ("Allopurinol was started for high blood pressure.", ["MedicationRequest/allo"],
     "unsupported", "links MedicationRequest/allo to Condition/gout (Gout)"),
    ("Take hydrochlorothiazide to treat your gout.", ["MedicationRequest/hctz"], "unsupported",
     "Condition/htn (Hypertension), not to gout"),
    # linked to nothing
    ("Take acetaminophen for your gout.", ["MedicationRequest/apap"], "unsupported",
     "links MedicationRequest/apap to nothing"),
    ("Your kidney disease is caused by your diabetes.", ["Condition/ckd", "Condition/dm"],
     "unsupported", "to nothing"),
]


@pytest.mark.parametrize(("text", "cites", "verdict", "why"), CASES)
def test_purpose_and_causal_claims_follow_the_links(
    text: str, cites: list[str], verdict: str, why: str
) -> None:
    res = run(CHART, text, cites)
    links = [r for r in res if r.check == "links"]
    assert links, [r.reason for r in res]
    assert worst(links) == verdict, [r.reason for r in links]
    assert any(why in r.reason for r in links), [r.reason for r in links]
    if verdict != "supported":
        assert worst(res) != "supported"


def test_no_purpose_no_links_result() -> None:
    # "for 10 days" names no condition: nothing for the links check to say
    res = run(CHART, "Take acetaminophen 325 mg for 10 days.", ["MedicationRequest/apap"])
    assert not [r for r in res if r.check == "links"]


@pytest.fixture(scope="module")
def antonio() -> list[Evidence]:
    if not SYNTHEA.exists():
        pytest.skip("../shared/data is absent: the Synthea bundles are needed here")
    from retrieval.fhir_load import load_path
    from retrieval.normalize import normalize_all

    path = next(SYNTHEA.glob("Antonio_Castellanos_*.json"))
    evidence, issues = normalize_all(load_path(path).resources)
    assert not issues
    patient = next(e for e in evidence if e.resource_type == "Patient")
    return [patient] + [e for e in evidence if e is not patient]


def _linked_order(chart: list[Evidence]) -> tuple[Evidence, Evidence]:
    by_id = {e.id: e for e in chart}
    for e in chart:
        reasons = (e.data.get("links") or {}).get("reason") or []
        if e.resource_type == "MedicationRequest" and reasons and reasons[0] in by_id:
            return e, by_id[reasons[0]]
    raise AssertionError("the bundle has a MedicationRequest with a reasonReference")


def test_synthea_order_linked_to_its_condition(antonio: list[Evidence]) -> None:
    order, cond = _linked_order(antonio)
    assert "hypertension" in cond.title.lower()  # Antonio's HCTZ order is for hypertension
    res = run(antonio, "Hydrochlorothiazide 25 mg for high blood pressure.", [order.id])
    links = [r for r in res if r.check == "links"]
    assert worst(links) == "supported" and f"reason: {cond.id}" in links[0].reason
    assert worst(res) == "supported", [r.reason for r in res if r.verdict != "supported"]


def test_synthea_order_purpose_linked_elsewhere(antonio: list[Evidence]) -> None:
    order, cond = _linked_order(antonio)
    res = run(antonio, "Hydrochlorothiazide 25 mg for sore throat.", [order.id])
    links = [r for r in res if r.check == "links"]
    assert worst(links) == "unsupported"
    assert cond.id in links[0].reason and "not to" in links[0].reason


def test_symptom_purposes_are_instructions_not_links() -> None:
    # "for fever" tells how to use the drug; the chart need not link the order to a fever
    res = run(CHART, "Take acetaminophen as needed for fever.", ["MedicationRequest/apap"])
    assert not [r for r in res if r.check == "links"]


def test_what_a_test_looks_for_is_no_purpose_claim() -> None:
    chart = CHART + [ev("Procedure/cx", "Throat culture (procedure)",
                        "Throat culture (procedure), completed, reason: Acute viral pharyngitis",
                        reason="Acute viral pharyngitis (disorder)",
                        links={"reason": ["Condition/vp"]})]
    res = run(chart, "A throat culture was taken to test for strep.", ["Procedure/cx"])
    assert worst(res) == "supported", [r.reason for r in res if r.verdict != "supported"]
    # the same words as a reason are a claim the chart contradicts
    res = run(chart, "A throat culture was done for strep throat.", ["Procedure/cx"])
    assert worst([r for r in res if r.check == "links"]) == "unsupported"


@pytest.mark.parametrize(("text", "cite", "verdict"), [
    # a stated reason no table names is checked by its words
    ("Hydrochlorothiazide was started for ankle oedema.", "MedicationRequest/hctz", "unsupported"),
    ("Acetaminophen was prescribed to treat heavy menstrual bleeding.", "MedicationRequest/apap",
     "unsupported"),
    # British spelling of what the chart links
    ("Allopurinol for his gout; hydrochlorothiazide is unrelated.", "MedicationRequest/allo",
     "supported"),
])
def test_stated_reasons_without_a_table_entry(text: str, cite: str, verdict: str) -> None:
    res = run(CHART, text, [cite])
    links = [r for r in res if r.check == "links"]
    assert links and worst(links) == verdict, [r.reason for r in res]


def test_british_spelling_reads_as_the_charts_word() -> None:
    simva = ev("MedicationRequest/simva", "Simvastatin 10 MG Oral Tablet",
               "Simvastatin 10 mg oral tablet, active", drug="Simvastatin 10 MG Oral Tablet",
               status="active", reason="Hyperlipidemia", links={"reason": ["Condition/hl"]})
    chart = CHART + [simva, ev("Condition/hl", "Hyperlipidemia", "Hyperlipidemia, active",
                               status="active")]
    res = run(chart, "Simvastatin 10 mg for her hyperlipidaemia.", ["MedicationRequest/simva"])
    assert worst(res) == "supported", [r.reason for r in res if r.verdict != "supported"]
