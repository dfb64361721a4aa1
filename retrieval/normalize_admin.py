"""Administrative resources -> Evidence: Patient, Practitioner, Organization, Coverage,
Appointment."""

from __future__ import annotations

from typing import Any

from retrieval.evidence import Evidence
from retrieval.fhir_load import LoadedResource
from retrieval.normalize_common import (
    NPI,
    Context,
    Json,
    as_list,
    cc_text,
    codes_of,
    day,
    evidence,
    join,
    linked_name,
    links_of,
    period_end,
    period_start,
    ref_display,
)

_RACE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-race"
_ETHNICITY = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity"


def human_name(names: Any) -> str | None:
    """The official (else first) HumanName as ``prefix given family``."""
    cands = [n for n in as_list(names) if isinstance(n, dict)]
    if not cands:
        return None
    n = next((x for x in cands if x.get("use") == "official"), cands[0])
    if n.get("text"):
        return str(n["text"])
    return join(*as_list(n.get("prefix")), *as_list(n.get("given")), n.get("family"),
                sep=" ") or None


def _us_core_text(res: Json, url: str) -> str | None:
    for ext in as_list(res.get("extension")):
        if isinstance(ext, dict) and ext.get("url") == url:
            subs = as_list(ext.get("extension"))
            for s in subs:
                if s.get("url") == "text" and s.get("valueString"):
                    return str(s["valueString"])
            for s in subs:
                if s.get("url") == "ombCategory":
                    return (s.get("valueCoding") or {}).get("display")
    return None


def _identifiers(res: Json) -> list[Json]:
    out = []
    for i in as_list(res.get("identifier")):
        if isinstance(i, dict) and i.get("value"):
            type_code = next((c.code for c in codes_of(i.get("type")) if c.code), None)
            out.append({"system": i.get("system"), "type": type_code,
                        "type_text": cc_text(i.get("type")), "value": str(i["value"])})
    return out


def _address(a: Any) -> str | None:
    if not isinstance(a, dict):
        return None
    if a.get("text"):
        return str(a["text"])
    return join(*as_list(a.get("line")), a.get("city"), a.get("state"), a.get("postalCode"),
                a.get("country")) or None


def _phones(res: Json) -> list[str]:
    return [str(t["value"]) for t in as_list(res.get("telecom"))
            if isinstance(t, dict) and t.get("system") == "phone" and t.get("value")]


