"""The second independent development set (evals/labels/realprose/second-dev.json) is well formed,
uses the twelve shared category names with both labels in each, cites only evidence chartdraft
builds from the named chart for the named patient, and shares no patient with any held-out
``*-test.json`` set (only the ``patient`` fields of those files are read).

A whole note ``DocumentReference/ID`` counts when the note has sections in the evidence.
The charts live in ../shared/data; without them the resolution test is skipped with a message.
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
SECOND = LABELS / "second-dev.json"
SHARED_DATA = ROOT / ".." / "shared" / "data"

CATEGORIES = {
    "concept", "purpose_link", "interpretation", "numbers", "instructions", "status_episode",
    "time", "denial", "citation_target", "non_clinical", "combined", "allergy",
}
DOC_TYPES = {"summary", "discharge-instructions", "prior-auth"}
MIN_PER_LABEL = 10  # the brief: at least 10 pass and 10 flag rows per category
NEEDS_DATA = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"chart data not found at {SHARED_DATA} (see /work/shared/data/README.md)")


def load() -> dict:
    assert SECOND.is_file(), f"{SECOND} is missing"
    data: dict = json.loads(SECOND.read_text())
    return data


def statements() -> list[tuple[dict, dict]]:
    return [(case, st) for case in load()["cases"] for st in case["statements"]]


@cache
def evidence_index(chart: Path) -> dict[str, str]:
    """Evidence id -> owning patient id, plus whole-note ids for notes that have sections."""
    evidence, _ = normalize_all(load_path(chart).resources)
    index: dict[str, str] = {}
    for ev in evidence:
        owner = ev.patient_id or ""  # practitioners and organisations belong to no patient
        index[ev.id] = owner
        if ev.id.startswith("DocumentReference/") and "#" in ev.id:
            index.setdefault(ev.id.split("#", 1)[0], owner)
    return index


def test_shape() -> None:
    data = load()
    assert data["format"] == "chartdraft-checker-labels/1"
    assert data["name"] and data["description"]
    seen: set[str] = set()
    for case, st in statements():
        assert case["doc_type"] in DOC_TYPES, case["id"]
        assert case["chart"] and case["patient"], case["id"]
        where = f"{case['id']} {st['id']}"
        assert st["id"] not in seen, f"{where}: duplicate statement id"
        seen.add(st["id"])
        assert st["text"].strip(), f"{where}: empty text"
        assert st["expected"] in {"pass", "flag"}, where
        assert st.get("why"), f"{where}: no why"
        assert isinstance(st["citations"], list), where


def test_categories_have_both_labels_and_are_balanced() -> None:
    counts = Counter((st["category"], st["expected"]) for _, st in statements())
    unknown = {cat for cat, _ in counts} - CATEGORIES
    assert not unknown, f"unknown categories: {unknown}"
    for cat in CATEGORIES:
        for label in ("pass", "flag"):
            assert counts[(cat, label)] >= MIN_PER_LABEL, f"{cat}: {counts[(cat, label)]} {label}"
    total = sum(counts.values())
    assert total >= 300
    passes = sum(v for (_, label), v in counts.items() if label == "pass")
    assert 0.4 <= passes / total <= 0.6


@NEEDS_DATA
def test_every_citation_resolves_for_the_named_patient() -> None:
    for case, st in statements():
        chart = (LABELS / case["chart"]).resolve()
        assert chart.exists(), f"{case['id']}: chart {case['chart']} not found"
        index = evidence_index(chart)
        patient = case["patient"].removeprefix("Patient/")
        assert patient in index.values(), f"{case['id']}: patient {patient} not in {chart.name}"
        for cite in st["citations"]:
            where = f"{st['id']}: citation {cite}"
            assert cite in index, f"{where} is not evidence of {chart.name}"
            assert index[cite] == patient, f"{where} belongs to another patient"


def test_no_held_out_patient_appears() -> None:
    test_files = sorted(LABELS.glob("*-test.json"))
    assert test_files, f"no *-test.json in {LABELS}"
    held_out = {
        case["patient"].removeprefix("Patient/")
        for path in test_files
        for case in json.loads(path.read_text())["cases"]
    }
    ours = {case["patient"].removeprefix("Patient/") for case in load()["cases"]}
    assert not ours & held_out, f"held-out patients in second-dev.json: {sorted(ours & held_out)}"
