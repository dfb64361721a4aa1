"""The extractive composer: a plan's evidence as cited sentences, no model at all.

Used as the fallback when the LLM is down, as the first step of constrained mode (the model only
rephrases these sentences), and as the baseline the eval harness compares against. Every statement
cites the evidence it states, and copies its facts (drug, dose, unit, value, date) exactly; a
section with nothing to say gets one uncited "Not documented in the chart." statement.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date
from typing import Any

from chartdraft_guardrails import patient_voice

from assistant.draft import DraftStatement, Section
from retrieval.dates import date_text, day_of
from retrieval.evidence import Evidence
from retrieval.knowledge import Criterion, Policy, evidence_for_criterion, relevant_docs
from retrieval.normalize_common import fmt_num, unit_text
from retrieval.normalize_meds import soften
from retrieval.plans import (
    ACTIVE_CONDITION,
    ACTIVE_MED,
    PENDING_ORDER,
    STOPPED_MED,
    UPCOMING_APPOINTMENT,
    find_encounter,
)

NOT_DOCUMENTED = "Not documented in the chart."
SECTIONS: dict[str, list[str]] = {
    "summary": ["Active problems", "Medications", "Allergies", "Recent results",
                "Recent encounters and procedures", "Open items"],
    "discharge-instructions": ["Why you were in the hospital", "Your medicines", "Allergies",
                               "Warning signs and when to get help",
                               "Follow-up appointments and pending results", "Diet and activity"],
    # A letter: to the payer, the request, why (a narrative about this service only), the
    # evidence, each criterion met or not, and who orders it.
    "prior-auth": ["To", "Requested service", "Diagnoses", "Clinical justification",
                   "Prior treatments", "Supporting results", "Policy criteria",
                   "Duration requested", "Ordering clinician"],
}
PATIENT_DOCS = ("discharge-instructions",)
DTR_ORIGIN = "http://hl7.org/fhir/us/davinci-dtr/StructureDefinition/information-origin"
_INJECTION = re.compile(r"ignore (all |any )?(previous|prior|above) instructions", re.I)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
_ROUTES = {"oral": "by mouth", "subcutaneous": "as a shot under the skin",
           "inhalation": "with your inhaler", "injection": "as a shot", "nasal": "in your nose",
           "topical": "on your skin", "transdermal": "on your skin"}
# A clinician's summary or a letter to a health plan says it the clinical way.
_CLINICAL_ROUTES = {"oral": "by mouth", "subcutaneous": "subcutaneously",
                    "inhalation": "inhaled", "injection": "by injection", "nasal": "nasally",
                    "topical": "topically", "transdermal": "by transdermal patch"}
_NO_ALLERGY = ("716186003", "409137002", "428607008")
_FOLLOW_UP = ("390906007", "185389009")


def _st(text: str, cites: list[str] | None = None) -> DraftStatement:
    return DraftStatement(text=text, citations=list(dict.fromkeys(cites or [])),
                          origin="extractive")


def _missing() -> DraftStatement:
    return _st(NOT_DOCUMENTED)


def _sentences(text: str) -> list[str]:
    flat = " ".join(text.split())
    return [s for s in _SENTENCE.split(flat) if s and not _INJECTION.search(s)]


def _sentence_with(text: str, words: list[str]) -> str | None:
    """The first sentence of a note unit naming one of ``words`` (never injected text)."""
    body = re.sub(r"^[A-Z][A-Z /&]+:\s*", "", text.strip())
    for s in _sentences(body):
        low = s.lower()
        if any(w and w.lower() in low for w in words):
            return s
    return None


# ---- medicines -------------------------------------------------------------------------------

def drug_name(e: Evidence) -> str:
    """``metformin hydrochloride 500 MG Oral Tablet`` -> ``metformin hydrochloride 500 mg``."""
    soft = soften(str(e.data.get("drug") or e.title))
    m = re.match(r"(.*?\d+(?:\.\d+)?\s*(?:mg|mcg|g|unt/ml|mg/ml)(?:/[a-z]+)?)\s+(.*)$", soft,
                 re.I)
    if m and re.search(r"tablet|capsule", m.group(2), re.I):
        rel = next((w for w in ("extended release", "delayed release") if w in m.group(2).lower()),
                   None)
        return f"{m.group(1)} {rel}" if rel else m.group(1)
    return soft


def _label_name(e: Evidence) -> str:
    """The drug name for a patient: without the package size ("200 actuat Albuterol ...")."""
    return re.sub(r"^\d+\s*actuat\s+", "", drug_name(e), flags=re.I)


def _ingredient(e: Evidence) -> str:
    name = re.sub(r"^\d+\s*actuat\s+", "", str(e.data.get("drug") or e.title).lower())
    return name.split(" ")[0] if name else ""


def _strength(e: Evidence) -> str | None:
    v, u = e.data.get("strength_value"), e.data.get("strength_unit")
    return f"{fmt_num(v)} {u}" if v is not None and u else None


def how_to_take(e: Evidence, *, patient: bool = True) -> str:
    """``1 tablet by mouth twice daily as needed for pain`` from the order's own fields
    (``patient=False``: clinical wording, "2 puffs inhaled" not "with your inhaler")."""
    d = e.data
    parts = []
    if d.get("dose_value") is not None:
        unit = str(d.get("dose_unit") or d.get("dose_form") or "dose")
        n = d["dose_value"]
        plural = "s" if n != 1 and unit in ("tablet", "capsule", "puff", "dose") else ""
        parts.append(f"{fmt_num(n)} {unit}{plural}")
    route = str(d.get("route") or "").lower()
    if route:
        parts.append((_ROUTES if patient else _CLINICAL_ROUTES).get(route, route))
    if d.get("frequency"):
        parts.append(str(d["frequency"]))
    if d.get("as_needed"):
        parts.append(f"as needed for {d['as_needed_for']}" if d.get("as_needed_for")
                     else "as needed")
    if not parts and d.get("dosage_text"):
        return str(d["dosage_text"]).rstrip(".")
    return " ".join(parts)


def classify_meds(meds: list[Evidence], stay: Evidence | None) -> dict[str, list[Any]]:
    """new / changed (new, old) / stopped / continued, for discharge instructions."""
    active = [m for m in meds if m.data.get("status") in ACTIVE_MED]
    stopped = [m for m in meds if m.data.get("status") in STOPPED_MED]
    out: dict[str, list[Any]] = {"new": [], "changed": [], "stopped": [], "continued": []}
    used: set[str] = set()
    # Days, not text: only an order dated to the day can be placed inside the stay.
    start = day_of(stay.data.get("start") or stay.date) if stay else None
    end = day_of(stay.data.get("end")) if stay else None
    for m in sorted(active, key=lambda e: e.title.lower()):
        old = next((s for s in stopped if s.id not in used and _ingredient(s) == _ingredient(m)),
                   None)
        authored = day_of(m.data.get("authored_on") or m.date)
        if old is not None:
            used.add(old.id)
            out["changed"].append((m, old))
        elif stay is not None and (m.data.get("encounter") == stay.id or (
                start and authored and start <= authored <= (end or start))):
            out["new"].append(m)
        else:
            out["continued"].append(m)
    out["stopped"] = [s for s in stopped if s.id not in used]
    return out


def _medicine_statements(meds: list[Evidence], stay: Evidence | None) -> list[DraftStatement]:
    groups = classify_meds(meds, stay)
    out = []
    for m in groups["new"]:
        out.append(_st(f"New medicine: {_label_name(m)}. Take {how_to_take(m)}.", [m.id]))
    for m, old in groups["changed"]:
        was, now = _strength(old), _strength(m)
        change = f" from {was} to {now}" if was and now and was != now else ""
        out.append(_st(f"Changed dose{change}: {_label_name(m)}. Take {how_to_take(m)}.",
                       [m.id, old.id]))
    for m in groups["continued"]:
        out.append(_st(f"Keep taking {_label_name(m)}. Take {how_to_take(m)}.", [m.id]))
    for m in groups["stopped"]:
        out.append(_st(f"Stop taking {_label_name(m)}.", [m.id]))
    return out


# ---- allergies -------------------------------------------------------------------------------

def _is_no_allergy(e: Evidence) -> bool:
    sub = str(e.data.get("substance") or e.title).lower()
    return any(c.code in _NO_ALLERGY for c in e.codes) or sub.startswith("no known")


def _allergy_statements(allergies: list[Evidence], *, patient: bool) -> list[DraftStatement]:
    real = [a for a in allergies if not _is_no_allergy(a)]
    if not real:
        nka = [a for a in allergies if _is_no_allergy(a)]
        if nka:
            text = "You have no known allergies." if patient else "No known allergies."
            return [_st(text, [nka[0].id])]
        return [_missing()]
    out = []
    for a in real:
        sub = str(a.data.get("substance") or a.title)
        reactions = [r for r in a.data.get("reactions") or [] if r.get("manifestation")]
        rx = ", ".join(str(r["manifestation"]).lower() for r in reactions)
        if patient:
            text = f"You are allergic to {sub.lower()}."
            if rx:  # short words around the reaction's name keep the grade down
                what = "this reaction" if len(reactions) == 1 else "these reactions"
                text = f"You are allergic to {sub.lower()}. It gave you {what}: {rx}."
        else:
            crit = a.data.get("criticality")
            text = f"Allergy to {sub}" + (f" (reaction: {rx})" if rx else "") + (
                f", criticality {crit}" if crit else "") + "."
        out.append(_st(text, [a.id]))
    return out


# ---- results ---------------------------------------------------------------------------------

def _value(e: Evidence) -> str | None:
    v, unit = e.data.get("value"), e.data.get("unit")
    if v is None:
        comps = [c for c in e.data.get("components") or [] if c.get("value") is not None]
        if not comps:
            return None
        # Each component as the chart names it (systolic and diastolic, not "120/80").
        return ", ".join(f"{_short(str(c.get('name') or ''))} {fmt_num(c['value'])} "
                         f"{unit_text(c.get('unit'))}".strip() for c in comps)
    shown = fmt_num(round(v, 2)) if isinstance(v, float) else str(v) if isinstance(v, str) \
        else fmt_num(v)
    return f"{shown} {unit_text(unit)}".strip()


def _on(when: str | None) -> str:
    """A result's date as ' on <date>', or nothing when it is undated (never 'on None')."""
    d = date_text(when)
    return f" on {d}" if d else ""