def patient(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    name = human_name(res.get("name")) or f"Patient {r.id}"
    ids = _identifiers(res)
    data: Json = {
        "status": "active" if res.get("active", True) else "inactive",
        "name": name,
        "names": [human_name([n]) for n in as_list(res.get("name")) if isinstance(n, dict)],
        "birth_date": res.get("birthDate"),
        "gender": res.get("gender"),
        "race": _us_core_text(res, _RACE),
        "ethnicity": _us_core_text(res, _ETHNICITY),
        "deceased": res.get("deceasedDateTime") or res.get("deceasedBoolean"),
        "marital_status": cc_text(res.get("maritalStatus")),
        "language": cc_text([(c or {}).get("language") for c in as_list(res.get("communication"))]),
        "mrn": [i["value"] for i in ids if i["type"] == "MR"],
        "identifiers": ids,
        "phone": _phones(res),
        "address": [a for a in (_address(x) for x in as_list(res.get("address"))) if a],
    }
    died = res.get("deceasedDateTime")
    text = join(name, res.get("gender"),
                f"born {res['birthDate']}" if res.get("birthDate") else None,
                data["race"], data["ethnicity"], f"died {day(died)}" if died else None)
    return [evidence(r, title=name, text=text, data=data, date=res.get("birthDate"))]


def _npi(res: Json) -> str | None:
    return next((i["value"] for i in _identifiers(res) if i["system"] == NPI), None)


def practitioner(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    name = human_name(res.get("name")) or f"Practitioner {r.id}"
    npi = _npi(res)
    data: Json = {"status": "active" if res.get("active", True) else "inactive", "name": name,
                  "npi": npi, "qualification": cc_text([(q or {}).get("code") for q in
                                                        as_list(res.get("qualification"))])}
    return [evidence(r, title=name, text=join(name, f"NPI {npi}" if npi else None), data=data)]


def organization(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    name = res.get("name") or f"Organization {r.id}"
    npi = _npi(res)
    data: Json = {"status": "active" if res.get("active", True) else "inactive", "name": name,
                  "npi": npi, "type": cc_text(res.get("type")), "phone": _phones(res),
                  "address": [a for a in (_address(x) for x in as_list(res.get("address"))) if a]}
    return [evidence(r, title=name, text=join(name, data["type"], f"NPI {npi}" if npi else None),
                     data=data, codes=codes_of(res.get("type")))]


def coverage(r: LoadedResource, ctx: Context) -> list[Evidence]:
    res = r.resource
    payer = join(*(ref_display(p) for p in as_list(res.get("payor")))) or None
    plan = None
    for c in as_list(res.get("class")):
        if isinstance(c, dict) and "plan" in (cc_text(c.get("type")) or "").lower():
            plan = c.get("name") or c.get("value")
    plan = plan or cc_text(res.get("type"))
    member = res.get("subscriberId") or next(
        (i["value"] for i in _identifiers(res) if i["type"] in ("MB", "SN")), None)
    start, end = period_start(res.get("period")), period_end(res.get("period"))
    data: Json = {"payer": payer, "plan": plan, "member_id": member,
                  "relationship": cc_text(res.get("relationship")), "start": start, "end": end,
                  "type": cc_text(res.get("type"))}
    text = join(f"Coverage: {payer or 'unknown payer'}", f"plan {plan}" if plan else None,
                f"member ID {member}" if member else None, res.get("status"),
                f"from {day(start)}" if start else None, f"to {day(end)}" if end else None)
    return [evidence(r, title=f"Coverage: {payer or plan or 'unknown payer'}", text=text,
                     data=data, codes=codes_of(res.get("type")), date=start)]


def appointment(r: LoadedResource, ctx: Context) -> list[Evidence]:
    """A scheduled visit: what, when, with whom, where (follow-up for discharge instructions)."""
    res = r.resource
    kind = (cc_text(res.get("appointmentType")) or cc_text(as_list(res.get("serviceType")))
            or None)
    name = (res.get("description") if isinstance(res.get("description"), str) else None) \
        or kind or "Appointment"
    others = [p for p in as_list(res.get("participant")) if isinstance(p, dict)
              and not str((p.get("actor") or {}).get("reference", "")).startswith("Patient/")]
    with_whom = [ref_display(p.get("actor")) for p in others
                 if not str((p.get("actor") or {}).get("reference", "")).startswith("Location/")]
    where = [ref_display(p.get("actor")) for p in others
             if str((p.get("actor") or {}).get("reference", "")).startswith("Location/")]
    start, end = res.get("start"), res.get("end")
    reason = cc_text(as_list(res.get("reasonCode"))) or join(
        *(linked_name(x, ctx, res) for x in as_list(res.get("reasonReference")))) or None
    data: Json = {"name": name, "status": res.get("status"), "appointment_type": kind,
                  "start": start, "end": end, "with": [w for w in with_whom if w],
                  "location": next((w for w in where if w), None), "reason": reason,
                  "cancelation_reason": cc_text(res.get("cancelationReason")),
                  # the order this visit was booked for: its statement cites both
                  "based_on": [str(b.get("reference")) for b in as_list(res.get("basedOn"))
                               if isinstance(b, dict) and b.get("reference")],
                  "links": links_of(res, reason=res.get("reasonReference"),
                                    based_on=res.get("basedOn"))}
    text = join(f"Appointment: {name}", res.get("status"),
                f"on {day(start)}" if start else None,
                f"with {', '.join(data['with'])}" if data["with"] else None,
                f"at {data['location']}" if data["location"] else None,
                f"reason: {reason}" if reason else None)
    return [evidence(r, title=str(name), text=text, data=data,
                     codes=codes_of(res.get("appointmentType"), *as_list(res.get("serviceType"))),
                     date=start if isinstance(start, str) else None)]
