"""QdrantClientIndex: the evidence index on qdrant-client (a Qdrant server or cluster by URL).

Also runs qdrant-client's local mode (``location=":memory:"`` or a folder ``path``) so the same code
is tested here without a server; local mode is a pure-Python engine, fine for tests, too slow for
serving (measured in ``evals.bench_retrieval``), and it locks its folder against a second process.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Literal

from qdrant_client import QdrantClient, models

from retrieval.errors import BadInput, StoreError
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

_BATCH = 256


def _match(key: str, value: str) -> models.FieldCondition:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


class QdrantClientIndex:
    """Evidence index over qdrant-client: ``url`` for a server, else ``path``/``location`` local."""

    def __init__(
        self,
        url: str | None = None,
        path: Path | None = None,
        api_key: str | None = None,
        dim: int = 384,
        *,
        location: str | None = None,
        prefix: str = "chartdraft",
        timeout: int = 10,
    ) -> None:
        if sum(x is not None for x in (url, path, location)) != 1:
            raise BadInput(
                "give exactly one of url, path or location",
                where="QdrantClientIndex",
                fix="url for a Qdrant server, path for local mode on a folder, "
                "location=':memory:' for tests",
            )
        self.dim = dim
        self.collections: dict[str, str] = {k: f"{prefix}_{k}" for k in KINDS}
        self._lock = threading.RLock()
        self._local = url is None
        where = url or (str(path) if path is not None else location)
        try:
            if url is not None:
                self.client = QdrantClient(url=url, api_key=api_key, timeout=timeout)
            elif path is not None:
                self.client = QdrantClient(path=str(path))
            else:
                self.client = QdrantClient(location=location)
            self._ensure_collections()
        except (BadInput, StoreError):
            raise
        except Exception as exc:
            msg = str(exc)
            in_use = "already accessed by another instance" in msg
            raise StoreError(
                f"cannot open the Qdrant index at {where}: {msg}",
                where="QdrantClientIndex",
                fix=(
                    "local mode allows one process per folder: stop the other one or use a server"
                    if in_use
                    else "check that the Qdrant server is up and the URL/API key are right"
                ),
            ) from exc

    def _ensure_collections(self) -> None:
        for name in self.collections.values():
            if self.client.collection_exists(name):
                info = self.client.get_collection(name)
                vectors = info.config.params.vectors
                size = vectors[DENSE].size if isinstance(vectors, dict) else None
                if size != self.dim:
                    raise BadInput(
                        f"collection {name} holds {size}-dimension vectors, not {self.dim}",
                        where="QdrantClientIndex",
                        fix="use the embedding model it was built with, or another prefix",
                    )
                continue
            self.client.create_collection(
                name,
                vectors_config={
                    DENSE: models.VectorParams(size=self.dim, distance=models.Distance.COSINE)
                },
                sparse_vectors_config={
                    SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)
                },
            )
            with warnings.catch_warnings():
                # Local mode has no payload indexes and warns about it; a server uses them.
                warnings.simplefilter("ignore")
                self.client.create_payload_index(
                    name,
                    "patient_id",
                    models.KeywordIndexParams(type=models.KeywordIndexType.KEYWORD, is_tenant=True),
                )
                for key in ("kind", "resource_type", "evidence_id"):
                    self.client.create_payload_index(name, key, models.PayloadSchemaType.KEYWORD)

    def upsert(self, items: list[Evidence], dense: list[list[float]]) -> None:
        check_upsert(items, dense, self.dim)
        by_kind: dict[str, list[models.PointStruct]] = {k: [] for k in KINDS}
        for e, vec in indexable(items, dense):
            idx, vals = sparse_vector(f"{e.title}. {e.text}")
            vector: dict[str, Any] = {
                DENSE: list(vec),
                SPARSE: models.SparseVector(indices=idx, values=vals),
            }
            by_kind[e.kind].append(
                models.PointStruct(id=e.point_id, vector=vector, payload=payload_for(e))
            )
        with self._lock:
            for kind, points in by_kind.items():
                for start in range(0, len(points), _BATCH):
                    self.client.upsert(
                        self.collections[kind], points=points[start : start + _BATCH], wait=True
                    )

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
            must.append(
                models.FieldCondition(
                    key="resource_type", match=models.MatchAny(any=list(resource_types))
                )
            )
        flt = models.Filter(must=must) if must else None
        n = prefetch_limit(limit)
        prefetch = [models.Prefetch(query=list(dense), using=DENSE, filter=flt, limit=n)]
        idx, vals = sparse_query(text)
        if idx:
            prefetch.append(
                models.Prefetch(
                    query=models.SparseVector(indices=idx, values=vals),
                    using=SPARSE,
                    filter=flt,
                    limit=n,
                )
            )
        with self._lock if self._local else nullcontext():
            res = self.client.query_points(
                self.collections[kind],
                prefetch=prefetch,
                query=models.RrfQuery(rrf=models.Rrf(k=RRF_K)),
                query_filter=flt,
                limit=limit,
                with_payload=True,
            )
        hits = [Hit(evidence_from_payload(p.payload), float(p.score)) for p in res.points]
        if kind == "chart":
            assert patient_id
            assert_patient(hits, patient_id)
        return hits

    def delete_patient(self, patient_id: str) -> None:
        selector = models.FilterSelector(
            filter=models.Filter(must=[_match("patient_id", patient_id)])
        )
        with self._lock:
            self.client.delete(self.collections["chart"], points_selector=selector, wait=True)

    def delete_ids(self, ids: Sequence[str]) -> None:
        if not ids:
            return
        points: list[models.ExtendedPointId] = [point_id_for(i) for i in ids]
        with self._lock:
            for name in self.collections.values():
                self.client.delete(
                    name, points_selector=models.PointIdsList(points=points), wait=True
                )

    def count(
        self, kind: Literal["chart", "knowledge"] = "chart", patient_id: str | None = None
    ) -> int:
        flt = models.Filter(must=[_match("patient_id", patient_id)]) if patient_id else None
        with self._lock if self._local else nullcontext():
            return int(
                self.client.count(self.collections[kind], count_filter=flt, exact=True).count
            )

    def close(self) -> None:
        with self._lock:
            self.client.close()

    def __enter__(self) -> QdrantClientIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