def _short(name: str) -> str:
    return name.split(" [")[0]


def result_statements(obs: list[Evidence], limit: int = 12) -> list[DraftStatement]:
    """One statement per test: latest value and date, and the trend when it was repeated."""
    groups: dict[str, list[Evidence]] = defaultdict(list)
    for o in obs:
        if _value(o) is not None:
            groups[str(o.data.get("loinc") or o.title)].append(o)
    ordered = sorted(groups.values(), key=lambda g: max(x.date or "" for x in g), reverse=True)
    out = []
    for g in ordered[:limit]:
        g.sort(key=lambda x: x.date or "")
        last = g[-1]
        name = _short(last.title)
        text = f"{name}: {_value(last)}{_on(last.date)}"
        if len(g) >= 2:
            first = g[-2]  # the change since the previous value is what a reader acts on
            a, b = first.data.get("value"), last.data.get("value")
            if isinstance(a, (int, float)) and isinstance(b, (int, float)) and a != b:
                trend = "rising" if b > a else "falling"
                text += f", {trend} from {_value(first)}{_on(first.date)}"
        out.append(_st(text + ".", [x.id for x in g]))
    return out


# ---- knowledge -------------------------------------------------------------------------------

def _knowledge_statements(knowledge: list[Evidence], docs: list[str],
                          section_slugs: tuple[str, ...]) -> list[DraftStatement]:
    out: list[DraftStatement] = []
    for doc in docs[:2]:  # the two best-matched documents; more would bury the message
        for k in knowledge:
            if k.data.get("doc") == doc and k.id.split("#", 1)[-1] in section_slugs:
                out.extend(_st(s, [k.id]) for s in _sentences(k.text))
    return out


