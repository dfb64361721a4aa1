"""Ingest: chart source -> load -> normalize -> chart store + evidence index (DESIGN.md flow).

Plain arguments only (the store, the index and the embedder are built by ``assistant.runtime``).
Idempotent: unchanged resources are not re-embedded; changed ones replace their old evidence.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from retrieval.chart_store import ChartStore
from retrieval.embeddings import Embedder
from retrieval.evidence import Evidence
from retrieval.fhir_load import LoadIssue, LoadResult, load_bytes, load_path
from retrieval.normalize import normalize_all
from retrieval.vector_index import EvidenceIndex

Progress = Callable[[int, int], None]  # (done, total) evidence units embedded


@dataclass
class IngestReport:
    patients: set[str] = field(default_factory=set)
    resources: int = 0
    evidence: int = 0
    embedded: int = 0
    issues: list[LoadIssue] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, object]:
        return {
            "patients": len(self.patients),
            "resources": self.resources,
            "evidence": self.evidence,
            "embedded": self.embedded,
            "errors": [str(i) for i in self.issues],
            "notices": self.notices,
        }


def _embed_in_batches(
    items: list[Evidence], embedder: Embedder, batch: int, progress: Progress | None
) -> list[list[float]]:
    vectors: list[list[float]] = []
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        vectors.extend(embedder.embed([f"{e.title}. {e.text}" for e in chunk]))
        if progress:
            progress(min(start + batch, len(items)), len(items))
    return vectors


def ingest_loaded(
    loaded: LoadResult,
    *,
    store: ChartStore,
    index: EvidenceIndex,
    embedder: Embedder,
    progress: Progress | None = None,
    batch: int = 64,
) -> IngestReport:
    report = IngestReport(issues=list(loaded.issues), notices=list(loaded.notices))
    evidence, issues = normalize_all(loaded.resources)
    # A resource that loaded but could not be normalized has no evidence either: name its patient
    # so drafts warn about it just like a resource the loader skipped.
    owner = {(r.resource_type, r.id): r.patient_id for r in loaded.resources}
    for issue in issues:
        if issue.patient_id is None:
            issue.patient_id = owner.get((issue.resource_type or "", issue.resource_id or ""))
    report.issues.extend(issues)
    report.resources = len(loaded.resources)
    report.evidence = len(evidence)
    report.patients = {r.patient_id for r in loaded.resources if r.patient_id}
    # Only evidence whose content changed needs new vectors; the store knows what it already holds.
    refs = {f"{r.resource_type}/{r.id}" for r in loaded.resources}
    before: dict[str, Evidence] = {}
    for pid in report.patients:
        before.update(
            (e.id, e) for e in store.evidence_for(pid) if e.resource_id in refs
        )
    changed = [e for e in evidence if before.get(e.id) != e]
    # A changed resource can yield fewer units than before (a shorter note): drop the leftovers.
    stale = set(before) - {e.id for e in evidence}
    if stale:
        index.delete_ids(sorted(stale))
    # Directory resources (Practitioner, Organization, Medication) name no patient: the store keeps
    # them for lookups, but the index is per patient and only holds patient evidence.
    indexable = [e for e in changed if e.patient_id]
    if indexable:
        index.upsert(indexable, _embed_in_batches(indexable, embedder, batch, progress))
    report.embedded = len(indexable)
    # The store last: if embedding or indexing fails, a re-run still sees these as changed.
    store.upsert(loaded.resources, evidence)
    # After the upsert: a resource that loaded clears its old issue there, then new ones are kept
    # so later drafts for the patient say which part of the chart could not be read.
    store.record_issues(report.issues)
    return report


def ingest_paths(
    paths: Iterable[str | Path],
    *,
    store: ChartStore,
    index: EvidenceIndex,
    embedder: Embedder,
    progress: Progress | None = None,
) -> IngestReport:
    loaded = LoadResult(resources=[], issues=[], notices=[])
    for p in paths:
        loaded.extend(load_path(p))
    return ingest_loaded(loaded, store=store, index=index, embedder=embedder, progress=progress)


def ingest_body(
    data: bytes, *, store: ChartStore, index: EvidenceIndex, embedder: Embedder
) -> IngestReport:
    return ingest_loaded(load_bytes(data), store=store, index=index, embedder=embedder)


def ingest_knowledge(
    passages: list[Evidence], *, index: EvidenceIndex, embedder: Embedder
) -> int:
    """Knowledge passages live in their own collection; re-ingesting replaces them by id."""
    if not passages:
        return 0
    index.upsert(passages, _embed_in_batches(passages, embedder, 64, None))
    return len(passages)
