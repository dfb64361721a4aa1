"""Retrieval benchmark: search latency at 10k/100k evidence, and ingest throughput vs. LlamaIndex.

    python -m evals.bench retrieval        (part of `make bench`)
    python -m evals.bench_retrieval

(1) Search latency, embedding of the query excluded. A plan (DESIGN.md) is one structured pick (done
    in the chart store, not measured here) plus ~3 semantic queries: two filtered hybrid chart
    queries (one restricted to notes) and one knowledge query. The corpus is real evidence texts
    from ../shared/data (or synthetic ones where that is absent), embedded once with MiniLM and
    jittered to reach 10k and 100k points over 100 evidence per patient.
(2) Ingest throughput on a fixed random sample of ../shared/data, embedding included: our path
    (load -> normalize -> embed short renderings -> index) against the plain LlamaIndex way (a
    VectorStoreIndex over the resources as JSON documents, same MiniLM, same Qdrant engine).
"""

from __future__ import annotations

import gc
import json
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.embeddings import MiniLMEmbedder, default_model_dir
from retrieval.evidence import Evidence
from retrieval.index_edge import EdgeIndex
from retrieval.index_qdrant import QdrantClientIndex
from retrieval.vector_index import EvidenceIndex

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SIZES = (10_000, 100_000)
PER_PATIENT = 100
QUERIES = 1_000
QDRANT_LOCAL_QUERIES = 60  # local mode is slow: fewer queries keep the run bounded
INGEST_SAMPLE = 300  # resources per side for the ingest comparison
TARGET_P50_MS, TARGET_P95_MS = 15.0, 40.0
SEED = 0

PLAN_QUERIES = [
    ("shortness of breath and chest pain", ["DocumentReference"]),
    ("follow-up appointment and discharge plan", None),
    ("medication changes and new prescriptions", None),
    ("blood sugar control and diabetes", ["DocumentReference"]),
    ("allergic reaction to medication", None),
    ("reason for hospital admission", ["DocumentReference", "Encounter"]),
]
KB_QUERIES = ["low salt diet heart failure", "how to use an inhaler", "signs of infection"]


def _pct(xs: list[float], q: float) -> float:
    return float(np.percentile(np.array(xs), q))


def _real_texts(limit: int) -> list[Evidence]:
    """Evidence from the shared sample data (normalized), or synthetic stand-ins without it."""
    rng = random.Random(SEED)
    if DATA.is_dir():
        from retrieval.fhir_load import load_path
        from retrieval.normalize import normalize_all

        loaded = load_path(DATA / "bulk-10-patients").extend(load_path(DATA / "synthea-r4-bundles"))
        evidence, _ = normalize_all(loaded.resources)
        evidence = [e for e in evidence if e.kind == "chart"]
        return rng.sample(evidence, min(limit, len(evidence)))
    words = [
        "diabetes",
        "hypertension",
        "metformin",
        "insulin",
        "asthma",
        "fall",
        "pain",
        "fever",
        "cough",
        "follow-up",
    ]
    types = ["Condition", "MedicationRequest", "DocumentReference", "Observation", "Encounter"]
    return [
        Evidence(
            id=f"Synthetic/{i}",
            patient_id="x",
            resource_type=rng.choice(types),
            title="synthetic",
            text=" ".join(rng.choices(words, k=12)),
        )
        for i in range(limit)
    ]


