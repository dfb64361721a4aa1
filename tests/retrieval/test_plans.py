"""Per-document plans: structured picks over a real (synthetic) chart, and required evidence."""

from __future__ import annotations

from datetime import date

import pytest

from retrieval.errors import BadInput
from retrieval.evidence import Evidence
from retrieval.fhir_load import load_json
from retrieval.knowledge import evidence_for_criterion, policies
from retrieval.normalize import normalize_all
from retrieval.plans import (
    DOC_TYPES,
    PENDING_ORDER,
    StructuredPick,
    apply_pick,
    find_encounter,
    plan_for,
    required_ids,
)
from retrieval.synth import generate

ANCHOR = date(2025, 6, 1)


@pytest.fixture(scope="module")
def charts() -> list[list[Evidence]]:
    out = []
    for b in generate(6, 3, anchor=ANCHOR):
        ev, issues = normalize_all(load_json(b).resources)
        assert issues == []
        out.append(ev)
    return out


def _picked(doc_type: str, chart: list[Evidence], **kw: object) -> list[Evidence]:
    plan = plan_for(doc_type, **kw)  # type: ignore[arg-type]
    seen: dict[str, Evidence] = {}
    for p in plan.picks:
        for e in apply_pick(p, chart, today=ANCHOR):
            seen.setdefault(e.id, e)
    return list(seen.values())


def test_unknown_doc_type_names_the_valid_ones() -> None:
    with pytest.raises(BadInput, match="summary, discharge-instructions, prior-auth"):
        plan_for("referral-letter")
    assert DOC_TYPES == ("summary", "discharge-instructions", "prior-auth")


def test_discharge_plan_picks_every_active_medicine_and_allergy(
        charts: list[list[Evidence]]) -> None:
    for chart in charts:
        picked = {e.id for e in _picked("discharge-instructions", chart)}
        active = {e.id for e in chart if e.resource_type == "MedicationRequest"
                  and e.data["status"] == "active"}
        allergies = {e.id for e in chart if e.resource_type == "AllergyIntolerance"}
        assert active and active <= picked
        assert allergies <= picked
        plan = plan_for("discharge-instructions")
        assert required_ids(plan, chart) == active | allergies
        # Medicines stopped during this stay are shown too (to say "stop taking").
        stay = find_encounter(chart)
        assert stay is not None
        stopped = {e.id for e in chart if e.resource_type == "MedicationRequest"
                   and e.data["status"] == "stopped" and e.data["encounter"] == stay.id}
        assert stopped and stopped <= picked
        earlier = {e.id for e in chart if e.resource_type == "MedicationRequest"
                   and e.data["status"] == "stopped" and e.data["encounter"] != stay.id}
        assert not earlier & picked  # stopped long before this stay: not news at discharge
        # Knowledge for warning signs, diet and activity comes from semantic queries.
        assert {q.kind for q in plan.queries} == {"knowledge", "chart"}


def test_every_active_medicine_even_when_there_are_many(charts: list[list[Evidence]]) -> None:
    base = charts[0]
    med = next(e for e in base if e.resource_type == "MedicationRequest")
    many = [med.model_copy(update={"id": f"MedicationRequest/extra-{i}",
                                   "data": {**med.data, "status": "active"}})
            for i in range(60)]
    picked = {e.id for e in _picked("discharge-instructions", base + many)}
    assert {e.id for e in many} <= picked  # not the top-k: all of them


def test_summary_required_are_active_problems_medicines_allergies(
        charts: list[list[Evidence]]) -> None:
    chart = charts[1]
    req = required_ids(plan_for("summary"), chart)
    types = {e.resource_type for e in chart if e.id in req}
    assert types <= {"Condition", "MedicationRequest", "AllergyIntolerance"}
    resolved = [e.id for e in chart if e.resource_type == "Condition"
                and e.data["status"] == "resolved"]
    assert resolved and not set(resolved) & req
    picked = {e.id for e in _picked("summary", chart)}
    assert req <= picked


def test_prior_auth_required_is_evidence_per_criterion_and_the_order(
        charts: list[list[Evidence]]) -> None:
    for chart in charts:
        order = next(e for e in chart if e.data.get("status") == "draft")
        policy = next(p for p in policies()
                      if any(p.applies_to_code(c.system, c.code) for c in order.codes))
        plan = plan_for("prior-auth", order_id=order.id, policy=policy)
        assert len(plan.queries) == len(policy.criteria) + 1
        req = required_ids(plan, chart)
        assert order.id in req
        for c in policy.criteria:
            hits = evidence_for_criterion(c, chart)
            assert not hits or set(e.id for e in hits) & req, c.id
        assert {e.id for e in _picked("prior-auth", chart, policy=policy)} >= {order.id}


