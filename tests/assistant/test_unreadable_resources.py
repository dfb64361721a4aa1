"""A resource the loader had to skip must show on the patient's drafts, on real components.

One AllergyIntolerance of a synthetic chart is made invalid FHIR; the draft then lists it under
``checks["unreadable_resources"]`` and flags every statement of the Allergies section, so the
section cannot read as complete. Once the resource is fixed and re-ingested, the warning goes.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from assistant.draft import Draft, Section
from assistant.pipeline import DraftRequest, run_draft
from assistant.runtime import Runtime
from assistant.settings import Settings
from assistant.verify import recheck_draft
from retrieval.ingest import ingest_paths
from retrieval.synth import generate

SEED = 9  # a chart with two real allergies: one unreadable, one still listed
ANCHOR = date(2026, 6, 1)


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    rt = Runtime(Settings(data_dir=tmp_path_factory.mktemp("data"), backend="extractive"))
    yield rt
    rt.close()


def _allergies(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "AllergyIntolerance"
            and "criticality" in e["resource"]]


def _section(draft: Draft, title: str) -> Section:
    return next(s for s in draft.sections if s.title == title)


def _unreadable_flags(section: Section) -> list[str]:
    return [r.reason for st in section.statements for r in st.results
            if r.check == "completeness" and "could not be read" in r.reason]


def _ingest(rt: Runtime, bundle: dict[str, Any], path: Path) -> list[Any]:
    path.write_text(json.dumps(bundle), encoding="utf-8")
    report = ingest_paths([path], store=rt.store, index=rt.index, embedder=rt.embedder)
    return report.issues


def test_unreadable_allergy_is_shown_then_cleared(runtime: Runtime, tmp_path: Path) -> None:
    bundle = generate(1, SEED, anchor=ANCHOR)[0]
    pid = next(e["resource"]["id"] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "Patient")
    good = _allergies(bundle)
    assert len(good) >= 2, "the seed must give a chart with two allergies"
    broken = copy.deepcopy(bundle)
    bad = _allergies(broken)[0]
    bad["criticality"] = 42  # not a code: fhir.resources R4B rejects it
    path = tmp_path / "chart.json"

    issues = _ingest(runtime, broken, path)
    assert [(i.resource_type, i.resource_id, i.patient_id) for i in issues] == [
        ("AllergyIntolerance", bad["id"], pid)]
    assert [i["resource_id"] for i in runtime.store.issues_for(pid)] == [bad["id"]]

    draft = run_draft(runtime, DraftRequest(pid, "discharge-instructions", backend="extractive"))
    listed = draft.checks["unreadable_resources"]
    assert [(u["resource_type"], u["resource_id"]) for u in listed] == [
        ("AllergyIntolerance", bad["id"])]
    assert "criticality" in listed[0]["message"]
    allergies = _section(draft, "Allergies")
    assert allergies.statements, "the other allergy is still in the draft"
    for st in allergies.statements:  # every one flagged, naming the unread resource
        assert st.flagged
        assert any(r.check == "completeness" and r.verdict == "unsupported"
                   and f"AllergyIntolerance/{bad['id']}" in r.reason
                   and r.reason.startswith("1 allergy record(s)") for r in st.results)
    assert draft.checks["flagged"] >= len(allergies.statements)
    # Other sections are not flagged for it.
    others = [s for s in draft.sections if s.title != "Allergies"]
    assert others and not any(_unreadable_flags(s) for s in others)
    # An edit's re-check keeps the warning rather than silently dropping it.
    recheck_draft(runtime.store.evidence_for(pid), draft)
    assert len(_unreadable_flags(_section(draft, "Allergies"))) == len(allergies.statements)

    # The chart is fixed at the source and re-ingested: the warning is gone.
    assert _ingest(runtime, bundle, path) == []
    assert runtime.store.issues_for(pid) == []
    fixed = run_draft(runtime, DraftRequest(pid, "discharge-instructions", backend="extractive"))
    assert "unreadable_resources" not in fixed.checks
    assert not _unreadable_flags(_section(fixed, "Allergies"))


def test_summary_flags_medications_for_an_unreadable_medication_request(
    runtime: Runtime, tmp_path: Path
) -> None:
    bundle = generate(1, SEED + 1000, anchor=ANCHOR)[0]
    pid = next(e["resource"]["id"] for e in bundle["entry"]
               if e["resource"]["resourceType"] == "Patient")
    meds = [e["resource"] for e in bundle["entry"]
            if e["resource"]["resourceType"] == "MedicationRequest"]
    assert meds, "the seed must give a chart with medicines"
    meds[0]["status"] = 42  # a code must be a string
    assert [i.resource_id for i in _ingest(runtime, bundle, tmp_path / "c.json")] == [meds[0]["id"]]
    draft = run_draft(runtime, DraftRequest(pid, "summary", backend="extractive"))
    medications = _section(draft, "Medications")
    assert medications.statements
    flags = _unreadable_flags(medications)
    assert len(flags) == len(medications.statements)
    assert all(f"MedicationRequest/{meds[0]['id']}" in f for f in flags)
    assert not _unreadable_flags(_section(draft, "Allergies"))
