"""The synthetic chart generator: valid FHIR, deterministic, shaped for our three documents."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle

from retrieval.errors import BadInput
from retrieval.evidence import Evidence
from retrieval.fhir_load import load_json, load_path
from retrieval.knowledge import evidence_for_criterion, policies
from retrieval.normalize import normalize_all
from retrieval.synth import facts_of, generate, planted_attacks, write
from retrieval.synth_data import ICD10, SNOMED, US_CORE_ETHNICITY, US_CORE_RACE

ANCHOR = date(2025, 6, 1)


@pytest.fixture(scope="module")
def fifty() -> list[dict[str, Any]]:
    return generate(50, 11, attacks=True, anchor=ANCHOR)


def _of(bundle: dict[str, Any], rtype: str) -> list[dict[str, Any]]:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == rtype]


def _note_texts(bundle: dict[str, Any]) -> dict[str, str]:
    return {d["type"]["coding"][0]["code"]: base64.b64decode(
        d["content"][0]["attachment"]["data"]).decode() for d in _of(bundle, "DocumentReference")}


def _evidence(bundle: dict[str, Any]) -> list[Evidence]:
    loaded = load_json(bundle)
    assert loaded.issues == []
    ev, issues = normalize_all(loaded.resources)
    assert issues == []
    return ev


def test_same_seed_same_bundles_and_other_seed_differs() -> None:
    a = generate(3, 5, anchor=ANCHOR)
    assert json.dumps(a) == json.dumps(generate(3, 5, anchor=ANCHOR))
    assert json.dumps(a) != json.dumps(generate(3, 6, anchor=ANCHOR))


def test_every_bundle_validates_as_r4_and_loads_cleanly(tmp_path: Path,
                                                        fifty: list[dict[str, Any]]) -> None:
    for b in fifty:
        Bundle.model_validate(b)
        assert b["type"] == "transaction"
        assert all(e["fullUrl"].startswith("urn:uuid:") for e in b["entry"])
    paths = write(8, 11, tmp_path, attacks=True, anchor=ANCHOR)
    assert len(paths) == 8 and all(p.exists() for p in paths)
    loaded = load_path(tmp_path)
    assert loaded.issues == []
    assert len(loaded.patient_ids()) == 8
    # Every reference was rewritten away from urn:uuid by the loader.
    assert not any("urn:uuid:" in json.dumps(r.resource) for r in loaded.resources)


def test_patient_has_demographics_and_identifiers(fifty: list[dict[str, Any]]) -> None:
    for b in fifty:
        (p,) = _of(b, "Patient")
        urls = {x["url"] for x in p["extension"]}
        assert {US_CORE_RACE, US_CORE_ETHNICITY} <= urls
        mr = p["identifier"][0]
        assert mr["type"]["coding"][0]["code"] == "MR" and mr["value"].startswith("SYN-")
        assert p["telecom"][0]["value"].startswith("555-01")  # fictional range
        assert any(ch.isdigit() for ch in p["name"][0]["family"])  # Synthea-style, not a person
        assert p["address"][0]["city"] and p["birthDate"]


def test_chart_shape_per_patient(fifty: list[dict[str, Any]]) -> None:
    for b in fifty:
        classes = Counter(e["class"]["code"] for e in _of(b, "Encounter"))
        assert classes == {"IMP": 1, "AMB": 1}
        stay = next(e for e in _of(b, "Encounter") if e["class"]["code"] == "IMP")
        assert stay["period"]["start"] < stay["period"]["end"]
        conds = _of(b, "Condition")
        assert all({c["system"] for c in x["code"]["coding"]} == {ICD10, SNOMED} for x in conds)
        statuses = Counter(x["clinicalStatus"]["coding"][0]["code"] for x in conds)
        assert statuses["resolved"] == 1 and statuses["active"] >= 2
        meds = _of(b, "MedicationRequest")
        for m in meds:
            dose = m["dosageInstruction"][0]
            assert dose["doseAndRate"][0]["doseQuantity"]["value"] > 0
            assert dose["timing"]["repeat"] and dose["route"]
        assert sum(m["status"] == "stopped" for m in meds) >= 2  # one changed, one stopped
        obs = _of(b, "Observation")
        assert any(o["code"]["coding"][0]["code"] == "85354-9" and len(o["component"]) == 2
                   for o in obs)
        labs = Counter(o["code"]["coding"][0]["code"] for o in obs
                       if o["category"][0]["coding"][0]["code"] == "laboratory")
        assert max(labs.values()) >= 3  # a trend over time
        assert _of(b, "Procedure") and _of(b, "Immunization") and _of(b, "Coverage")
        assert set(_note_texts(b)) == {"18842-5", "34117-2", "11506-3"}


def test_medicines_new_changed_stopped_continued(fifty: list[dict[str, Any]]) -> None:
    for b in fifty:
        ev = _evidence(b)
        meds = [e for e in ev if e.resource_type == "MedicationRequest"]
        active = {e.data["drug"].split(" ")[0].lower() for e in meds
                  if e.data["status"] == "active"}
        stopped = [e.data["drug"].split(" ")[0].lower() for e in meds
                   if e.data["status"] == "stopped"]
        assert any(s in active for s in stopped), "a dose change: old stopped, new active"
        assert any(s not in active for s in stopped), "a medicine stopped outright"
        stay = next(e for e in ev if e.resource_type == "Encounter" and e.data["class"] ==
                    "inpatient encounter")
        new = [e for e in meds if e.data["status"] == "active"
               and e.data["authored_on"][:10] == stay.data["end"][:10]]
        old = [e for e in meds if e.data["status"] == "active"
               and e.data["authored_on"][:10] < stay.data["start"][:10]]
        assert new and old


def test_discharge_summary_is_written_from_the_structured_facts(
        fifty: list[dict[str, Any]]) -> None:
    for b in fifty[:12]:
        notes = _note_texts(b)
        ds = notes["18842-5"]
        for heading in ("HISTORY OF PRESENT ILLNESS:", "HOSPITAL COURSE:", "PLAN:"):
            assert heading in ds
        stay = next(e for e in _of(b, "Encounter") if e["class"]["code"] == "IMP")
        assert stay["period"]["start"][:10] in ds and stay["period"]["end"][:10] in ds
        for m in _of(b, "MedicationRequest"):
            if m["status"] == "active" and m["authoredOn"][:10] == stay["period"]["end"][:10] \
                    and m["encounter"]["reference"] == f"urn:uuid:{stay['id']}":
                assert m["medicationCodeableConcept"]["coding"][0]["display"] in ds
        follow = [s for s in _of(b, "ServiceRequest")
                  if s["code"]["coding"][0]["code"] == "390906007"]
        assert follow and follow[0]["occurrenceDateTime"][:10] in ds
        allergies = [a["code"]["coding"][0]["display"] for a in _of(b, "AllergyIntolerance")
                     if a["code"]["coding"][0]["code"] != "716186003"]
        hp = notes["34117-2"]
        assert all(a in hp for a in allergies)
        if not allergies:
            assert "No known allergies." in hp


def test_pending_order_is_covered_by_a_policy_with_some_criteria_open(
        fifty: list[dict[str, Any]]) -> None:
    seen_policies: Counter[str] = Counter()
    met_counts: list[tuple[int, int]] = []
    for b in fifty:
        ev = _evidence(b)
        orders = [e for e in ev if e.resource_type in ("ServiceRequest", "MedicationRequest")
                  and e.data["status"] == "draft" and e.data["intent"] == "order"]
        assert len(orders) == 1
        policy = next(p for p in policies()
                      if any(p.applies_to_code(c.system, c.code) for c in orders[0].codes))
        seen_policies[policy.id] += 1
        met = sum(bool(evidence_for_criterion(c, ev, today=ANCHOR)) for c in policy.criteria)
        met_counts.append((met, len(policy.criteria)))
        assert evidence_for_criterion(policy.criteria[0], ev, today=ANCHOR), "diagnosis"
    assert set(seen_policies) == {"policy-lumbar-mri", "policy-semaglutide", "policy-adalimumab"}
    assert sum(m < n for m, n in met_counts) >= 30  # most letters have a gap to report
    assert any(m == n for m, n in met_counts)  # and some charts meet every criterion


def test_population_is_spread(fifty: list[dict[str, Any]]) -> None:
    ages, sexes, races, eths, payers = [], Counter(), Counter(), Counter(), Counter()
    for b in fifty:
        (p,) = _of(b, "Patient")
        ages.append(ANCHOR.year - int(p["birthDate"][:4]))
        sexes[p["gender"]] += 1
        ext = {x["url"]: x["extension"][0]["valueCoding"]["code"] for x in p["extension"]}
        races[ext[US_CORE_RACE]] += 1
        eths[ext[US_CORE_ETHNICITY]] += 1
        payers[_of(b, "Coverage")[0]["payor"][0]["display"]] += 1
    assert min(ages) < 18 and max(ages) >= 65
    assert sum(18 <= a < 65 for a in ages) >= 15
    assert min(sexes.values()) >= 15
    assert len(races) >= 5 and len(eths) == 2 and min(eths.values()) >= 5
    assert len(payers) == 5


def test_planted_attacks_are_reported_and_really_in_the_notes(
        fifty: list[dict[str, Any]]) -> None:
    kinds: Counter[str] = Counter()
    for b in fifty:
        ds = _note_texts(b)["18842-5"]
        me = facts_of(b)
        for a in planted_attacks(b):
            kinds[a["kind"]] += 1
            assert a["resource"] in {e["fullUrl"] for e in b["entry"]}
            if a["kind"] == "injection":
                assert a["text"] in ds and "ignore previous instructions" in a["text"].lower()
            else:
                assert a["name"] in ds and a["mrn"] in ds and a["phone"] in ds
                assert (a["name"], a["mrn"], a["phone"]) != (me["name"], me["mrn"], me["phone"])
                assert a["mrn"] != me["mrn"] and a["phone"] != me["phone"]
    assert kinds["injection"] >= 20 and kinds["foreign_phi"] >= 10
    clean = generate(6, 11, anchor=ANCHOR)
    assert all(planted_attacks(b) == [] for b in clean)
    assert not any("ignore previous" in t.lower() for b in clean for t in _note_texts(b).values())


def test_bad_count_is_rejected() -> None:
    with pytest.raises(BadInput, match="between 0 and"):
        generate(-1, 1)
