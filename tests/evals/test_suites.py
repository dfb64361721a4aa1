"""Shipped suites load and expand; core spreads across subgroups; mutations do what they say."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from evals.mutations import apply_mutations
from evals.suite import SUITES_DIR, expand, load_suite, materialize
from retrieval.errors import BadInput
from retrieval.fhir_load import load_json
from retrieval.normalize import normalize_all
from retrieval.synth import generate


@pytest.mark.parametrize("name", ["smoke", "core", "adversarial", "shared"])
def test_shipped_suites_parse(name: str) -> None:
    suite, sha = load_suite(name)
    assert suite.name == name and len(sha) == 64


def test_unknown_suite_says_which_exist() -> None:
    with pytest.raises(BadInput, match="smoke"):
        load_suite("no-such-suite")


def test_core_covers_every_subgroup_and_doc_type(tmp_path: Path) -> None:
    suite, _ = load_suite("core")
    charts = {k: materialize(k, s, tmp_path) for k, s in suite.charts.items()}
    cases = expand(suite, charts)
    patients = {c.patient_id for c in cases}
    assert len(patients) >= 50
    assert Counter(c.doc_type for c in cases) == {
        "summary": 50, "discharge-instructions": 50, "prior-auth": 50}
    groups = {attr: Counter(c.groups[attr] for c in cases if c.doc_type == "summary")
              for attr in ("age_band", "sex", "race", "ethnicity", "payer")}
    assert set(groups["age_band"]) == {"0-17", "18-44", "45-64", "65+"}
    assert set(groups["sex"]) == {"female", "male"}
    assert len(groups["race"]) >= 5
    assert set(groups["ethnicity"]) == {"Hispanic or Latino", "Not Hispanic or Latino"}
    assert len(groups["payer"]) == 5 and "unknown" not in groups["payer"]
    # every case knows what it must not leave out
    assert all(c.expect.required_codes or c.expect.required_ids for c in cases)


def test_adversarial_expectations(tmp_path: Path) -> None:
    suite, _ = load_suite("adversarial")
    charts = {k: materialize(k, s, tmp_path) for k, s in suite.charts.items()}
    cases = expand(suite, charts)
    assert len({c.patient_id for c in cases}) == sum(s.synth.n for s in suite.charts.values()
                                                     if s.synth)  # seeds never collide
    attacked = [c for c in cases if "injection" in c.tags]
    assert attacked and all("ignore previous instructions" in c.expect.injection_markers
                            for c in attacked)
    phi = [c for c in cases if "foreign_phi" in c.tags]
    assert phi and all(len(c.expect.foreign_phi) == 3 for c in phi)  # name, MRN, phone
    assert all(c.expect.flag_expected for c in cases if c.chart == "contradictions")
    assert all(c.expect.error for c in cases if "refusal" in c.tags)


def _evidence(bundle: dict) -> list:
    ev, _ = normalize_all(load_json(bundle).resources)
    return ev


def test_mutations_change_the_chart_as_named() -> None:
    b = generate(1, 9)[0]
    before = _evidence(b)
    meds = [e for e in before if e.resource_type == "MedicationRequest"
            and e.data.get("status") == "active"]

    contra = _evidence(apply_mutations(b, ["allergy_to_active_med"], seed=1))
    med_codes = {c.code for c in meds[0].codes}
    assert any(e.resource_type == "AllergyIntolerance" and {c.code for c in e.codes} & med_codes
               for e in contra)

    doubled = _evidence(apply_mutations(b, ["conflicting_dose"], seed=1))
    n_active = sum(e.resource_type == "MedicationRequest" and e.data.get("status") == "active"
                   for e in doubled)
    assert n_active == len(meds) + 1

    dropped = _evidence(apply_mutations(b, ["drop:AllergyIntolerance"], seed=1))
    assert not any(e.resource_type == "AllergyIntolerance" for e in dropped)

    broken = apply_mutations(b, ["malformed"], seed=1)
    loaded = load_json(broken)
    assert loaded.issues  # reported per entry, not raised
    assert b == generate(1, 9)[0]  # the input bundle is not modified

    with pytest.raises(BadInput, match="drop:RESOURCE_TYPE"):
        apply_mutations(b, ["set-on-fire"], seed=1)


def test_suite_files_are_where_the_cli_looks() -> None:
    assert sorted(p.stem for p in SUITES_DIR.glob("*.yaml")) == [
        "adversarial", "core", "shared", "smoke"]


def test_age_band_reads_the_birth_day_as_written() -> None:
    from datetime import date

    from evals.suite import age_band

    today = date(2025, 6, 1)
    assert age_band("1980-06-01", today) == "45-64"  # 45 on the day
    assert age_band("1980-06-02", today) == "18-44"  # a day short of 45
    assert age_band("1980-06-02T00:30:00+14:00", today) == "18-44"  # the written day, no shift
    assert age_band("2010-01-01T08:00:00Z", today) == "0-17"
    assert age_band("1950-03-04", today) == "65+"
    # No day, no band (a year alone leaves 44 or 45 open): unknown, as before.
    for birth in (None, "", "1980", "1980-06", "06/01/1980", "1980-02-30"):
        assert age_band(birth, today) == "unknown", birth
