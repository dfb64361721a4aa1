"""EdgeIndex: the evidence index on qdrant-edge-py (Qdrant's engine in-process, on a folder).

One edge shard per collection: ``<path>/chart`` and ``<path>/knowledge``. A shard takes an
exclusive lock on its write-ahead log, so only one process (and one ``EdgeIndex``) may open a folder
at a time; a second opener gets a ``StoreError`` saying so. The service owns the index while it
runs; the CLI ingests through the service's API then.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import qdrant_edge as qe

from retrieval.errors import StoreError
from retrieval.evidence import Evidence, point_id_for
from retrieval.sparse import sparse_query, sparse_vector
from retrieval.vector_index import (
    DENSE,
    KINDS,
    RRF_K,
    SPARSE,
    Hit,
    assert_patient,
    check_search,
    check_upsert,
    evidence_from_payload,
    indexable,
    payload_for,
    prefetch_limit,
)

_BATCH = 512


def _config(dim: int) -> qe.EdgeConfig:
    return qe.EdgeConfig(
        vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
        sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
    )


def _open_shard(folder: Path, dim: int) -> qe.EdgeShard:
    try:
        if folder.is_dir() and any(folder.iterdir()):
            return qe.EdgeShard.load(str(folder), _config(dim))
        folder.mkdir(parents=True, exist_ok=True)
        shard = qe.EdgeShard.create(str(folder), _config(dim))
    except Exception as exc:  # the binding raises plain exceptions with the engine's message
        msg = str(exc)
        if "WouldBlock" in msg or "lock" in msg.lower():
            raise StoreError(
                f"the evidence index at {folder} is in use by another process",
                where="EdgeIndex",
                fix="only one process can open the embedded index: while the chartdraft service "
                "runs, ingest through its API (POST /v1/charts) or stop it first; or use a Qdrant "
                "server (qdrant_url) that many processes can share",
            ) from exc
        raise StoreError(
            f"cannot open the evidence index at {folder}: {msg}",
            where="EdgeIndex",
            fix="check the folder's permissions; if it was built with another embedding model "
            "(different dimensions), move it aside and re-ingest",
        ) from exc
    # Keyword indexes make the patient filter an index lookup, not a scan; is_tenant groups a
    # patient's points together on disk.
    shard.update(
        qe.UpdateOperation.create_field_index("patient_id", qe.KeywordIndexParams(is_tenant=True))
    )
    for name in ("kind", "resource_type", "evidence_id"):
        shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))
    return shard


def _match(key: str, value: str) -> qe.FieldCondition:
    return qe.FieldCondition(key, match=qe.MatchValue(value))


class EdgeIndex:
    """The embedded evidence index (see module docstring). Thread-safe."""

    def __init__(self, path: Path, dim: int = 384) -> None:
        self.path = Path(path)
        self.dim = dim
        self._lock = threading.RLock()
        self._shards: dict[str, qe.EdgeShard] = {}
        try:
            for kind in KINDS:
                self._shards[kind] = _open_shard(self.path / kind, dim)
        except BaseException:
            self.close()
            raise

    def _shard(self, kind: str) -> qe.EdgeShard:
        shard = self._shards.get(kind)
        if shard is None:
            raise StoreError("the evidence index is closed", where="EdgeIndex", fix="reopen it")
        return shard

    def upsert(self, items: list[Evidence], dense: list[list[float]]) -> None:
        check_upsert(items, dense, self.dim)
        by_kind: dict[str, list[qe.Point]] = {k: [] for k in KINDS}
        for e, vec in indexable(items, dense):
            idx, vals = sparse_vector(f"{e.title}. {e.text}")
            vectors: dict[str, Any] = {DENSE: list(vec), SPARSE: qe.SparseVector(idx, vals)}
            by_kind[e.kind].append(qe.Point(e.point_id, vectors, payload_for(e)))
        with self._lock:
            for kind, points in by_kind.items():
                for start in range(0, len(points), _BATCH):
                    chunk = points[start : start + _BATCH]
                    self._shard(kind).update(qe.UpdateOperation.upsert_points(chunk))

    def search(
        self,
        *,
        dense: list[float],
        text: str,
        patient_id: str | None,
        kind: Literal["chart", "knowledge"] = "chart",
        resource_types: list[str] | None = None,
        limit: int = 10,
    ) -> list[Hit]:
        check_search(dense=dense, patient_id=patient_id, kind=kind, limit=limit, dim=self.dim)
        must: list[Any] = []
        if kind == "chart":
            assert patient_id  # check_search enforced it
            must.append(_match("patient_id", patient_id))
        if resource_types:
            must.append(qe.FieldCondition("resource_type", match=qe.MatchAny(list(resource_types))))
        flt = qe.Filter(must=must) if must else None
        n = prefetch_limit(limit)
        prefetches = [qe.Prefetch(n, query=qe.Query.Nearest(list(dense), using=DENSE), filter=flt)]
        idx, vals = sparse_query(text)
        if idx:
            sparse = qe.Query.Nearest(qe.SparseVector(idx, vals), using=SPARSE)
            prefetches.append(qe.Prefetch(n, query=sparse, filter=flt))
        request = qe.QueryRequest(
            limit=limit,
            query=qe.Fusion.Rrf(k=RRF_K),  # type: ignore[arg-type]  # the stub omits Fusion.Rrf
            prefetches=prefetches,
            filter=flt,
            with_payload=True,
        )
        # Reads do not take the lock: the engine is safe for concurrent readers.
        points = self._shard(kind).query(request)
        hits = [Hit(evidence_from_payload(p.payload), float(p.score)) for p in points]
        if kind == "chart":
            assert patient_id
            assert_patient(hits, patient_id)
        return hits

    def delete_patient(self, patient_id: str) -> None:
        with self._lock:
            flt = qe.Filter(must=[_match("patient_id", patient_id)])
            self._shard("chart").update(qe.UpdateOperation.delete_points_by_filter(flt))

    def delete_ids(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        points: list[Any] = [point_id_for(i) for i in ids]
        with self._lock:
            for kind in KINDS:
                self._shard(kind).update(qe.UpdateOperation.delete_points(points))

    def count(
        self, kind: Literal["chart", "knowledge"] = "chart", patient_id: str | None = None
    ) -> int:
        flt = qe.Filter(must=[_match("patient_id", patient_id)]) if patient_id else None
        return int(self._shard(kind).count(qe.CountRequest(exact=True, filter=flt)))

    def optimize(self) -> None:
        """Build the vector indexes now (blocking); search works without it."""
        with self._lock:
            for shard in self._shards.values():
                shard.optimize()

    def close(self) -> None:
        with self._lock:
            shards, self._shards = self._shards, {}
            for shard in shards.values():
                try:
                    shard.flush()
                finally:
                    shard.close()

    def __enter__(self) -> EdgeIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
