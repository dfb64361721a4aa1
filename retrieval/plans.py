"""Per-document plans: which structured picks and semantic queries each document type needs.

A discharge draft must see *every* active medication and *every* allergy, not the top-k most
similar passages, so plans pick structured facts straight from the patient's normalized chart and
use semantic search only for free text (note sections, knowledge base). ``required_ids`` names the
evidence a document may not leave out; the omission check and the token budget honour it.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from retrieval.dates import day_of
from retrieval.errors import BadInput
from retrieval.evidence import Evidence
from retrieval.knowledge import Policy, evidence_for_criterion

DOC_TYPES = ("summary", "discharge-instructions", "prior-auth")
ACTIVE_MED = ("active", "on-hold")
STOPPED_MED = ("stopped", "cancelled", "completed")
ACTIVE_CONDITION = ("active", "recurrence", "relapse")
# An order still to be done (and the only kind a prior-auth letter may ask for). One without a
# status is not pending: status is required on ServiceRequest and MedicationRequest, so a
# missing one is broken data, and a letter must not request what may be revoked or completed.
PENDING_ORDER = ("draft", "active", "on-hold")
UPCOMING_APPOINTMENT = ("booked", "proposed", "pending")  # scheduled, not yet happened
# How many chart units one prior-auth criterion may make required (newest first).
PER_CRITERION = 3


class StructuredPick(BaseModel):
    """Select chart evidence by type, status, date window and encounter; sort and cut."""

    resource_types: list[str]
    statuses: list[str] | None = None
    since_days: int | None = None
    encounter_scoped: bool = False
    order_by: Literal["date", "title"] = "date"
    descending: bool = True
    limit: int | None = None
    required: bool = False


class SemanticQuery(BaseModel):
    text: str
    kind: Literal["chart", "knowledge"] = "chart"
    resource_types: list[str] | None = None
    limit: int = 5


class Plan(BaseModel):
    doc_type: str
    picks: list[StructuredPick]
    queries: list[SemanticQuery] = Field(default_factory=list)
    encounter_id: str | None = None
    order_id: str | None = None
    policy: Policy | None = None


def _check(doc_type: str) -> None:
    if doc_type not in DOC_TYPES:
        raise BadInput(f"unknown document type {doc_type!r}", where="doc_type",
                       fix=f"use one of: {', '.join(DOC_TYPES)}")


def plan_for(doc_type: str, *, encounter_id: str | None = None, order_id: str | None = None,
             policy: Policy | None = None) -> Plan:
    _check(doc_type)
    P, Q = StructuredPick, SemanticQuery
    if doc_type == "summary":
        picks = [
            P(resource_types=["Condition"], statuses=list(ACTIVE_CONDITION), required=True),
            P(resource_types=["MedicationRequest"], statuses=list(ACTIVE_MED), required=True),
            P(resource_types=["AllergyIntolerance"], required=True),
            P(resource_types=["Observation"], since_days=365, limit=40),
            P(resource_types=["DiagnosticReport"], since_days=365, limit=5),
            P(resource_types=["Encounter"], limit=5),
            P(resource_types=["Procedure"], since_days=730, limit=8),
            P(resource_types=["ServiceRequest"], statuses=list(PENDING_ORDER), limit=10),
            P(resource_types=["MedicationRequest"], statuses=["draft"], limit=5),
            P(resource_types=["Appointment"], statuses=list(UPCOMING_APPOINTMENT),
              limit=5),
        ]
        if encounter_id:
            picks.append(P(resource_types=["DocumentReference"], encounter_scoped=True, limit=10))
        queries = [
            Q(text="assessment and plan, open issues and follow-up", kind="chart",
              resource_types=["DocumentReference"], limit=4),
            Q(text="history of present illness and hospital course", kind="chart",
              resource_types=["DocumentReference"], limit=3),
        ]
    elif doc_type == "discharge-instructions":
        picks = [
            P(resource_types=["Encounter"], encounter_scoped=True, limit=1),
            P(resource_types=["MedicationRequest"], statuses=list(ACTIVE_MED), required=True),
            P(resource_types=["MedicationRequest"], statuses=list(STOPPED_MED),
              encounter_scoped=True),
            P(resource_types=["AllergyIntolerance"], required=True),
            P(resource_types=["Condition"], statuses=list(ACTIVE_CONDITION), limit=15),
            P(resource_types=["Observation"], encounter_scoped=True, limit=20),
            P(resource_types=["Procedure"], encounter_scoped=True, limit=5),
            P(resource_types=["ServiceRequest"], statuses=list(PENDING_ORDER), limit=10),
            P(resource_types=["Appointment"], statuses=list(UPCOMING_APPOINTMENT),
              limit=5),
            P(resource_types=["DocumentReference"], encounter_scoped=True, limit=12),
        ]
        queries = [
            Q(text="warning signs: when to call the doctor or go to the emergency room",
              kind="knowledge", limit=4),
            Q(text="diet and activity at home after a hospital stay", kind="knowledge", limit=4),
            Q(text="hospital course and discharge plan", kind="chart",
              resource_types=["DocumentReference"], limit=3),
        ]
    else:
        picks = [
            P(resource_types=["ServiceRequest", "MedicationRequest"],
              statuses=list(PENDING_ORDER), limit=10),
            P(resource_types=["MedicationRequest"], statuses=list(STOPPED_MED), limit=20),
            P(resource_types=["Condition"], limit=30),
            P(resource_types=["Procedure"], since_days=730, limit=15),
            P(resource_types=["Observation"], since_days=365, limit=40),
            P(resource_types=["Coverage"], limit=2),
            P(resource_types=["Encounter"], limit=5),
            P(resource_types=["DocumentReference"], limit=12),
        ]
        queries = [Q(text=c.text, kind="chart", limit=3) for c in (policy.criteria if policy
                                                                 else [])]
        if policy is not None:
            # Every passage of the policy (summary, criteria, duration, documentation).
            queries.append(Q(text=policy.title, kind="knowledge", limit=6))
    return Plan(doc_type=doc_type, picks=picks, queries=queries, encounter_id=encounter_id,
                order_id=order_id, policy=policy)


def _ref(encounter_id: str) -> str:
    return encounter_id if "/" in encounter_id else f"Encounter/{encounter_id}"


def _is_inpatient(e: Evidence) -> bool:
    cls = str(e.data.get("class") or "").lower()
    return cls in ("imp", "acute", "nonac") or "inpatient" in cls


def find_encounter(evidence: list[Evidence], encounter_id: str | None = None) -> Evidence | None:
    """The named encounter, else the latest inpatient stay, else the latest encounter."""
    encounters = [e for e in evidence if e.resource_type == "Encounter"]
    if encounter_id:
        ref = _ref(encounter_id)
        return next((e for e in encounters if e.id == ref), None)
    encounters.sort(key=lambda e: e.date or "", reverse=True)
    return next((e for e in encounters if _is_inpatient(e)), encounters[0] if encounters else None)


def in_encounter(e: Evidence, enc: Evidence) -> bool:
    """Tied to the encounter by reference, or dated within its period."""
    if e.id == enc.id or e.data.get("encounter") == enc.id:
        return True
    if e.resource_type == "Encounter":
        return False
    when, start = day_of(e.date), day_of(enc.data.get("start") or enc.date)
    end = day_of(enc.data.get("end")) or start
    return bool(when and start and end and start <= when <= end)


def apply_pick(pick: StructuredPick, evidence: list[Evidence], *, today: date | None = None,
               encounter_id: str | None = None) -> list[Evidence]:
    today = today or date.today()
    out = [e for e in evidence if e.kind == "chart" and e.resource_type in pick.resource_types
           and e.data.get("status") != "entered-in-error"]
    if pick.statuses is not None:
        out = [e for e in out if e.data.get("status") in pick.statuses]
    if pick.since_days is not None:
        floor = today - timedelta(days=pick.since_days)
        out = [e for e in out if (d := day_of(e.date)) is not None and d >= floor]
    if pick.encounter_scoped:
        enc = find_encounter(evidence, encounter_id)
        if enc is None:
            # No encounter to scope to: a named one is a caller error, none at all means no stay.
            if encounter_id:
                raise BadInput(f"encounter {encounter_id!r} is not in this patient's chart",
                               where="encounter_id", fix="pass an Encounter id of this patient")
            out = []
        else:
            out = [e for e in out if in_encounter(e, enc)]
    if pick.order_by == "title":
        out.sort(key=lambda e: e.title.lower(), reverse=pick.descending)
    else:
        out.sort(key=lambda e: e.date or "", reverse=pick.descending)
    return out[: pick.limit] if pick.limit is not None else out


def required_ids(plan: Plan, evidence: list[Evidence]) -> set[str]:
    """Evidence a draft of this plan may not omit, from the patient's whole chart."""
    _check(plan.doc_type)
    chart = [e for e in evidence if e.kind == "chart"
             and e.data.get("status") != "entered-in-error"]
    active_meds = {e.id for e in chart if e.resource_type == "MedicationRequest"
                   and e.data.get("status") in ACTIVE_MED}
    allergies = {e.id for e in chart if e.resource_type == "AllergyIntolerance"}
    if plan.doc_type == "discharge-instructions":
        return active_meds | allergies
    if plan.doc_type == "summary":
        conditions = {e.id for e in chart if e.resource_type == "Condition"
                      and e.data.get("status") in ACTIVE_CONDITION}
        return conditions | active_meds | allergies
    req: set[str] = set()
    if plan.policy is not None:
        for c in plan.policy.criteria:
            hits = evidence_for_criterion(c, chart)
            hits.sort(key=lambda e: e.date or "", reverse=True)
            req.update(e.id for e in hits[:PER_CRITERION])
    if plan.order_id:
        oid = plan.order_id
        req.update(e.id for e in chart if e.id == oid or e.id.split("/", 1)[-1] == oid)
    return req
