"""Gather evidence for one draft: the plan's structured picks, then its semantic queries.

Structured picks come straight from the patient's normalized evidence (every active medication, not
the top-k); semantic queries go to the index with a mandatory patient filter. Every chart evidence
id is checked against the patient once more here, before anything can reach a prompt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from retrieval.chart_store import ChartStore
from retrieval.embeddings import Embedder
from retrieval.errors import NotFound
from retrieval.evidence import Evidence
from retrieval.knowledge import relevant_knowledge
from retrieval.plans import Plan, apply_pick, required_ids
from retrieval.vector_index import EvidenceIndex, assert_patient


@dataclass
class Gathered:
    patient_id: str
    chart: list[Evidence]
    """The patient's whole normalized chart (the checks look for contradictions in it)."""
    evidence: list[Evidence]
    """What the plan selected, in priority order: required first, then picks, then search hits."""
    required: set[str] = field(default_factory=set)
    origin: dict[str, str] = field(default_factory=dict)  # id -> "pick" | "search"
    unreadable: list[dict[str, Any]] = field(default_factory=list)
    """Resources of this patient the loader skipped (ChartStore.issues_for): the draft says so."""


def gather(
    plan: Plan,
    patient_id: str,
    *,
    store: ChartStore,
    index: EvidenceIndex,
    embedder: Embedder,
    encounter_id: str | None = None,
    today: date | None = None,
) -> Gathered:
    chart = store.evidence_for(patient_id)
    if not chart:
        raise NotFound(
            f"no chart for patient {patient_id!r}",
            fix="ingest the patient's chart first (chartdraft ingest PATH, or POST /v1/charts)",
        )
    picked: list[Evidence] = []
    origin: dict[str, str] = {}
    for pick in plan.picks:
        for e in apply_pick(pick, chart, today=today, encounter_id=encounter_id):
            if e.id not in origin:
                origin[e.id] = "pick"
                picked.append(e)
    found: list[Evidence] = []
    if plan.queries:
        vectors = embedder.embed([q.text for q in plan.queries])
        for q, vec in zip(plan.queries, vectors, strict=True):
            hits = index.search(
                dense=vec,
                text=q.text,
                patient_id=patient_id if q.kind == "chart" else None,
                kind=q.kind,
                resource_types=q.resource_types,
                limit=q.limit,
            )
            for h in hits:
                if h.evidence.id not in origin:
                    origin[h.evidence.id] = "search"
                    found.append(h.evidence)
    if plan.doc_type == "discharge-instructions":
        # Education about *this* patient's problems and medicines: a generic semantic query
        # cannot know them, so match the knowledge base by the chart's codes and titles.
        for e in relevant_knowledge(chart):
            if e.id not in origin:
                origin[e.id] = "pick"
                found.append(e)
    selected = picked + found
    assert_patient(selected, patient_id)  # defence in depth: the index filtered already
    req = required_ids(plan, chart)
    ordered = [e for e in selected if e.id in req] + [e for e in selected if e.id not in req]
    # Required evidence that no pick surfaced still has to be shown (the omission check needs it).
    have = {e.id for e in ordered}
    ordered = [e for e in chart if e.id in req and e.id not in have] + ordered
    return Gathered(patient_id, chart, ordered, req, origin, store.issues_for(patient_id))