# ---- documents -------------------------------------------------------------------------------

def _split(evidence: list[Evidence], patient_id: str) -> tuple[list[Evidence], list[Evidence]]:
    chart = [e for e in evidence if e.kind == "chart" and e.patient_id == patient_id
             and e.data.get("status") != "entered-in-error"]
    return chart, [e for e in evidence if e.kind == "knowledge"]


def _of(chart: list[Evidence], *types: str) -> list[Evidence]:
    return [e for e in chart if e.resource_type in types]


def _order_statement(e: Evidence, *, patient: bool) -> DraftStatement:
    name = str(e.data.get("code") or e.title)
    when = date_text(e.data.get("occurrence"))
    codes = {c.code for c in e.codes}
    if codes & set(_FOLLOW_UP) or "follow-up" in name.lower():
        text = f"Follow-up: {name}" + (f" on {when}." if when else ".")
        if patient:
            text = (f"Your next visit is on {when}. " if when else "") + \
                f"It is a {name.lower()}."
        return _st(text, [e.id])
    if any(c.system == "http://loinc.org" for c in e.codes):
        text = f"Pending test: {_short(name)}" + (f" on {when}." if when else ".")
        if patient:
            text = f"You need a blood test ({_short(name)})" + (f" on {when}." if when else ".") \
                + " We will tell you the result."
        return _st(text, [e.id])
    status = e.data.get("status")
    if patient and status == "draft":
        return _st(f"Your doctor ordered {name}. It is waiting for approval from your health "
                   "plan.", [e.id])
    return _st(f"Pending order: {name} ({status}"
               + (f", ordered {d}" if (d := date_text(e.data.get("authored_on"))) else "")
               + ").", [e.id])