def test_pick_filters_status_window_order_and_limit(charts: list[list[Evidence]]) -> None:
    chart = charts[2]
    pick = StructuredPick(resource_types=["Observation"], since_days=30, limit=3)
    got = apply_pick(pick, chart, today=ANCHOR)
    assert len(got) == 3
    assert [e.date for e in got] == sorted((e.date for e in got), reverse=True)
    assert all(e.date and e.date[:10] >= "2025-05-02" for e in got)
    older = apply_pick(StructuredPick(resource_types=["Observation"], descending=False), chart,
                       today=ANCHOR)
    assert older[0].date <= older[-1].date  # type: ignore[operator]
    stopped = apply_pick(StructuredPick(resource_types=["MedicationRequest"],
                                        statuses=["stopped"]), chart, today=ANCHOR)
    assert stopped and all(e.data["status"] == "stopped" for e in stopped)
    by_title = apply_pick(StructuredPick(resource_types=["Condition"], order_by="title",
                                         descending=False), chart, today=ANCHOR)
    assert [e.title.lower() for e in by_title] == sorted(e.title.lower() for e in by_title)


def test_encounter_scope(charts: list[list[Evidence]]) -> None:
    chart = charts[3]
    stay = find_encounter(chart)
    assert stay is not None and stay.data["class"] == "inpatient encounter"
    clinic = next(e for e in chart if e.resource_type == "Encounter" and e.id != stay.id)
    notes_pick = StructuredPick(resource_types=["DocumentReference"], encounter_scoped=True)
    in_stay = apply_pick(notes_pick, chart, today=ANCHOR)
    in_clinic = apply_pick(notes_pick, chart, today=ANCHOR, encounter_id=clinic.id)
    assert in_stay and in_clinic and not {e.id for e in in_stay} & {e.id for e in in_clinic}
    assert all(e.data["encounter"] == stay.id for e in in_stay)
    # A bare id works as well as Encounter/id; an unknown one is a clear error.
    bare = clinic.id.split("/", 1)[1]
    assert apply_pick(notes_pick, chart, today=ANCHOR, encounter_id=bare) == in_clinic
    with pytest.raises(BadInput, match="not in this patient's chart"):
        apply_pick(notes_pick, chart, encounter_id="Encounter/nope")
    # No encounters at all: an encounter-scoped pick is empty, never the whole chart.
    no_enc = [e for e in chart if e.resource_type != "Encounter"]
    assert apply_pick(notes_pick, no_enc) == []


def _ev(rid: str, rtype: str, when: str | None, **data: object) -> Evidence:
    return Evidence(id=rid, patient_id="p1", resource_type=rtype, title=rid, text=rid,
                    date=when, data=dict(data))


def test_date_window_and_stay_count_whole_days_only() -> None:
    """A partial or malformed date is in no window and no stay; a datetime by its written day."""
    recent = [_ev(f"Observation/{k}", "Observation", when, status="final") for k, when in [
        ("dt", "2025-05-25T08:00:00+02:00"), ("day", "2025-05-02"), ("edge", "2025-05-01"),
        ("month", "2025-05"), ("year", "2025"), ("junk", "soon"), ("none", None)]]
    got = apply_pick(StructuredPick(resource_types=["Observation"], since_days=30), recent,
                     today=ANCHOR)
    assert [e.id for e in got] == ["Observation/dt", "Observation/day"]

    stay = _ev("Encounter/s", "Encounter", "2025-05-10T22:00:00Z", status="finished",
               start="2025-05-10T22:00:00Z", end="2025-05-12T09:00:00Z")
    notes = [_ev(f"DocumentReference/{k}", "DocumentReference", when, status="current")
             for k, when in [("first", "2025-05-10"), ("last", "2025-05-12T23:59:00Z"),
                             ("after", "2025-05-13"), ("month", "2025-05")]]
    got = apply_pick(StructuredPick(resource_types=["DocumentReference"], encounter_scoped=True),
                     [stay, *notes], today=ANCHOR, encounter_id="Encounter/s")
    assert {e.id for e in got} == {"DocumentReference/first", "DocumentReference/last"}


def test_pending_orders_need_a_pending_status() -> None:
    """draft / active / on-hold only: an order with no status (invalid FHIR) is not pending."""
    assert PENDING_ORDER == ("draft", "active", "on-hold")
    orders = [_ev(f"ServiceRequest/{s}", "ServiceRequest", "2025-05-01", status=s)
              for s in ("draft", "active", "on-hold", "completed", "revoked")]
    orders.append(_ev("ServiceRequest/none", "ServiceRequest", "2025-05-01"))
    picked = {e.id for e in _picked("summary", orders)}
    assert picked == {"ServiceRequest/draft", "ServiceRequest/active", "ServiceRequest/on-hold"}
