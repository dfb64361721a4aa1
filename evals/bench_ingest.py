"""Ingest benchmark (issue 15): embedding engines side by side, retrieval quality, a 10 MB note.

    python -m evals.bench ingest              (part of `make bench`)
    python -m evals.bench_ingest --write-labels   (re-derive evals/retrieval/labels.json)

(1) Retrieval quality per engine on the labelled set (evals/retrieval/rules.yaml -> labels.json):
    every chart's evidence embedded by the engine into a fresh qdrant-edge index, each query
    searched per patient the way a plan does (hybrid, limit 10); recall@10 and MRR.
(2) Ingest throughput, evidence units/s, measured in this run one after the other on the same
    sample: load -> normalize -> embed -> index with the torch engine, with the onnx engine, and
    the default LlamaIndex pipeline (VectorStoreIndex over the resources as JSON, same MiniLM).
(3) A bundle with one 10 MB clinical note: load + normalize + ingest (capped) with the onnx engine.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from retrieval.embeddings import MiniLMEmbedder
from retrieval.evidence import Evidence
from retrieval.fhir_load import LoadedResource, LoadResult, load_bytes, load_json, load_path
from retrieval.index_edge import EdgeIndex
from retrieval.ingest import embed_text, ingest_loaded
from retrieval.normalize import normalize_all

HERE = Path(__file__).resolve().parent / "retrieval"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
K = 10
RUNS = 3  # throughput: median of this many runs per engine


def _charts() -> list[LoadedResource]:
    cfg = yaml.safe_load((HERE / "rules.yaml").read_text())["charts"]
    from retrieval.synth import generate

    loaded = LoadResult()
    gen = cfg["generated"]
    for b in generate(gen["patients"], gen["seed"]):
        loaded.extend(load_json(b, source="generated"))
    folder = DATA / cfg["shared"]["folder"]
    if folder.is_dir():
        for f in sorted(folder.glob("*.json"))[: cfg["shared"]["files"]]:
            loaded.extend(load_path(f))
    return loaded.resources


def _evidence() -> list[Evidence]:
    evidence, _ = normalize_all(_charts())
    return [e for e in evidence if e.patient_id and e.kind == "chart"]


def write_labels() -> Path:
    rules = yaml.safe_load((HERE / "rules.yaml").read_text())["queries"]
    evidence = _evidence()
    out = []
    for rule in rules:
        pattern = re.compile(rule["pattern"], re.IGNORECASE)
        codes = set(rule.get("codes") or [])
        by_patient: dict[str, list[str]] = {}
        for e in evidence:
            if e.resource_type not in rule["types"]:
                continue
            if {c.code for c in e.codes} & codes or pattern.search(f"{e.title} {e.text}"):
                by_patient.setdefault(e.patient_id or "", []).append(e.id)
        for pid, ids in sorted(by_patient.items()):
            out.append({"query": rule["query"], "patient_id": pid, "relevant": sorted(ids)})
    path = HERE / "labels.json"
    path.write_text(json.dumps({"about": "derived from rules.yaml; see that file", "k": K,
                                "cases": out}, indent=1) + "\n")
    return path


def _index(evidence: list[Evidence], vectors: list[list[float]], tmp: Path) -> EdgeIndex:
    index = EdgeIndex(tmp, dim=384)
    index.upsert(evidence, vectors)
    return index


def quality(engine: MiniLMEmbedder, evidence: list[Evidence], cases: list[dict[str, Any]],
            tmp: Path) -> tuple[float, float]:
    """(recall@K, MRR) over the labelled cases; recall per case is over min(|relevant|, K)."""
    vectors = engine.embed([embed_text(e) for e in evidence])
    index = _index(evidence, vectors, tmp)
    try:
        qvecs = dict(zip({c["query"] for c in cases},
                         engine.embed(list({c["query"] for c in cases})), strict=True))
        recalls, rr = [], []
        for c in cases:
            hits = index.search(dense=qvecs[c["query"]], text=c["query"],
                                patient_id=c["patient_id"], kind="chart", limit=K)
            ids = [h.evidence.id for h in hits]
            relevant = set(c["relevant"])
            recalls.append(len(relevant & set(ids)) / min(len(relevant), K))
            rr.append(next((1 / (i + 1) for i, x in enumerate(ids) if x in relevant), 0.0))
        return statistics.mean(recalls), statistics.mean(rr)
    finally:
        index.close()


class _NullStore:
    """The chart store's part of ingest is the same for every engine: left out of the timing."""

    def evidence_for(self, pid: str) -> list[Evidence]:
        return []

    def upsert(self, resources: Any, evidence: Any) -> None:
        pass

    def record_issues(self, issues: Any) -> None:
        pass


