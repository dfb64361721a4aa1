"""The independent labelled statement sets over the Synthea R4 bundles
(evals/labels/realprose/synthea-{dev,test}.json) are well formed, split by patient, and every
citation resolves to evidence chartdraft builds from the named chart, for the named patient.

The charts live outside the repo (../shared/data/synthea-r4-bundles); without them the tests skip
with a message saying where they were looked for.
"""

from __future__ import annotations

import json
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from retrieval.fhir_load import load_path
from retrieval.normalize import normalize_all

ROOT = Path(__file__).resolve().parents[2]
LABELS = ROOT / "evals" / "labels" / "realprose"
SYNTHEA = ROOT / ".." / "shared" / "data" / "synthea-r4-bundles"
FILES = ("synthea-dev.json", "synthea-test.json")

CATEGORIES = {
    "concept", "purpose_link", "interpretation", "numbers", "instructions", "status_episode",
    "time", "denial", "citation_target", "non_clinical", "combined", "allergy",
}
DOC_TYPES = {"summary", "discharge-instructions", "prior-auth"}

needs_charts = pytest.mark.skipif(
    not SYNTHEA.is_dir(),
    reason=f"Synthea bundles not found at {SYNTHEA} (see /work/shared/data/README.md)")


@cache
def evidence_index(chart: Path) -> dict[str, str | None]:
    """Evidence id -> the patient it belongs to, as chartdraft builds it from the chart."""
    evidence, _ = normalize_all(load_path(chart).resources)
    return {ev.id: ev.patient_id for ev in evidence}


def load(name: str) -> dict:
    path = LABELS / name
    assert path.is_file(), f"{path} is missing"
    return json.loads(path.read_text())


def check_shape(name: str) -> Counter[tuple[str, str]]:
    """Format, case and statement fields; returns (category, expected) counts."""
    data = load(name)
    assert data["format"] == "chartdraft-checker-labels/1", name
    assert data["name"] and data["description"], name
    counts: Counter[tuple[str, str]] = Counter()
    seen: set[str] = set()
    for case in data["cases"]:
        assert case["doc_type"] in DOC_TYPES, case["id"]
        assert case["chart"].startswith("../../../../shared/data/synthea-r4-bundles/"), case["id"]
        assert case["statements"], f"{case['id']}: no statements"
        for st in case["statements"]:
            where = f"{name} {st['id']}"
            assert st["id"] not in seen, f"{where}: duplicate id"
            seen.add(st["id"])
            assert st["text"].strip(), where
            assert st["expected"] in {"pass", "flag"}, where
            assert st["category"] in CATEGORIES, f"{where}: unknown category {st['category']}"
            assert st.get("why"), f"{where}: no why"
            assert isinstance(st["citations"], list), where
            # non_clinical: a pass has no clinical fact to cite; a flag is an uncited fact.
            if st["category"] == "non_clinical":
                assert not st["citations"], f"{where}: non_clinical rows carry no citation"
            else:
                assert st["citations"], f"{where}: clinical statement without citations"
            counts[(st["category"], st["expected"])] += 1
    return counts


def test_shape_counts_and_balance() -> None:
    total = sum((check_shape(n) for n in FILES), Counter())
    assert sum(total.values()) >= 330
    for cat in CATEGORIES:
        assert total[(cat, "pass")] >= 12, f"{cat}: only {total[(cat, 'pass')]} pass rows"
        assert total[(cat, "flag")] >= 12, f"{cat}: only {total[(cat, 'flag')]} flag rows"
    passes = sum(v for (_, label), v in total.items() if label == "pass")
    assert 0.4 <= passes / sum(total.values()) <= 0.6


def test_split_by_patient() -> None:
    dev, test = ({c["patient"] for c in load(n)["cases"]} for n in FILES)
    assert len(dev) >= 8 and len(test) >= 8
    assert not dev & test, f"patients in both dev and test: {sorted(dev & test)}"


@needs_charts
@pytest.mark.parametrize("name", FILES)
def test_every_citation_resolves_to_the_patients_evidence(name: str) -> None:
    for case in load(name)["cases"]:
        chart = (LABELS / case["chart"]).resolve()
        assert chart.is_file(), f"{case['id']}: chart {case['chart']} not found"
        index = evidence_index(chart)
        patient = case["patient"].removeprefix("Patient/")
        assert f"Patient/{patient}" in index, f"{case['id']}: patient {patient} not in {chart.name}"
        for st in case["statements"]:
            for cite in st["citations"]:
                assert cite in index, f"{name} {st['id']}: {cite} is not evidence of {chart.name}"
                assert index[cite] == patient, f"{name} {st['id']}: {cite} is another patient's"
