"""MedicationRequest and Medication -> Evidence (drug, strength, dose, route, frequency, status)."""

from __future__ import annotations

import re
from typing import Any

from retrieval.evidence import Evidence
from retrieval.fhir_load import LoadedResource
from retrieval.normalize_common import (
    RXNORM,
    Context,
    Json,
    as_list,
    cc_text,
    code_in,
    codes_of,
    day,
    evidence,
    fmt_num,
    join,
    linked_name,
    links_of,
    num,
    quantity,
    ref_display,
)

_STRENGTH = re.compile(
    r"(\d+(?:\.\d+)?)\s*(MG/ML|MG/HR|MCG/HR|MG/ACTUAT|MCG/ACTUAT|UNT/ML|MEQ/ML|MCG/ML|MG/MG|"
    r"MG|MCG|UG|G|ML|UNT|MEQ|%)(?![A-Za-z])",
    re.IGNORECASE,
)
# Dose forms named in RxNorm strings -> (what one dose is called, route it implies).
_FORMS: list[tuple[str, str, str | None]] = [
    ("oral tablet", "tablet", "oral"), ("chewable tablet", "tablet", "oral"),
    ("tablet", "tablet", None), ("oral capsule", "capsule", "oral"), ("capsule", "capsule", None),
    ("oral solution", "mL", "oral"), ("oral suspension", "mL", "oral"),
    ("injectable solution", "injection", "injection"), ("injection", "injection", "injection"),
    ("prefilled syringe", "injection", "injection"), ("auto-injector", "injection", "injection"),
    ("metered dose inhaler", "puff", "inhalation"), ("dry powder inhaler", "puff", "inhalation"),
    ("inhalation", "dose", "inhalation"), ("nasal spray", "spray", "nasal"),
    ("transdermal", "patch", "transdermal"), ("topical", "application", "topical"),
    ("ophthalmic", "drop", "ophthalmic"), ("rectal", "dose", "rectal"),
    ("vaginal", "dose", "vaginal"), ("sublingual", "tablet", "sublingual"),
]
_ROUTE_WORDS = {"oral": "by mouth", "injection": "by injection", "inhalation": "inhaled",
                "nasal": "in the nose", "transdermal": "on the skin", "topical": "on the skin",
                "ophthalmic": "in the eye", "rectal": "rectally", "vaginal": "vaginally",
                "sublingual": "under the tongue"}
_TIMING_CODES = {"QD": "once daily", "BID": "twice daily", "TID": "three times daily",
                 "QID": "four times daily", "QOD": "every other day", "QHS": "at bedtime",
                 "HS": "at bedtime", "Q4H": "every 4 hours", "Q6H": "every 6 hours",
                 "Q8H": "every 8 hours", "Q12H": "every 12 hours", "QAM": "every morning",
                 "QPM": "every evening", "WK": "once weekly", "MO": "once monthly"}
_UNITS = {"s": "second", "min": "minute", "h": "hour", "d": "day", "wk": "week", "mo": "month",
          "a": "year"}
_TIMES = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times",
          6: "six times"}


def strength_of(drug: str | None) -> tuple[float | int | None, str | None]:
    """``"Metformin 500 MG Oral Tablet"`` -> ``(500, "mg")``; first strength named.

    RxNorm puts a package quantity first ("1 ML medroxyprogesterone acetate 150 MG/ML
    Injection"): that is how much is in the syringe, not the strength, so a leading quantity
    is skipped when a strength follows the ingredient name.
    """
    found = list(_STRENGTH.finditer(drug or ""))
    if not found:
        return None, None
    m = found[0]
    if m.start() == 0 and len(found) > 1:
        m = found[1]
    return num(m.group(1)), m.group(2).lower()


def form_of(drug: str | None) -> tuple[str | None, str | None]:
    low = (drug or "").lower()
    for needle, form, route in _FORMS:
        if needle in low:
            return form, route
    return None, None


def frequency_text(timing: Any) -> str | None:
    """Timing -> ``"twice daily"`` / ``"every 6 hours"`` / ``"3 times every 2 weeks"``."""
    if not isinstance(timing, dict):
        return None
    rep = timing.get("repeat") or {}
    f, p, u = num(rep.get("frequency")), num(rep.get("period")), rep.get("periodUnit")
    if f and p and u in _UNITS:
        unit = _UNITS[u]
        if p == 1 and u == "d":
            return f"{_TIMES.get(int(f), f'{f} times')} daily"
        if p == 1 and u in ("wk", "mo"):
            return f"{_TIMES.get(int(f), f'{f} times')} {'weekly' if u == 'wk' else 'monthly'}"
        if f == 1:
            return f"every {unit}" if p == 1 else f"every {fmt_num(p)} {unit}s"
        return f"{_TIMES.get(int(f), f'{f} times')} every {fmt_num(p)} {unit}s"
    code = timing.get("code")
    for c in codes_of(code):
        if c.code and c.code.upper() in _TIMING_CODES:
            return _TIMING_CODES[c.code.upper()]
    return cc_text(code)


