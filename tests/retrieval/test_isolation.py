"""No search returns another patient's evidence: a property over many patients and queries.

One index per implementation holds many patients whose ids are chosen to be confusable (prefixes,
case, whitespace, unicode, id-like strings) and whose evidence shares vocabulary, so the keyword and
the vector half of every query would match other patients' points if the filter ever slipped.
Hypothesis then draws the patient, the query text and vector, the type filter and the limit.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrieval.evidence import Evidence
from retrieval.index_edge import EdgeIndex
from retrieval.index_qdrant import QdrantClientIndex
from retrieval.vector_index import EvidenceIndex

DIM = 32
_VOCAB = (
    "diabetes hypertension metformin lisinopril insulin asthma allergy penicillin fall ankle "
    "pain chest fever cough discharge follow-up 500 mg daily twice active resolved"
)
WORDS = _VOCAB.split()
TYPES = ["Condition", "MedicationRequest", "AllergyIntolerance", "DocumentReference", "Observation"]
CONFUSABLE = [
    "p1", "p10", "p1 ", " p1", "P1", "p", "Patient/p1", "p1*", "p.1", "π1", "0", "-1",
    "a" * 64, "00000000-0000-0000-0000-000000000001", "p1\n", "*", "", "null",
]  # fmt: skip
RANDOM_PATIENTS = [f"synthetic-{i:03d}" for i in range(40)]
PATIENTS = [p for p in CONFUSABLE if p.strip()] + RANDOM_PATIENTS


def _build() -> tuple[list[Evidence], list[list[float]]]:
    rng = random.Random(7)
    items: list[Evidence] = []
    for pi, pid in enumerate(PATIENTS):
        for j in range(rng.randint(3, 25)):
            rtype = rng.choice(TYPES)
            text = " ".join(rng.choices(WORDS, k=rng.randint(3, 12)))
            items.append(
                Evidence(
                    id=f"{rtype}/{pi}-{j}",
                    patient_id=pid,
                    resource_type=rtype,
                    title=rtype,
                    text=text,
                )
            )
    items.append(
        Evidence(id="kb:all#x", kind="knowledge", resource_type="Knowledge", title="KB", text="x")
    )
    vectors = [[rng.gauss(0, 1) for _ in range(DIM)] for _ in items]
    return items, vectors


ITEMS, VECTORS = _build()
BY_PATIENT: dict[str, set[str]] = {}
for _e in ITEMS:
    if _e.patient_id is not None:
        BY_PATIENT.setdefault(_e.patient_id, set()).add(_e.id)


@pytest.fixture(scope="module", params=["edge", "qdrant-memory"])
def index(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EvidenceIndex]:
    idx: EvidenceIndex
    if request.param == "edge":
        idx = EdgeIndex(Path(tmp_path_factory.mktemp("iso")) / "edge", dim=DIM)
    else:
        idx = QdrantClientIndex(location=":memory:", dim=DIM)
    idx.upsert(ITEMS, VECTORS)
    yield idx
    idx.close()


queries = st.fixed_dictionaries(
    {
        "patient": st.one_of(st.sampled_from(PATIENTS), st.text(min_size=1, max_size=20)),
        "text": st.one_of(
            st.lists(st.sampled_from(WORDS), max_size=8).map(" ".join),
            st.text(max_size=40),
        ),
        "vector": st.one_of(
            st.sampled_from(VECTORS),  # another patient's exact vector: the closest possible
            st.lists(st.floats(-1, 1), min_size=DIM, max_size=DIM).filter(
                lambda v: any(abs(x) > 1e-3 for x in v)
            ),
        ),
        "types": st.one_of(st.none(), st.lists(st.sampled_from(TYPES), min_size=1, max_size=3)),
        "limit": st.integers(1, 60),
    }
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(q=queries)
def test_search_never_returns_another_patients_evidence(
    index: EvidenceIndex, q: dict[str, object]
) -> None:
    pid = q["patient"]
    assert isinstance(pid, str)
    types: list[str] | None = q["types"]  # type: ignore[assignment]
    hits = index.search(
        dense=q["vector"],  # type: ignore[arg-type]
        text=q["text"],  # type: ignore[arg-type]
        patient_id=pid,
        resource_types=types,  # type: ignore[arg-type]
        limit=q["limit"],  # type: ignore[arg-type]
    )
    mine = BY_PATIENT.get(pid, set())
    assert {h.evidence.id for h in hits} <= mine
    assert all(h.evidence.patient_id == pid and h.evidence.kind == "chart" for h in hits)
    # Not vacuous: a patient with matching evidence always gets some (the dense half finds any).
    eligible = {i for i in mine if types is None or i.split("/")[0] in types}
    assert len(hits) == min(len(eligible), q["limit"])  # type: ignore[call-overload]


@settings(max_examples=15, deadline=None)
@given(victim=st.sampled_from(PATIENTS), probe=st.sampled_from(PATIENTS))
def test_deleting_one_patient_leaves_the_others(
    tmp_path_factory: pytest.TempPathFactory, victim: str, probe: str
) -> None:
    with EdgeIndex(Path(tmp_path_factory.mktemp("del")) / "edge", dim=DIM) as idx:
        idx.upsert(ITEMS, VECTORS)
        idx.delete_patient(victim)
        expected = 0 if probe == victim else len(BY_PATIENT[probe])
        assert idx.count(patient_id=probe) == expected
        hits = idx.search(dense=VECTORS[0], text="diabetes", patient_id=probe, limit=100)
        assert len(hits) == expected
