"""Contract tests for every EvidenceIndex implementation (Haystack style: one suite, many stores).

Each test runs against the embedded qdrant-edge index and qdrant-client's local mode (in memory and
on a folder). Set CHARTDRAFT_TEST_QDRANT_URL to run the same suite against a Qdrant server too.
Embeddings are the real packaged MiniLM, so the hybrid tests exercise real semantics.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retrieval.embeddings import MiniLMEmbedder
from retrieval.errors import BadInput, StoreError
from retrieval.evidence import Code, Evidence
from retrieval.index_edge import EdgeIndex
from retrieval.index_qdrant import QdrantClientIndex
from retrieval.vector_index import (
    EvidenceIndex,
    Hit,
    IsolationBreach,
    assert_patient,
    open_index,
)

SERVER_URL = os.environ.get("CHARTDRAFT_TEST_QDRANT_URL")
IMPLS = ["edge", "qdrant-memory", "qdrant-path"] + (["qdrant-server"] if SERVER_URL else [])


@pytest.fixture(scope="module")
def embedder() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(params=IMPLS)
def index(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EvidenceIndex]:
    idx: EvidenceIndex
    if request.param == "edge":
        idx = EdgeIndex(tmp_path / "edge", dim=384)
    elif request.param == "qdrant-memory":
        idx = QdrantClientIndex(location=":memory:", dim=384)
    elif request.param == "qdrant-path":
        idx = QdrantClientIndex(path=tmp_path / "qdrant", dim=384)
    else:
        # A fresh prefix per test keeps runs on a shared server apart.
        idx = QdrantClientIndex(url=SERVER_URL, dim=384, prefix=f"t{uuid.uuid4().hex[:8]}")
    yield idx
    idx.close()


def ev(eid: str, patient: str | None, text: str, rtype: str = "Condition", **kw: Any) -> Evidence:
    return Evidence(
        id=eid,
        patient_id=patient,
        kind="knowledge" if patient is None else "chart",
        resource_type=rtype,
        title=rtype,
        text=text,
        **kw,
    )


def add(index: EvidenceIndex, embedder: MiniLMEmbedder, items: list[Evidence]) -> None:
    index.upsert(items, embedder.embed([f"{e.title}. {e.text}" for e in items]))


def search(
    index: EvidenceIndex, embedder: MiniLMEmbedder, text: str, patient: str | None, **kw: object
) -> list[Hit]:
    return index.search(dense=embedder.embed([text])[0], text=text, patient_id=patient, **kw)  # type: ignore[arg-type]


CHART = [
    ev("Condition/a1", "pa", "Diabetes mellitus type 2, active since 2019-03-02"),
    ev("Condition/a2", "pa", "Essential hypertension, active"),
    ev("MedicationRequest/a3", "pa", "Lisinopril 10 mg tablet, once daily", "MedicationRequest"),
    ev("AllergyIntolerance/a4", "pa", "Allergy to penicillin: hives", "AllergyIntolerance"),
    ev(
        "DocumentReference/a5#1",
        "pa",
        "Patient reports ankle pain after a fall",
        "DocumentReference",
    ),
    ev("Condition/b1", "pb", "Diabetes mellitus type 2, active since 2015-06-11"),
    ev("MedicationRequest/b2", "pb", "Metformin 500 mg tablet, twice daily", "MedicationRequest"),
    ev("Condition/pa2", "pa2", "Asthma, active"),  # a patient id that extends another one
]
KB = [
    ev(
        "kb:hf#diet", None, "Heart failure: limit salt (sodium) to under 2 grams a day", "Knowledge"
    ),
    ev("kb:dm#sugar", None, "Diabetes: check your blood sugar before meals", "Knowledge"),
]


@pytest.fixture
def filled(index: EvidenceIndex, embedder: MiniLMEmbedder) -> EvidenceIndex:
    add(index, embedder, CHART + KB)
    return index


def test_counts_by_kind_and_patient(filled: EvidenceIndex) -> None:
    assert filled.count() == len(CHART)
    assert filled.count(kind="knowledge") == len(KB)
    assert filled.count(patient_id="pa") == 5


def test_upsert_is_idempotent_and_replaces(filled: EvidenceIndex, embedder: MiniLMEmbedder) -> None:
    add(filled, embedder, CHART)
    assert filled.count() == len(CHART)
    changed = ev("Condition/a2", "pa", "Essential hypertension, resolved 2024-01-05")
    add(filled, embedder, [changed])
    assert filled.count() == len(CHART)
    hits = search(filled, embedder, "hypertension", "pa", limit=1)
    assert hits[0].evidence == changed


def test_evidence_round_trips_whole(index: EvidenceIndex, embedder: MiniLMEmbedder) -> None:
    rich = ev(
        "Observation/x1",
        "px",
        "Hemoglobin A1c 7.2 %",
        "Observation",
        date="2024-02-01",
        codes=[Code(system="http://loinc.org", code="4548-4", display="Hemoglobin A1c")],
        data={"value": 7.2, "unit": "%", "status": "final", "nested": {"a": [1, 2]}},
    )
    add(index, embedder, [rich])
    assert search(index, embedder, "A1c", "px")[0].evidence == rich


def test_search_stays_within_the_patient(filled: EvidenceIndex, embedder: MiniLMEmbedder) -> None:
    for text in ("diabetes", "metformin 500 mg", "asthma", "penicillin allergy"):
        hits = search(filled, embedder, text, "pa", limit=50)
        assert hits, text
        assert {h.evidence.patient_id for h in hits} == {"pa"}
    # "pa" must not match "pa2" (prefix) nor an unknown patient anything at all.
    assert [h.evidence.id for h in search(filled, embedder, "asthma", "pa2")] == ["Condition/pa2"]
    assert search(filled, embedder, "diabetes", "nobody") == []


def test_chart_search_requires_a_patient(filled: EvidenceIndex, embedder: MiniLMEmbedder) -> None:
    with pytest.raises(BadInput) as err:
        search(filled, embedder, "diabetes", None)
    assert err.value.fix and "patient_id" in err.value.fix
    with pytest.raises(BadInput):
        search(filled, embedder, "diabetes", "")


def test_knowledge_lives_apart(filled: EvidenceIndex, embedder: MiniLMEmbedder) -> None:
    kb = search(filled, embedder, "how much salt with heart failure", None, kind="knowledge")
    assert kb[0].evidence.id == "kb:hf#diet"
    assert all(h.evidence.kind == "knowledge" for h in kb)
    # The patient is ignored for knowledge, and chart searches never return knowledge.
    assert [h.evidence.id for h in kb] == [
        h.evidence.id
        for h in search(
            filled, embedder, "how much salt with heart failure", "pa", kind="knowledge"
        )
    ]
    chart = search(filled, embedder, "blood sugar before meals", "pa", limit=50)
    assert all(h.evidence.kind == "chart" for h in chart)


def test_resource_type_filter(filled: EvidenceIndex, embedder: MiniLMEmbedder) -> None:
    hits = search(filled, embedder, "diabetes", "pa", resource_types=["MedicationRequest"])
    assert [h.evidence.id for h in hits] == ["MedicationRequest/a3"]
    hits = search(
        filled, embedder, "x", "pa", resource_types=["AllergyIntolerance", "DocumentReference"]
    )
    assert {h.evidence.resource_type for h in hits} == {"AllergyIntolerance", "DocumentReference"}


def test_hybrid_finds_by_meaning_and_by_keyword(
    filled: EvidenceIndex, embedder: MiniLMEmbedder
) -> None:
    # Meaning: no word in common with "Diabetes mellitus type 2".
    assert search(filled, embedder, "high blood glucose", "pa", limit=2)[0].evidence.id in {
        "Condition/a1"
    }
    # Keyword: a rare drug name the query states exactly.
    assert search(filled, embedder, "lisinopril", "pa", limit=1)[0].evidence.id == (
        "MedicationRequest/a3"
    )
    hits = search(filled, embedder, "fall ankle", "pa", limit=3)
    assert hits[0].evidence.id == "DocumentReference/a5#1"
    assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))


def test_limit_is_respected(filled: EvidenceIndex, embedder: MiniLMEmbedder) -> None:
    assert len(search(filled, embedder, "active", "pa", limit=2)) == 2
    with pytest.raises(BadInput):
        search(filled, embedder, "active", "pa", limit=0)


def test_query_with_no_keywords_still_searches(
    filled: EvidenceIndex, embedder: MiniLMEmbedder
) -> None:
    hits = filled.search(dense=embedder.embed(["diabetes"])[0], text="the of", patient_id="pb")
    assert {h.evidence.id for h in hits} == {"Condition/b1", "MedicationRequest/b2"}


def test_delete_patient_only_touches_that_patient(
    filled: EvidenceIndex, embedder: MiniLMEmbedder
) -> None:
    filled.delete_patient("pa")
    assert filled.count(patient_id="pa") == 0
    assert search(filled, embedder, "diabetes", "pa") == []
    assert filled.count(patient_id="pb") == 2
    assert filled.count(patient_id="pa2") == 1
    assert filled.count(kind="knowledge") == len(KB)


def test_delete_ids(filled: EvidenceIndex, embedder: MiniLMEmbedder) -> None:
    filled.delete_ids(["MedicationRequest/a3", "kb:hf#diet", "Condition/never-there"])
    assert filled.count() == len(CHART) - 1
    assert filled.count(kind="knowledge") == len(KB) - 1
    ids = {h.evidence.id for h in search(filled, embedder, "lisinopril", "pa", limit=50)}
    assert "MedicationRequest/a3" not in ids
    filled.delete_ids([])


def test_bad_upserts_say_what_is_wrong(index: EvidenceIndex) -> None:
    good = ev("Condition/z", "pz", "x")
    with pytest.raises(BadInput, match="1 evidence items but 0 vectors"):
        index.upsert([good], [])
    with pytest.raises(BadInput, match="3 dimensions"):
        index.upsert([good], [[0.1, 0.2, 0.3]])
    with pytest.raises(BadInput, match="unknown evidence kind"):
        index.search(dense=[0.1] * 384, text="x", patient_id="pz", kind="notes")  # type: ignore[arg-type]
    with pytest.raises(BadInput, match="dimensions"):
        index.search(dense=[0.1] * 3, text="x", patient_id="pz")
    assert index.count() == 0


def test_evidence_of_no_patient_is_not_indexed(index: EvidenceIndex) -> None:
    # Directory entries (Organization, Practitioner) belong to no patient: no chart search could
    # return them, so they are left out rather than stored unreachable.
    org = Evidence(id="Organization/o", resource_type="Organization", title="Clinic", text="x")
    index.upsert([org, ev("Condition/c", "pc", "x")], [[0.1] * 384, [0.2] * 384])
    assert index.count() == 1
    assert [h.evidence.id for h in index.search(dense=[0.1] * 384, text="x", patient_id="pc")] == [
        "Condition/c"
    ]


# --- implementation-specific ---------------------------------------------------------------


def test_edge_index_persists(tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    with EdgeIndex(tmp_path / "idx", dim=384) as idx:
        add(idx, embedder, CHART)
    with EdgeIndex(tmp_path / "idx", dim=384) as idx:
        assert idx.count() == len(CHART)
        assert search(idx, embedder, "metformin", "pb", limit=1)[0].evidence.id == (
            "MedicationRequest/b2"
        )


def test_edge_folder_is_exclusive_to_one_process(tmp_path: Path) -> None:
    # The service holding the index means a CLI process cannot open it: the error says what to do.
    with EdgeIndex(tmp_path / "idx", dim=384):
        code = (
            "import sys; from pathlib import Path; from retrieval.index_edge import EdgeIndex\n"
            "from retrieval.errors import StoreError\n"
            "try:\n    EdgeIndex(Path(sys.argv[1]), dim=384)\n"
            "except StoreError as e:\n    print(e); sys.exit(3)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code, str(tmp_path / "idx")], capture_output=True, text=True
        )
        assert out.returncode == 3, out.stderr
        assert "in use by another process" in out.stdout
    # Released on close: the next process gets in.
    with EdgeIndex(tmp_path / "idx", dim=384) as idx:
        assert idx.count() == 0


def test_edge_refuses_a_different_dimension(tmp_path: Path) -> None:
    with EdgeIndex(tmp_path / "idx", dim=384):
        pass
    with pytest.raises(StoreError) as err:
        EdgeIndex(tmp_path / "idx", dim=768)
    assert err.value.fix


def test_open_index_picks_by_url(tmp_path: Path) -> None:
    idx = open_index(url=None, path=tmp_path / "idx", dim=384)
    assert isinstance(idx, EdgeIndex)
    idx.close()
    # A server that is not there: a StoreError naming it, not a raw connection error.
    with pytest.raises(StoreError) as err:
        open_index(url="http://127.0.0.1:9", path=tmp_path / "unused", dim=384)
    assert "127.0.0.1:9" in str(err.value)


def test_assert_patient_refuses_foreign_evidence() -> None:
    mine = Hit(ev("Condition/1", "p1", "x"), 1.0)
    kb = Hit(ev("kb:a#b", None, "x", "Knowledge"), 0.5)
    assert_patient([mine, kb], "p1")
    with pytest.raises(IsolationBreach):
        assert_patient([mine, Hit(ev("Condition/2", "p2", "x"), 0.9)], "p1")
    with pytest.raises(IsolationBreach):
        assert_patient([ev("Condition/3", "p10", "x")], "p1")
