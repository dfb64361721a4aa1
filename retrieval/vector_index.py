"""The evidence index: one small store interface over Qdrant, embedded or by URL.

    EvidenceIndex (Protocol)
    ├── EdgeIndex          qdrant-edge-py: Qdrant's own engine in-process on a folder (the default)
    └── QdrantClientIndex  qdrant-client: a Qdrant server/cluster by URL; local mode for tests

Both hold two collections: ``chart`` (every point carries ``patient_id``; every search is filtered
by it) and ``knowledge`` (knowledge-base passages, no patient). A point's
id is ``Evidence.point_id`` (a UUID derived from the evidence id), so upserts are idempotent. Each
point has a dense vector (``dense``, cosine) and a BM25-style sparse vector (``sparse``, IDF
applied by Qdrant); a search runs both, filtered, and fuses them by reciprocal rank (RRF).

The embedded engine was chosen by measurement (``python -m evals.bench retrieval``): qdrant-edge
answers a filtered hybrid query in well under a millisecond at 100k points, qdrant-client's local
mode (pure Python) takes hundreds of milliseconds at 10k.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from retrieval.errors import BadInput, StoreError
from retrieval.evidence import Evidence, EvidenceKind

if TYPE_CHECKING:
    from retrieval.index_edge import EdgeIndex
    from retrieval.index_qdrant import QdrantClientIndex

DENSE = "dense"
SPARSE = "sparse"
KINDS: tuple[EvidenceKind, ...] = ("chart", "knowledge")
# Each half of the hybrid query fetches this many candidates (at least) before fusion.
PREFETCH_FACTOR = 4
PREFETCH_MIN = 40
RRF_K = 60


@dataclass(frozen=True)
class Hit:
    evidence: Evidence
    score: float
    """Fused RRF score: larger is better; comparable only within one result list."""


@runtime_checkable
class EvidenceIndex(Protocol):
    def upsert(self, items: list[Evidence], dense: list[list[float]]) -> None: ...

    def search(
        self,
        *,
        dense: list[float],
        text: str,
        patient_id: str | None,
        kind: Literal["chart", "knowledge"] = "chart",
        resource_types: list[str] | None = None,
        limit: int = 10,
    ) -> list[Hit]: ...

    def delete_patient(self, patient_id: str) -> None: ...

    def delete_ids(self, ids: Sequence[str]) -> None: ...

    def count(
        self, kind: Literal["chart", "knowledge"] = "chart", patient_id: str | None = None
    ) -> int: ...

    def close(self) -> None: ...


class IsolationBreach(StoreError):
    """The index returned another patient's evidence: refuse, never pass it on."""

    status = 500
    title = "Patient isolation breach"


def assert_patient(hits: Iterable[Hit | Evidence], patient_id: str) -> None:
    """Raise if any chart hit belongs to a patient other than ``patient_id``.

    The index filters by patient; the pipeline calls this again before evidence reaches a prompt.
    """
    for h in hits:
        e = h.evidence if isinstance(h, Hit) else h
        if e.kind != "knowledge" and e.patient_id != patient_id:
            raise IsolationBreach(
                f"evidence {e.id} is not patient {patient_id!r}'s; the result was refused",
                where="evidence index search",
                fix="report this: the index's patient filter failed",
            )


# --- helpers shared by the implementations -------------------------------------------------


def payload_for(e: Evidence) -> dict[str, Any]:
    """The stored payload: the Evidence JSON plus flat fields to filter on."""
    return {
        "evidence": e.model_dump(mode="json"),
        "evidence_id": e.id,
        "patient_id": e.patient_id,
        "kind": e.kind,
        "resource_type": e.resource_type,
        "date": e.date,
    }


def evidence_from_payload(payload: dict[str, Any] | None) -> Evidence:
    if not payload or "evidence" not in payload:
        raise StoreError(
            "an index point has no evidence payload",
            where="evidence index",
            fix="re-ingest the chart (the index may predate this version)",
        )
    return Evidence.model_validate(payload["evidence"])


def check_upsert(items: list[Evidence], dense: list[list[float]], dim: int) -> None:
    if len(items) != len(dense):
        raise BadInput(
            f"{len(items)} evidence items but {len(dense)} vectors",
            where="EvidenceIndex.upsert",
            fix="pass exactly one dense vector per evidence item, in the same order",
        )
    for e, v in zip(items, dense, strict=True):
        if len(v) != dim:
            raise BadInput(
                f"vector for {e.id} has {len(v)} dimensions, the index expects {dim}",
                where="EvidenceIndex.upsert",
                fix="embed with the same model the index was created with, or use a new index",
            )


def indexable(
    items: list[Evidence], dense: list[list[float]]
) -> list[tuple[Evidence, list[float]]]:
    """The (evidence, vector) pairs worth indexing.

    Chart evidence without a patient (directory entries such as Organization or Practitioner)
    could never be returned: every chart search is filtered by patient. It is left out of the
    index; the chart store still holds it for structured picks.
    """
    return [
        (e, v) for e, v in zip(items, dense, strict=True) if e.kind == "knowledge" or e.patient_id
    ]


def check_search(
    *, dense: list[float], patient_id: str | None, kind: str, limit: int, dim: int
) -> None:
    if kind not in KINDS:
        raise BadInput(
            f"unknown evidence kind {kind!r}",
            where="EvidenceIndex.search",
            fix="use kind='chart' or kind='knowledge'",
        )
    if kind == "chart" and not patient_id:
        raise BadInput(
            "a chart search needs a patient_id",
            where="EvidenceIndex.search",
            fix="pass patient_id: chart evidence is only ever searched within one patient",
        )
    if len(dense) != dim:
        raise BadInput(
            f"query vector has {len(dense)} dimensions, the index expects {dim}",
            where="EvidenceIndex.search",
            fix="embed the query with the model the index was built with",
        )
    if limit < 1:
        raise BadInput(f"limit must be at least 1, got {limit}", where="EvidenceIndex.search")


def prefetch_limit(limit: int) -> int:
    return max(limit * PREFETCH_FACTOR, PREFETCH_MIN)


def open_index(
    *, url: str | None, path: Path, dim: int, api_key: str | None = None
) -> EvidenceIndex:
    """A Qdrant server by ``url`` when given, else the embedded qdrant-edge index under ``path``."""
    if url:
        from retrieval.index_qdrant import QdrantClientIndex

        return QdrantClientIndex(url=url, api_key=api_key, dim=dim)
    from retrieval.index_edge import EdgeIndex

    return EdgeIndex(Path(path), dim=dim)


def __getattr__(name: str) -> Any:
    # The implementations import this module; export them lazily to avoid an import cycle.
    if name == "EdgeIndex":
        from retrieval.index_edge import EdgeIndex

        return EdgeIndex
    if name == "QdrantClientIndex":
        from retrieval.index_qdrant import QdrantClientIndex

        return QdrantClientIndex
    raise AttributeError(name)


__all__ = [
    "EdgeIndex",
    "EvidenceIndex",
    "Hit",
    "IsolationBreach",
    "QdrantClientIndex",
    "assert_patient",
    "open_index",
]