def _jittered(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    picks = base[rng.integers(0, len(base), n)]
    out = picks + rng.normal(0, 0.03, picks.shape).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _fill(index: EvidenceIndex, n: int, base: list[Evidence], vecs: np.ndarray) -> float:
    """Index n jittered copies of the base evidence over n/PER_PATIENT patients; seconds taken."""
    rng = np.random.default_rng(SEED)
    patients = max(1, n // PER_PATIENT)
    t0 = time.perf_counter()
    step = 5_000
    for start in range(0, n, step):
        count = min(step, n - start)
        which = rng.integers(0, len(base), count)
        dense = _jittered(vecs, count, rng)
        items = [
            base[int(w)].model_copy(
                update={
                    "id": f"{base[int(w)].id}~{start + k}",
                    "patient_id": f"bench-{(start + k) % patients:05d}",
                }
            )
            for k, w in enumerate(which)
        ]
        index.upsert(items, dense.tolist())
    return time.perf_counter() - t0


def _plans(
    index: EvidenceIndex,
    n_queries: int,
    patients: int,
    qvecs: dict[str, np.ndarray],
) -> tuple[list[float], list[float]]:
    """Run n_queries as plans of three (two chart, one knowledge); per-query and per-plan ms."""
    rng = np.random.default_rng(SEED + 1)
    per_query: list[float] = []
    per_plan: list[float] = []
    for _ in range(max(1, n_queries // 3)):
        pid = f"bench-{int(rng.integers(0, patients)):05d}"
        a, b = rng.choice(len(PLAN_QUERIES), 2, replace=False)
        kb = KB_QUERIES[int(rng.integers(0, len(KB_QUERIES)))]
        plan_ms = 0.0
        for text, types, kind in (
            (*PLAN_QUERIES[int(a)], "chart"),
            (*PLAN_QUERIES[int(b)], "chart"),
            (kb, None, "knowledge"),
        ):
            dense = _jittered(qvecs[text][None, :], 1, rng)[0].tolist()
            t0 = time.perf_counter()
            index.search(
                dense=dense,
                text=text,
                patient_id=pid if kind == "chart" else None,
                kind=kind,  # type: ignore[arg-type]
                resource_types=types,
                limit=10,
            )
            ms = (time.perf_counter() - t0) * 1000
            per_query.append(ms)
            plan_ms += ms
        per_plan.append(plan_ms)
    return per_query, per_plan


def _kb(embedder: MiniLMEmbedder) -> tuple[list[Evidence], list[list[float]]]:
    topics = ["heart failure", "diabetes", "asthma", "hypertension", "wound care", "anticoagulants"]
    parts = ["diet", "medicines", "warning signs", "activity", "follow-up"]
    items = [
        Evidence(
            id=f"kb:{t.replace(' ', '-')}#{p.replace(' ', '-')}",
            kind="knowledge",
            resource_type="Knowledge",
            title=f"{t}: {p}",
            text=f"Patient guidance on {p} for {t}.",
        )
        for t in topics
        for p in parts
    ]
    return items, embedder.embed([f"{e.title}. {e.text}" for e in items])


def latency(embedder: MiniLMEmbedder) -> None:
    print("\n(1) search latency, query embedding excluded; plan = 2 filtered chart + 1 KB query")
    t0 = time.perf_counter()
    base = _real_texts(200)
    vecs = np.array(embedder.embed([f"{e.title}. {e.text}" for e in base]), dtype=np.float32)
    qtexts = [q for q, _ in PLAN_QUERIES] + KB_QUERIES
    qvecs = dict(zip(qtexts, np.array(embedder.embed(qtexts), dtype=np.float32), strict=True))
    kb_items, kb_vecs = _kb(embedder)
    src = "shared data" if DATA.is_dir() else "synthetic (../shared/data absent)"
    print(
        f"    corpus: {len(base)} real evidence texts from {src}, embedded and jittered "
        f"({time.perf_counter() - t0:.1f}s); {PER_PATIENT} evidence per patient"
    )
    header = (
        f"    {'engine':<24}{'points':>8}{'fill s':>8}{'queries':>8}"
        f"{'q p50':>8}{'q p95':>8}{'plan p50':>10}{'plan p95':>10}  target"
    )
    print(header)
    rows: list[tuple[str, int, Callable[[Path], EvidenceIndex], int]] = []
    for n in SIZES:
        rows.append(
            ("qdrant-edge (embedded)", n, lambda p: EdgeIndex(p / "edge", dim=384), QUERIES)
        )
    rows.insert(
        1,
        (
            "qdrant-client local",
            SIZES[0],
            lambda p: QdrantClientIndex(location=":memory:", dim=384),
            QDRANT_LOCAL_QUERIES,
        ),
    )
    for name, n, make, nq in rows:
        tmp = Path(tempfile.mkdtemp(prefix="chartdraft-bench-"))
        index = make(tmp)
        try:
            fill_s = _fill(index, n, base, vecs)
            index.upsert(kb_items, kb_vecs)
            _plans(index, 30, n // PER_PATIENT, qvecs)  # warm-up
            q, plans = _plans(index, nq, n // PER_PATIENT, qvecs)
            ok = _pct(plans, 50) < TARGET_P50_MS and _pct(plans, 95) < TARGET_P95_MS
            print(
                f"    {name:<24}{n:>8}{fill_s:>8.1f}{len(q):>8}{_pct(q, 50):>8.2f}"
                f"{_pct(q, 95):>8.2f}{_pct(plans, 50):>10.2f}{_pct(plans, 95):>10.2f}  "
                f"{'PASS' if ok else 'FAIL'} (plan p50<{TARGET_P50_MS:g}, p95<{TARGET_P95_MS:g})"
            )
        finally:
            index.close()
            shutil.rmtree(tmp, ignore_errors=True)
            gc.collect()
    print("    qdrant-client local at 100k: not run (pure Python; its 10k row shows why)")


def _sample_resources() -> list[Any]:
    from retrieval.fhir_load import load_path

    loaded = load_path(DATA / "bulk-10-patients").extend(load_path(DATA / "synthea-r4-bundles"))
    total = len(loaded.resources)
    sample = random.Random(SEED).sample(loaded.resources, min(INGEST_SAMPLE, total))
    print(f"    sample: {len(sample)} of {total} resources of ../shared/data (seed {SEED})")
    return sample


def _ours(
    resources: list[Any], embedder: MiniLMEmbedder
) -> tuple[float, list[Evidence], list[list[float]]]:
    """Normalize and embed (the costly part); seconds taken, evidence and vectors."""
    from retrieval.ingest import EMBED_GROUP, _embed_in_batches
    from retrieval.normalize import normalize_all

    t0 = time.perf_counter()
    evidence, _ = normalize_all(resources)
    # As ingest does it: distinct texts once, longest first (evals.bench_ingest compares engines).
    vectors = _embed_in_batches(evidence, embedder, EMBED_GROUP, None)
    return time.perf_counter() - t0, evidence, vectors


def _timed_upsert(
    index: EvidenceIndex, evidence: list[Evidence], vectors: list[list[float]]
) -> float:
    t0 = time.perf_counter()
    index.upsert(evidence, vectors)
    return time.perf_counter() - t0


def _plain_llamaindex(resources: list[Any]) -> tuple[float, int]:
    from llama_index.core import Document, StorageContext, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    embed = HuggingFaceEmbedding(
        model_name=str(default_model_dir()),
        device="cpu",
        embed_batch_size=64,
        local_files_only=True,
    )
    client = QdrantClient(location=":memory:")
    t0 = time.perf_counter()
    docs = [Document(text=json.dumps(r.resource), metadata={"ref": r.ref}) for r in resources]
    store = QdrantVectorStore(collection_name="plain", client=client)
    VectorStoreIndex.from_documents(
        docs, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed
    )
    seconds = time.perf_counter() - t0
    nodes = client.count("plain").count
    client.close()
    return seconds, nodes


def ingest(embedder: MiniLMEmbedder) -> None:
    print("\n(2) ingest throughput, embedding included (same MiniLM on CPU, torch engine)")
    if not DATA.is_dir():
        print(f"    skipped: {DATA} is absent (the shared sample data)")
        return
    sample = _sample_resources()
    embedder.embed(["warm-up"])
    # Normalize + embed once; each engine's indexing time is added to that shared cost.
    prep_s, evidence, vectors = _ours(sample, embedder)
    tmp = Path(tempfile.mkdtemp(prefix="chartdraft-bench-"))
    try:
        with EdgeIndex(tmp / "edge", dim=384) as edge:
            edge_s = _timed_upsert(edge, evidence, vectors)
        with QdrantClientIndex(location=":memory:", dim=384) as local:
            local_s = _timed_upsert(local, evidence, vectors)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = len(evidence)
    print(
        f"    ours: normalize + embed {prep_s:.1f}s; index {edge_s:.2f}s (edge), "
        f"{local_s:.2f}s (qdrant-client local)"
    )
    rows: list[tuple[str, float, int, str]] = [
        ("ours -> qdrant-edge", prep_s + edge_s, n, "evidence"),
        ("ours -> qdrant-client local", prep_s + local_s, n, "evidence"),
    ]
    s, n = _plain_llamaindex(sample)
    rows.append(("LlamaIndex plain -> qdrant-client local", s, n, "JSON chunks"))
    print(f"    {'path':<42}{'seconds':>9}{'resources/s':>13}{'units/s':>10}  units")
    for name, s, n, unit in rows:
        print(f"    {name:<42}{s:>9.1f}{len(sample) / s:>13.1f}{n / s:>10.1f}  {n} {unit}")
    ours_same = rows[1][1]
    plain = rows[2][1]
    print(
        f"    ratio, same Qdrant engine (qdrant-client local): ours is "
        f"{plain / ours_same:.2f}x the plain way's resources/s; with qdrant-edge "
        f"{plain / rows[0][1]:.2f}x"
    )


def main() -> None:
    embedder = MiniLMEmbedder()
    t0 = time.perf_counter()
    embedder.load()
    print(
        f"embedding model: {embedder.name} ({embedder.dim}d), loaded in "
        f"{time.perf_counter() - t0:.1f}s"
    )
    latency(embedder)
    ingest(embedder)
    print("\n(p50 is the median; every number comes from this run on this machine)")


if __name__ == "__main__":
    main()