def _appointments(chart: list[Evidence]) -> list[Evidence]:
    """Scheduled visits (booked, proposed, pending), earliest first."""
    upcoming = [a for a in _of(chart, "Appointment")
                if a.data.get("status") in UPCOMING_APPOINTMENT]
    return sorted(upcoming, key=lambda e: e.date or "")


def _booked_orders(appointments: list[Evidence]) -> set[str]:
    """Orders an appointment was booked for: the appointment's statement speaks for them."""
    return {ref for a in appointments for ref in a.data.get("based_on") or []}


def _appointment_statement(e: Evidence, chart: list[Evidence], *,
                           patient: bool) -> DraftStatement:
    name = str(e.data.get("name") or e.title)
    when = date_text(e.data.get("start"))
    who = ", ".join(e.data.get("with") or [])
    where = e.data.get("location")
    place = (f" with {who}" if who else "") + (f" at {where}" if where else "")
    if patient:
        text = "You have an appointment" + (f" on {when}" if when else "") + place + \
            f". It is a {name.lower()}."
    else:
        text = f"Appointment: {name} ({e.data.get('status')}" + (f", {when}" if when else "") \
            + ")" + place + "."
    ids = {c.id for c in chart}
    return _st(text, [e.id, *(r for r in e.data.get("based_on") or [] if r in ids)])


def _summary(chart: list[Evidence]) -> dict[str, list[DraftStatement]]:
    out: dict[str, list[DraftStatement]] = {}
    conds = [c for c in _of(chart, "Condition") if c.data.get("status") in ACTIVE_CONDITION]
    out["Active problems"] = [_st(_condition_text(c), [c.id])
                              for c in sorted(conds, key=lambda e: e.date or "", reverse=True)]
    meds = [m for m in _of(chart, "MedicationRequest") if m.data.get("status") in ACTIVE_MED]
    out["Medications"] = [
        _st(f"{drug_name(m)}: {how_to_take(m, patient=False)}"
            + (f", active since {d}" if (d := date_text(m.data.get("authored_on"))) else "")
            + ".", [m.id])
        for m in sorted(meds, key=lambda e: e.title.lower())]
    out["Allergies"] = _allergy_statements(_of(chart, "AllergyIntolerance"), patient=False)
    out["Recent results"] = result_statements(_of(chart, "Observation"))
    encs = sorted(_of(chart, "Encounter"), key=lambda e: e.date or "", reverse=True)[:5]
    procs = sorted(_of(chart, "Procedure"), key=lambda e: e.date or "", reverse=True)[:5]
    out["Recent encounters and procedures"] = [_st(e.text.rstrip(".") + ".", [e.id])
                                               for e in encs + procs]
    orders = [o for o in _of(chart, "ServiceRequest") if o.data.get("status") in PENDING_ORDER]
    drafts = [m for m in _of(chart, "MedicationRequest") if m.data.get("status") == "draft"]
    appts = _appointments(chart)
    out["Open items"] = [_appointment_statement(a, chart, patient=False) for a in appts] + [
        _order_statement(o, patient=False) for o in orders
        if o.id not in _booked_orders(appts)] + [
        _st(f"Pending order: {drug_name(m)}, {how_to_take(m, patient=False)} (draft).", [m.id])
        for m in drafts]
    return out


