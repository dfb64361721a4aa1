"""The prior-auth letter argues for one service: addressed to the payer, a narrative about the
request only, each criterion met or not with its evidence, a signature block; diagnoses, results
and treatments about the patient's other problems stay out (the relevance rule), checked on
generated charts that carry several unrelated problems."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from assistant.compose import NOT_DOCUMENTED, compose, relevant_to_order
from assistant.draft import Section
from assistant.orders import find_order, policy_for_evidence
from retrieval.evidence import Evidence
from retrieval.fhir_load import load_json
from retrieval.knowledge import Policy, evidence_for_criterion, load_kb
from retrieval.normalize import normalize_all
from retrieval.plans import ACTIVE_CONDITION, apply_pick, plan_for, required_ids
from retrieval.synth import generate

ANCHOR = date(2025, 6, 1)


def _letter(bundle: dict[str, Any]) -> tuple[list[Section], list[Evidence], Evidence, Policy]:
    chart, _ = normalize_all(load_json(bundle).resources)
    pid = next(e.patient_id for e in chart if e.resource_type == "Patient" and e.patient_id)
    order = find_order(chart, None)
    assert order is not None
    policy = policy_for_evidence(order)
    assert policy is not None
    plan = plan_for("prior-auth", policy=policy, order_id=order.id)
    shown: dict[str, Evidence] = {}
    for pick in plan.picks:
        for e in apply_pick(pick, chart, today=ANCHOR):
            shown.setdefault(e.id, e)
    secs = compose("prior-auth", list(shown.values()) + load_kb(),
                   required=required_ids(plan, chart), patient_id=str(pid), order_id=order.id,
                   policy=policy, today=ANCHOR)
    return secs, chart, order, policy


@pytest.fixture(scope="module")
def letters() -> list[tuple[list[Section], list[Evidence], Evidence, Policy]]:
    return [_letter(b) for b in generate(8, 11, anchor=ANCHOR)]


def _unrelated(chart: list[Evidence], order: Evidence) -> list[Evidence]:
    """Active conditions the order is not for: its reason text does not name them."""
    reason = str(order.data.get("reason") or "").lower()
    return [c for c in chart if c.resource_type == "Condition"
            and c.data.get("status") in ACTIVE_CONDITION
            and str(c.data.get("name") or c.title).lower() not in reason
            and reason not in str(c.data.get("name") or c.title).lower()]


def test_charts_have_several_unrelated_problems(letters: Any) -> None:
    counts = [len(_unrelated(chart, order)) for _, chart, order, _ in letters]
    assert sum(n >= 2 for n in counts) >= len(letters) // 2, counts


def test_unrelated_diagnoses_and_results_are_left_out(letters: Any) -> None:
    for secs, chart, order, policy in letters:
        sts = [s for sec in secs for s in sec.statements]
        cited = {c for s in sts for c in s.citations}
        text = " ".join(s.text for s in sts).lower()
        for c in _unrelated(chart, order):
            assert c.id not in cited, c.title
            assert str(c.data.get("name") or c.title).lower() not in text, c.title
        crit = {e.id for cr in policy.criteria for e in evidence_for_criterion(cr, chart,
                                                                             today=ANCHOR)}
        by_id = {e.id: e for e in chart}
        for c in cited:
            if c in by_id and by_id[c].resource_type == "Observation":
                assert c in crit, by_id[c].title  # only results the criteria look for
        # The condition the order is for is stated.
        diagnoses = next(s for s in secs if s.title == "Diagnoses").statements
        reason = str(order.data.get("reason")).lower()
        assert any(reason in d.text.lower() for d in diagnoses), [d.text for d in diagnoses]


def test_the_letter_is_addressed_argued_and_signed(letters: Any) -> None:
    signed = 0
    for secs, _, order, policy in letters:
        by = {s.title: s.statements for s in secs}
        assert [s.title for s in secs][0] == "To" and [s.title for s in secs][-1] == \
            "Ordering clinician"
        assert by["To"][0].text.startswith(f"To: {policy.payer}")
        assert by["To"][0].citations == [policy.passage_id("criteria")]
        story = by["Clinical justification"]
        assert story[0].citations == [order.id] and "order is for" in story[0].text
        assert len(story) >= 2 and all(s.citations for s in story)
        for n, (st, c) in enumerate(zip(by["Policy criteria"], policy.criteria, strict=True), 1):
            if st.citations:
                assert st.text.startswith(f"Criterion {n} ({c.id}): met. The policy requires: ")
                assert policy.passage_id("criteria") in st.citations
                assert len(st.citations) >= 2  # the policy and the chart evidence
            else:
                assert st.text == f"Criterion {n} ({c.id}): not met. {NOT_DOCUMENTED}"
        who = order.data.get("requester")
        sign = by["Ordering clinician"][0]
        if who and "/" not in str(who):
            signed += 1
            assert sign.text.startswith(f"Signed: {who}, ordering clinician")
            assert order.id in sign.citations
        else:
            assert sign.text == NOT_DOCUMENTED
    assert signed


def _ev(rid: str, rtype: str, **data: Any) -> Evidence:
    return Evidence(id=rid, patient_id="p", resource_type=rtype, title=str(data.get("name", rid)),
                    text=str(data.get("name", rid)), data=data)


@pytest.mark.parametrize(("e", "criteria", "conds", "want"), [
    (_ev("Condition/a", "Condition", name="Low back pain"), set(), set(), True),  # reason text
    (_ev("Condition/b", "Condition", name="Asthma"), set(), set(), False),
    (_ev("Condition/c", "Condition", name="Sciatica"), set(), set(), True),  # reasonReference
    (_ev("Condition/d", "Condition", name="Hypertension"), {"Condition/d"}, set(), True),
    (_ev("MedicationRequest/m", "MedicationRequest", name="ibuprofen",
         links={"reason": ["Condition/a"]}), set(), {"Condition/a"}, True),  # own reason
    (_ev("MedicationRequest/n", "MedicationRequest", name="albuterol",
         links={"reason": ["Condition/b"]}), set(), {"Condition/a"}, False),
    (_ev("Observation/o", "Observation", name="Hemoglobin"), set(), set(), False),
])
def test_relevance_rule(e: Evidence, criteria: set[str], conds: set[str], want: bool) -> None:
    order = _ev("ServiceRequest/s", "ServiceRequest", name="MRI lumbar spine",
                reason="Low back pain", links={"reason": ["Condition/c"]})
    assert relevant_to_order(e, order, criteria, conds) is want
