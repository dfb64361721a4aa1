"""The checks on real composed drafts: what the extractive composer states correctly is supported.

Synthetic patients (retrieval.synth) -> FHIR load -> normalize -> the plan's structured picks (as
gather selects them, no index needed) plus the knowledge base -> assistant.compose -> every
guardrail check. A composed sentence copies its facts from what it cites, so a flag here is a false
flag of the checks (ICD-10 codes read as values, "Criterion 1" as a number, the chart's own
"No known allergy" record as a contradiction...), unless the chart itself is wrong.
"""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

import pytest
from chartdraft_guardrails.api import DraftReport, check_draft
from chartdraft_guardrails.statement import Statement

from assistant.compose import SECTIONS, compose
from assistant.orders import find_order, policy_for_evidence
from retrieval.evidence import Evidence
from retrieval.fhir_load import load_json
from retrieval.knowledge import load_kb
from retrieval.normalize import normalize_all
from retrieval.plans import apply_pick, plan_for, required_ids
from retrieval.synth import generate

ANCHOR = date(2025, 6, 1)
MIN_SUPPORTED = 0.99


def _draft(bundle: dict[str, Any], doc_type: str) -> DraftReport | None:
    chart, issues = normalize_all(load_json(bundle).resources)
    assert issues == []
    patient_id = next(e.patient_id for e in chart if e.resource_type == "Patient" and e.patient_id)
    order = find_order(chart, None) if doc_type == "prior-auth" else None
    policy = policy_for_evidence(order) if order is not None else None
    if doc_type == "prior-auth" and policy is None:
        return None
    plan = plan_for(doc_type, policy=policy, order_id=order.id if order else None)
    shown: dict[str, Evidence] = {}
    for pick in plan.picks:
        for e in apply_pick(pick, chart, today=ANCHOR):
            shown.setdefault(e.id, e)
    evidence = list(shown.values()) + load_kb()
    required = required_ids(plan, chart)
    sections = compose(doc_type, evidence, required=required, patient_id=patient_id,
                       order_id=order.id if order else None, policy=policy, today=ANCHOR)
    return check_draft(
        [(s.title, [Statement(text=x.text, citations=x.citations) for x in s.statements])
         for s in sections],
        chart=chart,
        shown_ids={e.id for e in evidence},
        patient_id=patient_id,
        doc_type=doc_type,
        required_ids=required,
        shown=evidence,
    )


@pytest.fixture(scope="module")
def reports() -> dict[str, list[DraftReport]]:
    # Two cohorts: the issue's reproduction (8 patients, seed 11) and one with planted attacks.
    bundles = generate(8, 11, anchor=ANCHOR) + generate(6, 21, attacks=True, anchor=ANCHOR)
    out: dict[str, list[DraftReport]] = {}
    for doc_type in SECTIONS:
        out[doc_type] = [r for b in bundles if (r := _draft(b, doc_type)) is not None]
    return out


@pytest.mark.parametrize("doc_type", list(SECTIONS))
def test_composed_statements_are_supported(reports: dict[str, list[DraftReport]],
                                           doc_type: str) -> None:
    verdicts: Counter[str] = Counter()
    flagged = []
    for report in reports[doc_type]:
        for s in report.statements:
            verdicts[s.verdict] += 1
            if s.verdict != "supported":
                flagged.append(f"{s.title}: {s.statement.text!r} -> {s.verdict}: {s.reasons()}")
    total = sum(verdicts.values())
    share = verdicts["supported"] / total
    print(f"\n{doc_type}: {verdicts['supported']}/{total} supported ({share:.3f})")
    for line in flagged:
        print("  ", line)
    assert len(reports[doc_type]) >= 8 and total >= 100
    assert share >= MIN_SUPPORTED, "\n".join(flagged)


def test_composed_drafts_leave_no_omissions(reports: dict[str, list[DraftReport]]) -> None:
    for doc_type, rs in reports.items():
        for r in rs:
            assert r.omissions == [], (doc_type, r.omissions)
            assert r.missing_sections == [], (doc_type, r.missing_sections)


def test_composed_discharge_sections_read_at_grade_8_or_below(
    reports: dict[str, list[DraftReport]],
) -> None:
    grades: dict[str, list[float]] = {}
    for r in reports["discharge-instructions"]:
        for sec in r.readability:
            grades.setdefault(str(sec["section"]), []).append(float(sec["grade"]))  # type: ignore[arg-type]
            assert sec["ok"], sec
    for title, gs in grades.items():
        print(f"\n{title}: max grade {max(gs):.1f}, mean {sum(gs) / len(gs):.1f}")
    # Medicines are the section with long drug names: their names are not what makes it hard.
    assert max(grades["Your medicines"]) <= 6.0
