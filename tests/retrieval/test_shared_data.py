"""The third-party sample charts (../shared/data): all 30 patients load with zero FHIR errors."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from retrieval.chart_store import ChartStore
from retrieval.fhir_load import LoadResult, load_path
from retrieval.normalize import normalize_all

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
BUNDLES = DATA / "synthea-r4-bundles"
BULK = DATA / "bulk-10-patients"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (BUNDLES.is_dir() and BULK.is_dir()),
                       reason=f"sample data not found at {DATA} (see /work/shared/data/README.md)"),
]


@pytest.fixture(scope="module")
def loaded() -> LoadResult:
    result = load_path(BUNDLES)
    result.extend(load_path(BULK))
    return result


def test_all_thirty_patients_load_without_errors(loaded: LoadResult) -> None:
    assert loaded.issues == []
    assert len(loaded.patient_ids()) == 30  # 17 bundles + 13 bulk-export patients
    # Non-FHIR files are skipped with a notice, never silently and never as errors.
    for name in ("LICENSE", "LICENSE-NOTE.txt", "log.ndjson"):
        assert any(name in n and "skipped" in n for n in loaded.notices), name
    # Bundles used urn:uuid fullUrls: none may survive into stored references.
    assert not any("urn:uuid:" in str(r.resource.get("subject")) for r in loaded.resources)


def test_normalizes_every_resource_and_every_note(loaded: LoadResult) -> None:
    evidence, issues = normalize_all(loaded.resources)
    assert issues == []
    notes = {e.resource_id for e in evidence if e.resource_type == "DocumentReference"}
    assert len(notes) == 1215  # every bulk-export note gives at least one section
    assert all(len(e.text) <= 1200 for e in evidence if e.resource_type == "DocumentReference")
    kinds = Counter(e.resource_type for e in evidence)
    for rtype in ("Patient", "Encounter", "Condition", "MedicationRequest", "AllergyIntolerance",
                  "Observation", "DiagnosticReport", "Procedure", "Immunization", "CarePlan"):
        assert kinds[rtype] > 0, rtype
    meds = [e for e in evidence if e.resource_type == "MedicationRequest"]
    assert all(e.data["drug"] and e.patient_id for e in meds)


def test_store_reload_is_idempotent(loaded: LoadResult, tmp_path: Path) -> None:
    store = ChartStore(f"sqlite:///{tmp_path / 'charts.db'}")
    evidence, _ = normalize_all(loaded.resources)
    first = store.upsert(loaded.resources, evidence)
    assert first.new == len(loaded.resources)
    versions = {p.id: store.chart_version(p.id) for p in store.patients()}
    assert len(versions) == 30
    again = load_path(BUNDLES).extend(load_path(BULK))
    ev2, _ = normalize_all(again.resources)
    second = store.upsert(again.resources, ev2)
    assert (second.new, second.changed) == (0, 0)
    assert {p.id: store.chart_version(p.id) for p in store.patients()} == versions
    store.close()
