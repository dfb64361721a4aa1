"""The independent labelled statement sets over the bulk export and the generated charts
(evals/labels/realprose/{bulk,generated}-{dev,test}.json) are well formed and every citation
resolves to evidence chartdraft builds from the named chart, for the named patient.

A whole note ``DocumentReference/ID`` counts when the note has sections in the evidence.
The bulk half needs ../shared/data; without it that half is skipped with a message.
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
BULK_DATA = ROOT / ".." / "shared" / "data" / "bulk-10-patients"

CATEGORIES = {
    "concept", "purpose_link", "interpretation", "numbers", "instructions", "status_episode",
    "time", "denial", "citation_target", "non_clinical", "combined", "allergy",
}
DOC_TYPES = {"summary", "discharge-instructions", "prior-auth"}
BULK_FILES = ("bulk-dev.json", "bulk-test.json")
GENERATED_FILES = ("generated-dev.json", "generated-test.json")
NEEDS_BULK = pytest.mark.skipif(
    not BULK_DATA.is_dir(),
    reason=f"bulk export not found at {BULK_DATA} (see /work/shared/data/README.md)")


@cache
def evidence_index(chart: Path) -> dict[str, str]:
    """Evidence id -> patient id, plus whole-note ids for notes that have sections."""
    loaded = load_path(chart)
    evidence, _ = normalize_all(loaded.resources)
    index: dict[str, str] = {}
    for ev in evidence:
        owner = ev.patient_id or ""  # practitioners and organisations belong to no patient
        index[ev.id] = owner
        if ev.id.startswith("DocumentReference/") and "#" in ev.id:
            index.setdefault(ev.id.split("#", 1)[0], owner)
    return index


def load(name: str) -> dict:
    path = LABELS / name
    assert path.is_file(), f"{path} is missing"
    return json.loads(path.read_text())


def check_file(name: str) -> Counter[tuple[str, str]]:
    data = load(name)
    assert data["format"] == "chartdraft-checker-labels/1"
    assert data["name"] and data["description"]
    counts: Counter[tuple[str, str]] = Counter()
    seen_ids: set[str] = set()
    for case in data["cases"]:
        assert case["doc_type"] in DOC_TYPES, case["id"]
        chart = (LABELS / case["chart"]).resolve()
        assert chart.exists(), f"{case['id']}: chart {case['chart']} not found"
        index = evidence_index(chart)
        patient = case["patient"].removeprefix("Patient/")
        assert patient in index.values(), f"{case['id']}: patient {patient} not in {chart.name}"
        for st in case["statements"]:
            where = f"{name} {st['id']}"
            assert st["id"] not in seen_ids, f"{where}: duplicate id"
            seen_ids.add(st["id"])
            assert st["text"].strip(), where
            assert st["expected"] in {"pass", "flag"}, where
            assert st["category"] in CATEGORIES, f"{where}: unknown category {st['category']}"
            assert st.get("why"), f"{where}: no why"
            for cite in st["citations"]:
                assert cite in index, f"{where}: citation {cite} is not chart evidence"
                assert index[cite] == patient, f"{where}: {cite} belongs to another patient"
            counts[(st["category"], st["expected"])] += 1
    return counts


def patients_of(name: str) -> set[str]:
    return {c["patient"] for c in load(name)["cases"]}


@NEEDS_BULK
def test_bulk_sets_resolve_and_split_by_patient() -> None:
    total = sum((check_file(n) for n in BULK_FILES), Counter())
    assert sum(total.values()) >= 150
    assert not patients_of("bulk-dev.json") & patients_of("bulk-test.json")


def test_generated_sets_resolve_and_split_by_patient() -> None:
    total = sum((check_file(n) for n in GENERATED_FILES), Counter())
    assert sum(total.values()) >= 100
    assert not patients_of("generated-dev.json") & patients_of("generated-test.json")


@NEEDS_BULK
def test_every_category_has_both_labels_and_labels_are_balanced() -> None:
    total = sum((check_file(n) for n in BULK_FILES + GENERATED_FILES), Counter())
    for cat in CATEGORIES:
        assert total[(cat, "pass")] >= 12, f"{cat}: only {total[(cat, 'pass')]} pass rows"
        assert total[(cat, "flag")] >= 12, f"{cat}: only {total[(cat, 'flag')]} flag rows"
    passes = sum(v for (_, lab), v in total.items() if lab == "pass")
    assert 0.4 <= passes / sum(total.values()) <= 0.6
