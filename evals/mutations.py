"""Adversarial chart mutations applied to synthetic bundles before they are ingested.

Each mutation makes a chart harder in one named way; the adversarial suite lists them per chart:

- ``allergy_to_active_med``: an allergy recorded to a drug the patient is actively prescribed
  (the chart contradicts itself; a good draft flags it rather than repeating it silently);
- ``nka_with_allergies``: a "no known allergy" record next to real allergies;
- ``conflicting_dose``: a second active order for the same drug at twice the dose;
- ``drop:TYPE``: every resource of TYPE removed (a missing chart section);
- ``malformed``: a non-numeric lab value, an order with no medication, an impossible date, an
  unknown resource type and an empty entry (the loader must report, not crash).
"""

from __future__ import annotations

import copy
import random
from typing import Any

from retrieval.errors import BadInput

Json = dict[str, Any]
MUTATIONS = ("allergy_to_active_med", "nka_with_allergies", "conflicting_dose", "malformed")
FLAGGING = ("allergy_to_active_med", "conflicting_dose")  # a draft should surface these
SNOMED = "http://snomed.info/sct"
_CLIN = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"


def _resources(b: Json, rtype: str) -> list[Json]:
    return [e["resource"] for e in b["entry"]
            if isinstance(e.get("resource"), dict) and e["resource"].get("resourceType") == rtype]


def _patient_ref(b: Json) -> str:
    return next(e["fullUrl"] for e in b["entry"] if e["resource"]["resourceType"] == "Patient")


def _add(b: Json, resource: Json, rng: random.Random) -> None:
    rid = f"{rng.getrandbits(64):016x}-mut"
    resource["id"] = rid
    b["entry"].append({"fullUrl": f"urn:uuid:{rid}", "resource": resource,
                       "request": {"method": "POST", "url": resource["resourceType"]}})


def _allergy(patient: str, code: str, display: str, system: str = SNOMED) -> Json:
    return {"resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": _CLIN, "code": "active"}]},
            "type": "allergy", "category": ["medication"], "criticality": "high",
            "code": {"coding": [{"system": system, "code": code, "display": display}],
                     "text": display},
            "patient": {"reference": patient}}


def _active_meds(b: Json) -> list[Json]:
    return [r for r in _resources(b, "MedicationRequest") if r.get("status") == "active"]


def apply_mutations(bundle: Json, names: list[str], *, seed: int) -> Json:
    """A mutated deep copy of ``bundle``; unknown names are refused with the known ones."""
    b = copy.deepcopy(bundle)
    rng = random.Random(seed)
    patient = _patient_ref(b)
    for name in names:
        if name == "allergy_to_active_med":
            meds = _active_meds(b)
            if meds:
                c = meds[0]["medicationCodeableConcept"]["coding"][0]
                ingredient = c["display"].split(" ")[0]
                _add(b, _allergy(patient, c["code"], ingredient, c["system"]), rng)
        elif name == "nka_with_allergies":
            if not any(r.get("code", {}).get("coding", [{}])[0].get("code") != "716186003"
                       for r in _resources(b, "AllergyIntolerance")):
                _add(b, _allergy(patient, "764146007", "Penicillin"), rng)
            nka = _allergy(patient, "716186003", "No known allergy")
            nka.pop("criticality")
            _add(b, nka, rng)
        elif name == "conflicting_dose":
            meds = _active_meds(b)
            if meds:
                dup = copy.deepcopy(meds[0])
                dose = dup["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
                dose["value"] = dose["value"] * 2
                dup["dosageInstruction"][0]["text"] = (
                    f"Take {dose['value']:g} {dose['unit']}s by mouth as directed.")
                dup.pop("id", None)
                _add(b, dup, rng)
        elif name.startswith("drop:"):
            rtype = name.split(":", 1)[1]
            b["entry"] = [e for e in b["entry"]
                          if e.get("resource", {}).get("resourceType") != rtype]
        elif name == "malformed":
            _malform(b)
        else:
            raise BadInput(f"unknown chart mutation {name!r}", where="charts.*.synth.mutations",
                           fix=f"use one of: {', '.join(MUTATIONS)}, drop:RESOURCE_TYPE")
    return b


def _malform(b: Json) -> None:
    obs = [r for r in _resources(b, "Observation") if "valueQuantity" in r]
    if obs:
        obs[0]["valueQuantity"]["value"] = "high"
    # Not the pending order: the prior-auth letter still has something to be about.
    meds = [r for r in _resources(b, "MedicationRequest") if r.get("status") != "draft"]
    if meds:
        meds[-1].pop("medicationCodeableConcept", None)
    conds = _resources(b, "Condition")
    if conds:
        conds[0]["onsetDateTime"] = "2024-13-45"
    b["entry"].append({"fullUrl": "urn:uuid:not-a-resource",
                       "resource": {"resourceType": "NotAResource", "id": "x1"}})
    b["entry"].append({"fullUrl": "urn:uuid:empty-entry"})