def _ingest_once(engine: MiniLMEmbedder, resources: list[LoadedResource], tmp: Path) -> tuple[
        float, int]:
    index = EdgeIndex(tmp, dim=384)
    try:
        t0 = time.perf_counter()
        report = ingest_loaded(LoadResult(resources=list(resources)), store=_NullStore(),  # type: ignore[arg-type]
                               index=index, embedder=engine)
        return time.perf_counter() - t0, report.embedded
    finally:
        index.close()


def _llamaindex(resources: list[LoadedResource]) -> tuple[float, int]:
    from evals.bench_retrieval import _plain_llamaindex

    return _plain_llamaindex(resources)


def _note_bundle(megabytes: int) -> bytes:
    line = "Patient reports mild chest pain after exercise, resolved with rest.\n"
    text = (line * (megabytes * 2**20 // len(line) + 1))[: megabytes * 2**20]
    return json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"resource": {"resourceType": "Patient", "id": "big-note-patient"}},
        {"resource": {"resourceType": "DocumentReference", "id": "big-note", "status": "current",
                      "subject": {"reference": "Patient/big-note-patient"},
                      "content": [{"attachment": {"contentType": "text/plain", "data":
                                   base64.b64encode(text.encode()).decode()}}]}}]}).encode()


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="chartdraft-bench-ingest-"))
    try:
        engines = {
            "torch": MiniLMEmbedder(cache_size=0, engine="torch"),
            "onnx": MiniLMEmbedder(cache_size=0, engine="onnx", cache_dir=tmp / "cache"),
        }
        for name, e in engines.items():
            t0 = time.perf_counter()
            e.load()
            print(f"engine {name}: loaded in {time.perf_counter() - t0:.1f}s (engine now "
                  f"{e.engine})")
        resources = _charts()
        evidence = _evidence()
        labels = json.loads((HERE / "labels.json").read_text())["cases"]
        print(f"\n(1) retrieval quality: {len(labels)} labelled (patient, query) cases, "
              f"{len({c['query'] for c in labels})} queries, {len(evidence)} evidence units")
        scores = {}
        for name, e in engines.items():
            scores[name] = quality(e, evidence, labels, tmp / f"q-{name}")
            print(f"    {name:<8} recall@{K} {scores[name][0]:.3f}   MRR {scores[name][1]:.3f}")
        diff = (scores["onnx"][0] - scores["torch"][0]) * 100
        print(f"    onnx - torch recall@{K}: {diff:+.1f} points "
              f"({'PASS' if abs(diff) <= 1 else 'FAIL'}: within 1 point)")

        print(f"\n(2) ingest throughput on the same {len(resources)} resources, "
              f"median of {RUNS} interleaved runs per engine (LlamaIndex: 1 run)")
        times: dict[str, list[float]] = {"torch": [], "onnx": [], "llamaindex": []}
        units: dict[str, int] = {}
        for run in range(RUNS):
            for name, e in engines.items():
                s, n = _ingest_once(e, resources, tmp / f"i-{name}-{run}")
                times[name].append(s)
                units[name] = n
            if run == 0:  # the plain pipeline once: it is the slow baseline
                s, n = _llamaindex(resources)
                times["llamaindex"].append(s)
                units["llamaindex"] = n
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"    {'path':<34}{'median s':>10}{'units':>8}{'units/s':>10}{'resources/s':>13}")
        labels_ = {"torch": "ours, torch engine", "onnx": "ours, onnx engine",
                   "llamaindex": "LlamaIndex default (JSON chunks)"}
        for k in ("torch", "onnx", "llamaindex"):
            print(f"    {labels_[k]:<34}{med[k]:>10.1f}{units[k]:>8}{units[k] / med[k]:>10.1f}"
                  f"{len(resources) / med[k]:>13.1f}")
        print(f"    ratios (resources/s, same run): onnx/torch {med['torch'] / med['onnx']:.2f}x; "
              f"onnx/LlamaIndex {med['llamaindex'] / med['onnx']:.2f}x; torch/LlamaIndex "
              f"{med['llamaindex'] / med['torch']:.2f}x")

        print("\n(3) one 10 MB clinical note (a bundle of 14 MB), onnx engine")
        body = _note_bundle(10)
        t0 = time.perf_counter()
        loaded = load_bytes(body)
        t1 = time.perf_counter()
        index = EdgeIndex(tmp / "note", dim=384)
        try:
            report = ingest_loaded(loaded, store=_NullStore(), index=index,  # type: ignore[arg-type]
                                   embedder=engines["onnx"])
        finally:
            index.close()
        t2 = time.perf_counter()
        print(f"    load {t1 - t0:.1f}s; normalize + embed + index {t2 - t1:.1f}s; total "
              f"{t2 - t0:.1f}s ({'PASS' if t2 - t0 < 30 else 'FAIL'}: < 30 s); "
              f"{report.embedded} units embedded; notice: {report.notices[-1][:90]}...")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if "--write-labels" in sys.argv:
        print(write_labels())
    else:
        main()
