"""Ingest: chart source -> load -> normalize -> chart store + evidence index (DESIGN.md flow).

Plain arguments only (the store, the index and the embedder are built by ``assistant.runtime``).
Idempotent: unchanged resources are not re-embedded; changed ones replace their old evidence.
Embedding work is ordered for the model, not the chart: each distinct text is embedded once, and
texts go to the embedder longest-first in large groups so its batches have little padding. A
resource that yields more than ``MAX_UNITS_PER_RESOURCE`` units (a 10 MB note) keeps its first
ones, with a notice.
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

# ~150 kB of note text (about 60 pages): the part of a note a draft can use; the rest is noise.
MAX_UNITS_PER_RESOURCE = 128
# Texts per embedder call: large enough to batch by length, small enough for steady progress.
EMBED_GROUP = 1024


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


def embed_text(e: Evidence) -> str:
    """What is embedded for a unit: its title and text."""
    return f"{e.title}. {e.text}"


def _embed_in_batches(
    items: list[Evidence], embedder: Embedder, batch: int, progress: Progress | None
) -> list[list[float]]:
    """Vectors in item order; distinct texts embedded once, longest first, ``batch`` per call."""
    texts = [embed_text(e) for e in items]
    unique = sorted(set(texts), key=len, reverse=True)
    found: dict[str, list[float]] = {}
    for start in range(0, len(unique), batch):
        group = unique[start : start + batch]
        found.update(zip(group, embedder.embed(group), strict=True))
        if progress:
            progress(min(len(items), round(len(items) * (start + len(group)) / len(unique))),
                     len(items))
    return [found[t] for t in texts]


def _cap_units(evidence: list[Evidence], notices: list[str]) -> list[Evidence]:
    """At most MAX_UNITS_PER_RESOURCE units per resource, in order; a notice for each cut."""
    counts: dict[str, int] = {}
    for e in evidence:
        counts[e.resource_id] = counts.get(e.resource_id, 0) + 1
    over = {ref for ref, n in counts.items() if n > MAX_UNITS_PER_RESOURCE}
    if not over:
        return evidence
    for ref in sorted(over):
        notices.append(
            f"{ref}: its text gives {counts[ref]} evidence units; only the first "
            f"{MAX_UNITS_PER_RESOURCE} are kept and searchable (a note that long is usually "
            "several documents in one: split it into one DocumentReference each)")
    kept: dict[str, int] = {}
    out = []
    for e in evidence:
        n = kept.get(e.resource_id, 0)
        if n < MAX_UNITS_PER_RESOURCE:
            out.append(e)
            kept[e.resource_id] = n + 1
    return out


def ingest_loaded(
    loaded: LoadResult,
    *,
    store: ChartStore,
    index: EvidenceIndex,
    embedder: Embedder,
    progress: Progress | None = None,
    batch: int = EMBED_GROUP,
) -> IngestReport:
    report = IngestReport(issues=list(loaded.issues), notices=list(loaded.notices))
    evidence, issues = normalize_all(loaded.resources)
    evidence = _cap_units(evidence, report.notices)
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
    index.upsert(passages, _embed_in_batches(passages, embedder, EMBED_GROUP, None))
    return len(passages)