def _condition_text(c: Evidence) -> str:
    name = str(c.data.get("name") or c.title)
    icd = (c.data.get("icd10") or [None])[0]
    onset = date_text(c.data.get("onset"))
    return name + (f" (ICD-10 {icd})" if icd else "") + (f", since {onset}" if onset else "") + "."


def _discharge(chart: list[Evidence], knowledge: list[Evidence],
               encounter_id: str | None) -> dict[str, list[DraftStatement]]:
    out: dict[str, list[DraftStatement]] = {}
    stay = find_encounter(chart, encounter_id)
    why: list[DraftStatement] = []
    if stay is not None:
        start, end = date_text(stay.data.get("start")), date_text(stay.data.get("end"))
        reason = stay.data.get("reason")
        # Short sentences: discharge instructions aim at a 6th-grade reading level.
        text = "You were in the hospital" + (f" from {start}" if start else "") + (
            f" to {end}" if end and end != start else "") + "." + (
            f" You were treated for {str(reason).lower()}." if reason else "")
        why.append(_st(text, [stay.id]))
        for p in _of(chart, "Procedure"):
            when = date_text(p.data.get("performed"))
            # Two short sentences read easier than one with a trailing date.
            why.append(_st(f"You had this done: {str(p.data.get('name')).lower()}."
                           + (f" It was on {when}." if when else ""), [p.id]))
    out["Why you were in the hospital"] = why
    out["Your medicines"] = _medicine_statements(_of(chart, "MedicationRequest"), stay)
    out["Allergies"] = _allergy_statements(_of(chart, "AllergyIntolerance"), patient=True)
    docs = relevant_docs(knowledge, chart)
    out["Warning signs and when to get help"] = _knowledge_statements(
        knowledge, docs, ("warning-signs",))
    orders = [o for o in _of(chart, "ServiceRequest") if o.data.get("status") in PENDING_ORDER]
    appts = _appointments(chart)
    out["Follow-up appointments and pending results"] = [
        _appointment_statement(a, chart, patient=True) for a in appts] + [
        _order_statement(o, patient=True) for o in sorted(orders, key=lambda e: e.date or "")
        if o.id not in _booked_orders(appts)]
    out["Diet and activity"] = _knowledge_statements(knowledge, docs, ("diet", "activity"))
    return out


def find_order(chart: list[Evidence], order_id: str | None,
               policy: Policy | None) -> Evidence | None:
    orders = [e for e in chart if e.resource_type in ("ServiceRequest", "MedicationRequest")]
    if order_id:
        return next((e for e in orders if e.id == order_id or e.id.split("/", 1)[-1] == order_id),
                    None)
    covered = [e for e in orders if policy is not None and e.data.get("status") in PENDING_ORDER
               and any(policy.applies_to_code(c.system, c.code) for c in e.codes)]
    return max(covered, key=lambda e: e.date or "", default=None)


