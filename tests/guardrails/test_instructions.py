"""Timing, food and duration words attached to a medication must be in the order's instruction
(instructions.py): pass and flag rows over orders built here."""

from __future__ import annotations

import pytest
from chartdraft_guardrails.api import check_statement
from chartdraft_guardrails.instructions import instruction_kinds
from chartdraft_guardrails.statement import CheckResult, Statement, worst

from retrieval.evidence import Evidence


def order(oid: str, drug: str, text: str, **data: object) -> Evidence:
    return Evidence(id=f"MedicationRequest/{oid}", patient_id="p1",
                    resource_type="MedicationRequest",
                    title=drug, text=f"{drug}, {text}, active since 2024-01-02", date="2024-01-02",
                    data={"drug": drug, "status": "active", **data})  # fmt: skip


CHART = [
    Evidence(id="Patient/p1", patient_id="p1", resource_type="Patient", title="Pat Test",
             text="Pat Test, born 1970-01-01", data={"birth_date": "1970-01-01"}),
    order("lis", "Lisinopril 10 MG Oral Tablet", "1 tablet once daily by mouth", dose_value=1,
          dose_unit=None, dose_form="tablet", frequency="once daily", route="oral",
          strength_value=10, strength_unit="mg", as_needed=False),
    order("amox", "Amoxicillin 500 MG Oral Capsule", "1 capsule three times daily by mouth",
          dose_value=1, dose_form="capsule", frequency="three times daily", route="oral",
          strength_value=500, strength_unit="mg", as_needed=False,
          dosage_text="Take 1 capsule three times daily with food for 10 days until finished"),
    order("ator", "Atorvastatin 40 MG Oral Tablet", "1 tablet at bedtime by mouth", dose_value=1,
          dose_form="tablet", frequency="at bedtime", route="oral", strength_value=40,
          strength_unit="mg", as_needed=False),
    order("alen", "Alendronate 70 MG Oral Tablet", "1 tablet weekly", dose_value=1,
          dose_form="tablet", frequency="once weekly", strength_value=70, strength_unit="mg",
          additional_instructions="Take in the morning on an empty stomach with a full glass of "
          "water"),
]  # fmt: skip


def run(text: str, cites: list[str]) -> list[CheckResult]:
    by_id = {e.id: e for e in CHART}
    return check_statement(Statement(text=text, citations=cites),
                           cited=[by_id[c] for c in cites], chart=CHART, shown_ids=set(by_id),
                           patient_id="p1", doc_type="discharge-instructions")  # fmt: skip


FLAG = [
    ("Take lisinopril 10 mg at bedtime.", "MedicationRequest/lis", "'at bedtime'"),
    ("Take lisinopril 10 mg each morning.", "MedicationRequest/lis", "'each morning'"),
    ("Take lisinopril 10 mg once daily with food.", "MedicationRequest/lis", "'with food'"),
    ("Take lisinopril 10 mg once daily in the evening.", "MedicationRequest/lis", "evening"),
    ("Take lisinopril 10 mg once daily for two weeks.", "MedicationRequest/lis", "two weeks"),
    ("Take lisinopril on an empty stomach.", "MedicationRequest/lis", "empty stomach"),
    ("Take amoxicillin 500 mg three times daily for 7 days.", "MedicationRequest/amox", "7 days"),
    ("Take amoxicillin 500 mg three times daily on an empty stomach.", "MedicationRequest/amox",
     "empty stomach"),
    ("Take atorvastatin 40 mg every morning.", "MedicationRequest/ator", "morning"),
    ("Take alendronate 70 mg once a week at bedtime.", "MedicationRequest/alen", "bedtime"),
    ("Take lisinopril 10 mg, then a second dose after five minutes.", "MedicationRequest/lis",
     "second dose"),
    # a wrong frequency stays flagged (support check)
    ("Take lisinopril 10 mg twice daily.", "MedicationRequest/lis", "frequency"),
]

PASS = [
    ("Take lisinopril 10 mg once daily.", "MedicationRequest/lis"),
    ("Take amoxicillin 500 mg three times daily with food for 10 days.", "MedicationRequest/amox"),
    ("Take amoxicillin 500 mg with meals for ten days, until it is all finished.",
     "MedicationRequest/amox"),
    ("Take atorvastatin 40 mg at night.", "MedicationRequest/ator"),
    ("Take alendronate 70 mg once a week in the morning on an empty stomach with a full glass "
     "of water.", "MedicationRequest/alen"),
]


@pytest.mark.parametrize(("text", "cite", "why"), FLAG)
def test_embellished_instruction_is_flagged(text: str, cite: str, why: str) -> None:
    res = run(text, [cite])
    assert worst(res) == "unsupported", [r.reason for r in res]
    assert any(why in r.reason for r in res if r.verdict == "unsupported"), [r.reason for r in res]


@pytest.mark.parametrize(("text", "cite"), PASS)
def test_instruction_in_the_order_passes(text: str, cite: str) -> None:
    res = run(text, [cite])
    assert worst(res) == "supported", [r.reason for r in res if r.verdict != "supported"]


def test_reason_says_what_the_order_says() -> None:
    res = run("Take lisinopril at bedtime.", ["MedicationRequest/lis"])
    reasons = [r.reason for r in res if r.verdict == "unsupported"]
    assert "'at bedtime' is not in the order's instructions (it says: 1 tablet once daily" \
        in reasons[0], reasons  # fmt: skip


@pytest.mark.parametrize(
    ("text", "kinds"),
    [
        ("take it before breakfast", {"morning"}),
        ("with a full glass of water", {"water"}),
        ("for two weeks", {"duration:14"}),
        ("for 10 days", {"duration:10"}),
        ("once daily", set()),
        ("until finished", {"complete_course"}),
    ],
)
def test_instruction_kinds(text: str, kinds: set[str]) -> None:
    assert set(instruction_kinds(text)) == kinds


PLAN = Evidence(id="CarePlan/head", patient_id="p1", resource_type="CarePlan",
                title="Head injury rehabilitation",
                text="Head injury rehabilitation, active, since 2024-01-02: Recommendation to "
                "rest; Alcohol-free diet", date="2024-01-02",
                data={"status": "active", "activities": ["Recommendation to rest",
                                                         "Alcohol-free diet"]})  # fmt: skip


@pytest.mark.parametrize(
    ("text", "verdict"),
    [
        ("Your head injury rehabilitation plan asks you to rest.", "supported"),
        ("Rest for two weeks, as your head injury rehabilitation plan says.", "unsupported"),
        ("Your head injury rehabilitation plan calls for rest twice a day.", "unsupported"),
        ("Your head injury rehabilitation plan asks you to rest every evening.", "unsupported"),
    ],
)
def test_care_plan_instructions(text: str, verdict: str) -> None:
    chart = [*CHART, PLAN]
    res = check_statement(Statement(text=text, citations=[PLAN.id]), cited=[PLAN], chart=chart,
                          shown_ids={e.id for e in chart}, patient_id="p1",
                          doc_type="discharge-instructions")  # fmt: skip
    assert worst(res) == verdict, [(r.verdict, r.reason) for r in res]
