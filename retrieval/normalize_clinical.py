"""Clinical resources -> Evidence: Condition, AllergyIntolerance, Observation, DiagnosticReport,
Procedure, Immunization, Encounter, CarePlan, ServiceRequest."""

from __future__ import annotations

from typing import Any

from retrieval.evidence import Evidence
from retrieval.fhir_load import LoadedResource
from retrieval.normalize_common import (
    CPT,
    CVX,
    ICD10,
    LOINC,
    SNOMED,
    Context,
    Json,
    as_list,
    cc_text,
    code_in,
    codes_in,
    codes_of,
    day,
    evidence,
    fmt_num,
    join,
    linked_name,
    links_of,
    period_end,
    period_start,
    quantity,
    ref_display,
    status_code,
    unit_text,
    when,
)


def _reasons(res: Json, ctx: Context) -> str | None:
    parts = [cc_text(c) for c in as_list(res.get("reasonCode"))]
    parts += [linked_name(x, ctx, res) for x in as_list(res.get("reasonReference"))]
    return join(*parts) or None


def _value_phrase(value: Any, unit: str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        shown = fmt_num(round(value, 2))  # data keeps full precision; prose reads 18.12
    elif isinstance(value, int) and not isinstance(value, bool):
        shown = fmt_num(value)
    else:
        shown = str(value)
    return join(shown, unit_text(unit), sep=" ")


def condition(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    name = cc_text(res.get("code")) or "Unnamed condition"
    onset = when(res, "onset") or (res.get("onsetAge") or {}).get("value")
    abatement = when(res, "abatement")
    clinical = status_code(res.get("clinicalStatus"))
    verification = status_code(res.get("verificationStatus"))
    data: Json = {
        "status": clinical,
        "name": name,
        "clinical_status": clinical,
        "verification_status": verification,
        "onset": onset,
        "abatement": abatement,
        "recorded_date": res.get("recordedDate"),
        "category": cc_text(res.get("category")),
        "icd10": codes_in(res.get("code"), ICD10),
        "snomed": codes_in(res.get("code"), SNOMED),
        # what the diagnosis rests on (Condition.evidence.detail: Observations, other Conditions)
        "links": links_of(res, evidence=res.get("evidence")),
    }
    text = join(name, clinical, verification,
                f"since {day(onset)}" if isinstance(onset, str) else None,
                f"resolved {day(abatement)}" if abatement else None)
    return [evidence(r, title=name, text=text, data=data, codes=codes_of(res.get("code")),
                     date=onset if isinstance(onset, str) else res.get("recordedDate"))]


def allergy(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    substance = cc_text(res.get("code")) or "Unnamed substance"
    reactions = []
    for rx in as_list(res.get("reaction")):
        if not isinstance(rx, dict):
            continue
        reactions.append({
            "manifestation": cc_text(rx.get("manifestation")),
            "severity": rx.get("severity"),
            "substance": cc_text(rx.get("substance")),
        })
    clinical = status_code(res.get("clinicalStatus"))
    category = as_list(res.get("category"))
    data: Json = {
        "status": clinical,
        "substance": substance,
        "type": res.get("type"),
        "category": category,
        "criticality": res.get("criticality"),
        "clinical_status": clinical,
        "verification_status": status_code(res.get("verificationStatus")),
        "reactions": reactions,
        "onset": when(res, "onset"),
        "recorded_date": res.get("recordedDate"),
    }
    rx_text = join(*(join(x["manifestation"], f"({x['severity']})" if x["severity"] else None,
                          sep=" ") for x in reactions))
    kind = str(res.get("type") or "allergy").capitalize()
    # Some codes already read "Allergy to mould"; do not say it twice.
    lead = substance if substance.lower().startswith(kind.lower()) else f"{kind} to {substance}"
    text = join(lead + (f" ({', '.join(map(str, category))})" if category else ""),
                f"criticality {res['criticality']}" if res.get("criticality") else None,
                clinical, data["verification_status"],
                f"reactions: {rx_text}" if rx_text else None)
    return [evidence(r, title=f"Allergy: {substance}", text=text, data=data,
                     codes=codes_of(res.get("code")),
                     date=data["onset"] or res.get("recordedDate"))]


def _obs_value(o: Json) -> tuple[Any, str | None]:
    if "valueQuantity" in o:
        return quantity(o["valueQuantity"])
    for k in ("valueInteger", "valueBoolean", "valueString", "valueDateTime", "valueTime"):
        if k in o:
            return o[k], None
    if "valueCodeableConcept" in o:
        return cc_text(o["valueCodeableConcept"]), None
    return None, None


def observation(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    name = cc_text(res.get("code")) or "Unnamed observation"
    value, unit = _obs_value(res)
    components = []
    for c in as_list(res.get("component")):
        if not isinstance(c, dict):
            continue
        cv, cu = _obs_value(c)
        components.append({"name": cc_text(c.get("code")), "loinc": code_in(c.get("code"), LOINC),
                           "value": cv, "unit": cu})
    rr = next((x for x in as_list(res.get("referenceRange")) if isinstance(x, dict)), {})
    low, _ = quantity(rr.get("low"))
    high, _ = quantity(rr.get("high"))
    interpretation = cc_text(res.get("interpretation"))
    effective = when(res, "effective") or res.get("issued")
    data: Json = {
        "name": name,
        "loinc": code_in(res.get("code"), LOINC),
        "value": value,
        "unit": unit,
        "components": components,
        "reference_low": low,
        "reference_high": high,
        "reference_text": rr.get("text"),
        "interpretation": interpretation,
        "effective": effective,
        "category": cc_text(res.get("category")),
    }
    measured = _value_phrase(value, unit)
    if components:
        measured = join(measured, join(*(
            join(c["name"], _value_phrase(c["value"], c["unit"]), sep=" ") for c in components)))
    ref = None
    if low is not None or high is not None:
        ref = f"reference {fmt_num(low) if low is not None else ''}-" \
              f"{fmt_num(high) if high is not None else ''}"
    extra = join(ref, interpretation)
    text = join(f"{name}: {measured}" if measured else name, extra or None,
                f"on {day(effective)}" if effective else None)
    return [evidence(r, title=name, text=text, data=data,
                     codes=codes_of(res.get("code"), *[c.get("code") for c in
                                                        as_list(res.get("component"))
                                                        if isinstance(c, dict)]),
                     date=effective)]


def diagnostic_report(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    name = cc_text(res.get("code")) or "Diagnostic report"
    results = [x.get("reference") for x in as_list(res.get("result"))
               if isinstance(x, dict) and x.get("reference")]
    effective = when(res, "effective") or res.get("issued")
    data: Json = {"name": name, "loinc": code_in(res.get("code"), LOINC), "result_ids": results,
                  "conclusion": res.get("conclusion"), "effective": effective,
                  "category": cc_text(res.get("category"))}
    shown = join(*(ref_display(x) for x in as_list(res.get("result"))
                   if isinstance(x, dict) and x.get("display")))
    text = join(f"{name} report", res.get("status"), f"on {day(effective)}" if effective else None,
                f"{len(results)} result(s){': ' + shown if shown else ''}" if results else None,
                f"conclusion: {res['conclusion']}" if res.get("conclusion") else None)
    return [evidence(r, title=name, text=text, data=data, codes=codes_of(res.get("code")),
                     date=effective)]


def procedure(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    name = cc_text(res.get("code")) or "Unnamed procedure"
    performed = when(res, "performed")
    data: Json = {"name": name, "performed": performed,
                  "performed_end": period_end(res.get("performedPeriod")),
                  "snomed": code_in(res.get("code"), SNOMED), "cpt": code_in(res.get("code"), CPT),
                  "reason": _reasons(res, ctx),
                  "links": links_of(res, reason=res.get("reasonReference"),
                                    based_on=res.get("basedOn"), part_of=res.get("partOf"))}
    text = join(name, res.get("status"), f"on {day(performed)}" if performed else None,
                f"reason: {data['reason']}" if data["reason"] else None)
    return [evidence(r, title=name, text=text, data=data, codes=codes_of(res.get("code")),
                     date=performed)]


def immunization(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    name = cc_text(res.get("vaccineCode")) or "Unnamed vaccine"
    occurrence = when(res, "occurrence")
    data: Json = {"vaccine": name, "cvx": code_in(res.get("vaccineCode"), CVX),
                  "occurrence": occurrence}
    text = join(f"Immunization: {name}", res.get("status"),
                f"on {day(occurrence)}" if occurrence else None)
    return [evidence(r, title=name, text=text, data=data, codes=codes_of(res.get("vaccineCode")),
                     date=occurrence)]


def encounter(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    cls = res.get("class") or {}
    cls_text = cls.get("display") or cls.get("code") if isinstance(cls, dict) else None
    etype = cc_text(res.get("type")) or "Encounter"
    start, end = period_start(res.get("period")), period_end(res.get("period"))
    hosp = res.get("hospitalization") or {}
    disposition = cc_text(hosp.get("dischargeDisposition"))
    data: Json = {"class": cls_text, "type": etype, "start": start, "end": end,
                  "reason": _reasons(res, ctx), "discharge_disposition": disposition,
                  "links": links_of(res, reason=res.get("reasonReference"),
                                    diagnosis=res.get("diagnosis")),
                  "service_provider": ref_display(res.get("serviceProvider")),
                  "location": join(*(ref_display((x or {}).get("location"))
                                     for x in as_list(res.get("location")))) or None}
    span = None
    if start:
        span = f"{day(start)}" + (f" to {day(end)}" if end and day(end) != day(start) else "")
    text = join(f"{etype} ({cls_text})" if cls_text else etype, span,
                f"reason: {data['reason']}" if data["reason"] else None,
                f"discharge: {disposition}" if disposition else None)
    return [evidence(r, title=etype, text=text, data=data,
                     codes=codes_of(res.get("type"), res.get("reasonCode")), date=start)]


def care_plan(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    name = cc_text(res.get("category")) or res.get("title") or "Care plan"
    activities = []
    for a in as_list(res.get("activity")):
        det = (a or {}).get("detail") or {}
        label = cc_text(det.get("code")) or ref_display((a or {}).get("reference"))
        if label:
            activities.append({"activity": label, "status": det.get("status")})
    start, end = period_start(res.get("period")), period_end(res.get("period"))
    addresses = [linked_name(x, ctx, res) for x in as_list(res.get("addresses"))]
    data: Json = {"name": name, "intent": res.get("intent"), "start": start, "end": end,
                  "activities": activities, "addresses": [a for a in addresses if a],
                  "links": links_of(res, addresses=res.get("addresses"),
                                    based_on=res.get("basedOn"))}
    text = join(f"Care plan: {name}", res.get("status"),
                f"since {day(start)}" if start else None,
                f"until {day(end)}" if end else None,
                f"activities: {join(*(a['activity'] for a in activities))}" if activities else None)
    return [evidence(r, title=f"Care plan: {name}", text=text, data=data,
                     codes=codes_of(res.get("category"),
                                    *[((a or {}).get("detail") or {}).get("code")
                                      for a in as_list(res.get("activity"))]),
                     date=start)]


def service_request(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    name = cc_text(res.get("code")) or "Unnamed order"
    cpt = code_in(res.get("code"), CPT)
    data: Json = {"code": name, "cpt": cpt, "snomed": code_in(res.get("code"), SNOMED),
                  "intent": res.get("intent"), "priority": res.get("priority"),
                  "reason": _reasons(res, ctx), "authored_on": res.get("authoredOn"),
                  "links": links_of(res, reason=res.get("reasonReference"),
                                    based_on=res.get("basedOn")),
                  "occurrence": when(res, "occurrence"),
                  "requester": ref_display(res.get("requester"))}
    text = join(f"Order: {name}" + (f" (CPT {cpt})" if cpt else ""), res.get("status"),
                res.get("intent"),
                f"reason: {data['reason']}" if data["reason"] else None,
                f"ordered {day(res['authoredOn'])}" if res.get("authoredOn") else None)
    return [evidence(r, title=name, text=text, data=data, codes=codes_of(res.get("code")),
                     date=res.get("authoredOn") or data["occurrence"])]