def _criterion_statement(n: int, c: Criterion, chart: list[Evidence],
                         today: date, passage: str | None = None) -> DraftStatement:
    hits = sorted(evidence_for_criterion(c, chart, today=today), key=lambda e: e.date or "",
                  reverse=True)[:3]
    if not hits:
        return _st(f"Criterion {n} ({c.id}): not met. {NOT_DOCUMENTED}")
    words = c.needs.keywords
    parts = []
    for e in hits:
        if e.resource_type == "DocumentReference":
            s = _sentence_with(e.text, words)
            parts.append(s.rstrip(".") if s else e.title)
        else:
            parts.append(e.text.rstrip("."))
    # What the policy requires, cited to its passage, then where the chart shows it.
    required = f"The policy requires: {c.text.rstrip('.')}. " if passage else ""
    return _st(f"Criterion {n} ({c.id}): met. {required}The chart shows: " + "; ".join(parts)
               + ".", ([passage] if passage else []) + [e.id for e in hits])


def _names(e: Evidence) -> list[str]:
    return [n.lower() for n in (e.data.get("name"), e.data.get("drug"), e.title) if n]


def relevant_to_order(e: Evidence, order: Evidence | None, criteria_ids: set[str],
                      relevant_conditions: set[str] | frozenset[str] = frozenset()) -> bool:
    """The relevance rule of a prior-auth letter: a record belongs in it when the order links it
    as its reason (reasonReference), the order's reason names it (reasonCode text), a policy
    criterion cites it, or its own reason is one of the relevant conditions. Anything else
    (other diagnoses, other results) is about another problem and stays out of the letter."""
    if order is None:
        return True
    if e.id in criteria_ids:
        return True
    links = order.data.get("links") or {}
    if e.id in (links.get("reason") or []):
        return True
    reasons = [r.strip().lower() for r in str(order.data.get("reason") or "").split(",")
               if r.strip()]
    if e.resource_type == "Condition" and any(
            r == n or r in n or n in r for r in reasons for n in _names(e)):
        return True
    own = (e.data.get("links") or {}).get("reason") or []
    return any(r in relevant_conditions for r in own)