def soften(drug: str) -> str:
    """RxNorm shouts units and forms (``500 MG Oral Tablet``); prose says ``500 mg oral tablet``."""
    out = re.sub(r"\b(MG|MCG|ML|UNT|MEQ|HR|ACTUAT)\b", lambda m: m.group(1).lower(), drug)
    for needle, _, _ in _FORMS:
        out = re.sub(needle, needle, out, flags=re.IGNORECASE)
    return out


def drug_concept(r: LoadedResource, ctx: Context) -> tuple[Any, Json | None]:
    res = r.resource
    if res.get("medicationCodeableConcept"):
        return res["medicationCodeableConcept"], None
    ref = (res.get("medicationReference") or {}).get("reference")
    med = ctx.resolve(ref, res)
    if med is not None:
        return med.get("code"), med
    # Unresolved reference: its display is still better than nothing.
    disp = (res.get("medicationReference") or {}).get("display")
    return ({"text": disp} if disp else None), None


def medication_request(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    concept, med = drug_concept(r, ctx)
    drug = cc_text(concept) or "Unnamed medication"
    strength_value, strength_unit = strength_of(drug)
    if strength_value is None and med:
        for ing in as_list(med.get("ingredient")):
            numer = ((ing or {}).get("strength") or {}).get("numerator")
            strength_value, strength_unit = quantity(numer)
            if strength_value is not None:
                break
    form, form_route = form_of(drug)
    dosage: Json = next((d for d in as_list(res.get("dosageInstruction")) if isinstance(d, dict)),
                        {})
    dose_value, dose_unit = None, None
    for dr in as_list(dosage.get("doseAndRate")):
        dose_value, dose_unit = quantity((dr or {}).get("doseQuantity"))
        if dose_value is not None:
            break
    route = cc_text(dosage.get("route")) or form_route
    timing = dosage.get("timing") or {}
    rep = timing.get("repeat") or {}
    frequency = frequency_text(timing)
    as_needed = bool(dosage.get("asNeededBoolean")) or bool(dosage.get("asNeededCodeableConcept"))
    as_needed_for = cc_text(dosage.get("asNeededCodeableConcept"))
    authored = res.get("authoredOn")
    status = res.get("status")
    data: Json = {
        "status": status,
        # why an order was stopped or put on hold: a clinician and the patient need it
        "status_reason": cc_text(res.get("statusReason")),
        "drug": drug,
        "rxnorm": code_in(concept, RXNORM),
        "strength_value": strength_value,
        "strength_unit": strength_unit,
        "dose_value": dose_value,
        "dose_unit": dose_unit,
        "dose_form": form,
        "route": route,
        "frequency": frequency,
        "timing": {"frequency": num(rep.get("frequency")), "period": num(rep.get("period")),
                   "periodUnit": rep.get("periodUnit")} if rep else None,
        "as_needed": as_needed,
        "as_needed_for": as_needed_for,
        "dosage_text": dosage.get("text"),
        # "with food", "complete the course": an instruction a patient sentence may repeat
        "additional_instructions": [t for t in (cc_text(x) for x in
                                                as_list(dosage.get("additionalInstruction"))) if t],
        "patient_instructions": dosage.get("patientInstruction"),
        "authored_on": authored,
        "intent": res.get("intent"),
        "reason": join(cc_text(res.get("reasonCode")) or "",
                       *(linked_name(x, ctx, res) for x in as_list(res.get("reasonReference"))))
        or None,
        # why the order was written, as the chart links it (guardrails check purpose claims)
        "links": links_of(res, reason=res.get("reasonReference"), based_on=res.get("basedOn")),
        "requester": ref_display(res.get("requester")),
        "encounter": (res.get("encounter") or {}).get("reference"),
        "change": None,  # one order alone cannot tell new/changed/stopped; left to callers
    }
    how = ""
    if dose_value is not None:
        how = f"{fmt_num(dose_value)} {dose_unit or form or 'dose'}"
        if form and not dose_unit and dose_value != 1 and form not in ("mL",):
            how += "s"
    how = join(how, frequency, sep=" ")
    if route:
        how = join(how, _ROUTE_WORDS.get(route.lower(), route.lower()), sep=" ")
    if as_needed:
        how = join(how, f"as needed{' for ' + as_needed_for if as_needed_for else ''}", sep=" ")
    if dosage.get("text") and not how:
        how = str(dosage["text"])
    if data["additional_instructions"]:
        how = join(how, "; ".join(t.rstrip(". ") for t in data["additional_instructions"]).lower())
    # authoredOn is when the order was written: only an active order is "active since" then.
    if authored and status == "active":
        since = f"active since {day(authored)}"
    else:
        since = join(status, f"ordered {day(authored)}" if authored else None)
    if data["status_reason"]:
        since = join(since, f"reason for status: {data['status_reason']}")
    text = join(soften(drug), how, since) or drug
    return [evidence(r, title=drug, text=text, data=data, codes=codes_of(concept),
                     date=authored)]


def medication(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    drug = cc_text(res.get("code")) or "Unnamed medication"
    sv, su = strength_of(drug)
    data: Json = {"drug": drug, "rxnorm": code_in(res.get("code"), RXNORM),
                  "strength_value": sv, "strength_unit": su, "form": cc_text(res.get("form"))}
    return [evidence(r, title=drug, text=f"Medication: {soften(drug)}", data=data,
                     codes=codes_of(res.get("code")))]