def _prior_auth(chart: list[Evidence], knowledge: list[Evidence], order_id: str | None,
                policy: Policy | None, today: date) -> dict[str, list[DraftStatement]]:
    out: dict[str, list[DraftStatement]] = {}
    order = find_order(chart, order_id, policy)
    kb_ids = {k.id for k in knowledge}
    crit_passage = policy.passage_id("criteria") if policy is not None else None
    if crit_passage not in kb_ids:
        crit_passage = None
    hits_by = {c.id: evidence_for_criterion(c, chart, today=today)
               for c in (policy.criteria if policy else [])}
    criteria_ids = {e.id for hs in hits_by.values() for e in hs}
    if policy is not None and crit_passage:
        out["To"] = [_st(f"To: {policy.payer}, prior authorization review.", [crit_passage])]
    if order is not None:
        codes = ", ".join(f"{_system_name(c.system)} {c.code}" for c in order.codes if c.code)
        name = drug_name(order) if order.resource_type == "MedicationRequest" else str(
            order.data.get("code") or order.title)
        text = f"Requested: {name}" + (f" ({codes})" if codes else "")
        if order.resource_type == "MedicationRequest":
            text += f", {how_to_take(order, patient=False)}"
        authored = date_text(order.data.get("authored_on") or order.date)
        out["Requested service"] = [_st(text + (f", ordered {authored}." if authored else "."),
                                        [order.id])]
    conds = sorted(_of(chart, "Condition"), key=lambda e: (e.data.get("status") not in
                                                            ACTIVE_CONDITION, e.date or ""))
    active = [c for c in conds if c.data.get("status") in ACTIVE_CONDITION]
    conds = [c for c in active if relevant_to_order(c, order, criteria_ids)]
    # A note sentence naming another problem ("history of asthma, low back pain who presents
    # with belly pain") is about that problem, not this request.
    other = [n for c in active if c not in conds for n in _names(c)[:1]]
    rel_conds = {c.id for c in conds}
    out["Diagnoses"] = [_st(_condition_text(c), [c.id]) for c in conds]
    names = [str(c.data.get("name") or "").lower() for c in conds]
    reason = str(order.data.get("reason") or "") if order is not None else ""
    # The narrative: the condition the service is for and how long, then what the notes say
    # about it (the conservative care tried, the findings) -- this request only.
    justification = []
    if order is not None and reason:
        justification.append(_st(f"The order is for {reason.lower()}.", [order.id]))
    for c in conds:
        onset = date_text(c.data.get("onset"))
        if onset:
            justification.append(_st(f"{c.data.get('name') or c.title} is documented since "
                                     f"{onset}.", [c.id]))
    words = [reason.lower(), *names] if reason else names
    words += [k for c in (policy.criteria if policy else []) for k in c.needs.keywords]
    for note in sorted(_of(chart, "DocumentReference"), key=lambda e: e.date or "",
                       reverse=True):
        for s in _sentences(re.sub(r"^[A-Z][A-Z /&]+:\s*", "", note.text.strip())):
            low = s.lower()
            if re.match(r"(Stopped|Started|Active|Discontinued)\s+[A-Z]", s):
                continue  # a note's medicine-list line: "Prior treatments" states it, cited
            if any(w and w.lower() in low for w in words) and not any(
                    o in low for o in other) and all(s != j.text for j in justification):
                justification.append(_st(s, [note.id]))
        if len(justification) >= 6:
            break
    out["Clinical justification"] = justification[:6]
    groups = classify_meds(_of(chart, "MedicationRequest"), None)
    # A dose change is not a treatment that was tried and given up.
    tried = [m for m in groups["stopped"]
             if relevant_to_order(m, order, criteria_ids, rel_conds)]
    prior = [_st(f"Tried {drug_name(m)}"
                 + (f", ordered {d}" if (d := date_text(m.data.get("authored_on"))) else "")
                 + f"; now {m.data.get('status')}.", [m.id]) for m in tried]
    therapy = [p for p in _of(chart, "Procedure")
               if re.search(r"therapy|injection|brace", p.title, re.I)
               and relevant_to_order(p, order, criteria_ids, rel_conds)]
    prior += [_st(p.text.rstrip(".") + ".", [p.id]) for p in therapy]
    out["Prior treatments"] = prior
    # Results the criteria or the order's reason point at; other results are another problem's.
    obs = [o for o in _of(chart, "Observation")
           if relevant_to_order(o, order, criteria_ids, rel_conds)]
    out["Supporting results"] = result_statements(obs, limit=8)
    if policy is not None:
        out["Policy criteria"] = [_criterion_statement(i, c, chart, today, crit_passage)
                                  for i, c in enumerate(policy.criteria, 1)]
        kb_dur = next((k.id for k in knowledge if k.data.get("doc") == policy.id
                       and "duration" in k.id), None)
        # Stated only with its policy passage to cite; otherwise the section reports the gap.
        if policy.duration and kb_dur:
            out["Duration requested"] = [_st(f"Requested duration: {policy.duration}.",
                                             [kb_dur])]
    who = order.data.get("requester") if order is not None else None
    doctor = next((e for e in chart if e.id == who), None)  # a reference: the chart names them
    cites = [order.id] if order is not None else []
    if doctor is not None:
        who, cites = doctor.title, [*cites, doctor.id]
    # A bare reference is no name to sign: the section then reports the gap.
    if order is not None and who and "/" not in str(who):
        authored = date_text(order.data.get("authored_on") or order.date)
        out["Ordering clinician"] = [_st(f"Signed: {who}, ordering clinician"
                                         + (f", {authored}." if authored else "."), cites)]
    return out


def _system_name(system: str | None) -> str:
    s = system or ""
    for key, label in (("cpt", "CPT"), ("rxnorm", "RxNorm"), ("snomed", "SNOMED CT"),
                       ("loinc", "LOINC"), ("icd-10", "ICD-10")):
        if key in s:
            return label
    return "code"


def compose(doc_type: str, evidence: list[Evidence], *, required: set[str], patient_id: str,
            order_id: str | None = None, policy: Policy | None = None,
            today: date | None = None, encounter_id: str | None = None) -> list[Section]:
    """The document's sections, in template order, from ``evidence`` alone.

    Every id in ``required`` that is among ``evidence`` is stated somewhere (the omission check
    holds the model to the same rule); ids outside ``evidence`` are never cited.
    """
    if doc_type not in SECTIONS:
        from retrieval.errors import BadInput

        raise BadInput(f"unknown document type {doc_type!r}", where="doc_type",
                       fix=f"use one of: {', '.join(SECTIONS)}")
    today = today or date.today()
    chart, knowledge = _split(evidence, patient_id)
    if doc_type == "summary":
        body = _summary(chart)
    elif doc_type == "discharge-instructions":
        body = _discharge(chart, knowledge, encounter_id)
    else:
        body = _prior_auth(chart, knowledge, order_id, policy, today)
    _state_required(doc_type, body, chart, required)
    if doc_type in PATIENT_DOCS:  # the patient reads these: their wording, same facts
        for sts in body.values():
            for st in sts:
                st.text = patient_voice.rewrite(st.text)
    return [Section(title=t, statements=body.get(t) or [_missing()]) for t in SECTIONS[doc_type]]


def _state_required(doc_type: str, body: dict[str, list[DraftStatement]],
                    chart: list[Evidence], required: set[str]) -> None:
    """Anything required but not yet cited is stated in the section it belongs to."""
    cited = {c for sts in body.values() for s in sts for c in s.citations}
    for e in chart:
        if e.id not in required or e.id in cited:
            continue
        if e.resource_type == "AllergyIntolerance":
            title = "Allergies"
        elif e.resource_type == "MedicationRequest":
            title = {"summary": "Medications", "discharge-instructions": "Your medicines"}.get(
                doc_type, "Prior treatments")
        elif e.resource_type == "Condition":
            title = "Diagnoses" if doc_type == "prior-auth" else "Active problems"
        else:
            title = {"summary": "Open items", "discharge-instructions":
                     "Follow-up appointments and pending results"}.get(doc_type,
                                                                        "Supporting results")
        if title not in SECTIONS[doc_type]:
            continue
        body.setdefault(title, []).append(_st(e.text.rstrip(".") + ".", [e.id]))


# ---- Da Vinci DTR QuestionnaireResponse ------------------------------------------------------

def _origin(st: DraftStatement) -> dict[str, Any]:
    """DTR information-origin: auto (from the chart), override (edited), manual (typed in)."""
    source = ("override" if st.citations else "manual") if st.origin == "clinician" else "auto"
    return {"url": DTR_ORIGIN, "extension": [{"url": "source", "valueCode": source}]}


def prior_auth_questionnaire_response(draft_sections: list[Section], policy: Policy,
                                      patient_id: str) -> dict[str, Any]:
    """A FHIR R4 QuestionnaireResponse answering each of the policy's criteria from the draft."""
    by_title = {s.title: s.statements for s in draft_sections}
    criteria_sts = by_title.get("Policy criteria", [])
    items: list[dict[str, Any]] = []
    for i, c in enumerate(policy.criteria, 1):
        st = next((s for s in criteria_sts if s.text.startswith(f"Criterion {i} ")), None)
        if st is None:
            continue
        met = bool(st.citations) and NOT_DOCUMENTED not in st.text
        items.append({"linkId": c.id, "text": c.text,
                      "answer": [{"valueBoolean": met, "extension": [_origin(st)]}]})
        items.append({"linkId": f"{c.id}-evidence", "text": f"Evidence for: {c.text}",
                      "answer": [{"valueString": st.text, "extension": [_origin(st)]}]})
    for title, link in (("Requested service", "requested-service"),
                        ("Duration requested", "duration")):
        sts = [s for s in by_title.get(title, []) if s.text != NOT_DOCUMENTED]
        if sts:
            items.append({"linkId": link, "text": title,
                          "answer": [{"valueString": s.text, "extension": [_origin(s)]}
                                     for s in sts[:1]]})
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"https://chartdraft.example/fhir/Questionnaire/{policy.id}",
        "status": "in-progress",
        "subject": {"reference": patient_id if "/" in patient_id else f"Patient/{patient_id}"},
        "item": items,
    }
