"""Dose arithmetic: a stated dose must agree with the cited order's strength times the count.

"Take 2 tablets (40 mg)" of a 20 mg tablet order is right: 2 x 20 mg = 40 mg. "Lisinopril 40 mg,
take 2 tablets" of the same order is not: a patient reads the 40 mg as the tablet and takes 80 mg.
A mass written right after the drug name ("lisinopril 40 mg"), before a form word ("40 mg
tablets") or with "each" is the strength of one tablet; a mass in parentheses, after "take" or
"total", is the whole dose. Volumes and concentrations work the same way (0.5 mL of 2 mg/mL is
1 mg).
"""

from __future__ import annotations

import re

from chartdraft_guardrails.facts import EvidenceFacts, StatementFacts
from chartdraft_guardrails.numbers import Quantity
from chartdraft_guardrails.units import (
    concentration,
    is_count,
    millilitres,
    same_quantity,
    unit_key,
)

_MED_TYPES = ("MedicationRequest", "MedicationStatement", "Medication", "MedicationAdministration")
_PER_UNIT_AFTER = re.compile(
    r"^\s*(?:\w+\s+){0,2}?(?:tablets?|tabs?|capsules?|caps?|pills?|each|per (?:tablet|capsule|pill"
    r"|puff|dose unit)|a (?:tablet|capsule|pill|puff)|/\s*(?:tablet|capsule|actuat|puff))\b"
)
_TOTAL_BEFORE = re.compile(
    r"(?:\(|\btake|\btaking|\btotal(?: of)?|\bdose of|=|\bequals?|\bwhich is|\bthat is|\bfor)\s*$"
)
_TOTAL_AFTER = re.compile(r"^\s*(?:in total|total|altogether|in all)\b")
_COUNT_AS_TOTAL = re.compile(r"(?:\(|\bas|=|\bwhich is|\bthat is|\bi\.e\.,?)\s*$")
_DRUG_GAP = re.compile(r"^\s*(?:\([^)]*\)\s*)?(?:oral\s+|tablets?\s+|capsules?\s+)?$")


def _strengths(cited: list[EvidenceFacts]) -> list[tuple[EvidenceFacts, float, str]]:
    out = []
    for c in cited:
        if c.evidence.resource_type not in _MED_TYPES:
            continue
        d = c.evidence.data
        sv, su = d.get("strength_value"), d.get("strength_unit")
        if isinstance(sv, int | float) and not isinstance(sv, bool) and isinstance(su, str):
            if su.lower().endswith("/actuat"):
                su = su[: -len("/actuat")]
            k = unit_key(su)
            if k is not None and k[0] in ("mass", "unit", "meq"):
                out.append((c, float(sv), su))
    return out


def _is_mass(q: Quantity) -> bool:
    k = unit_key(q.unit)
    return k is not None and k[0] in ("mass", "unit", "meq")


def _per_unit(q: Quantity, facts: StatementFacts, count: Quantity) -> bool:
    """Is the mass ``q`` read as the strength of one tablet (not the whole dose)?"""
    canon = facts.canon
    before, after = canon[: q.span[0]], canon[q.span[1] :]
    if _TOTAL_BEFORE.search(before) or _TOTAL_AFTER.search(after):
        return False
    if count.span[0] > q.span[1] and _COUNT_AS_TOTAL.search(canon[: count.span[0]]):
        return False  # "lisinopril 40 mg (2 tablets)": the 40 mg is what the 2 tablets make
    if _PER_UNIT_AFTER.search(after):
        return True
    for name, starts in facts.drugs.items():
        for p in starts:
            if p < q.span[0] and _DRUG_GAP.match(canon[p + len(name) : q.span[0]]):
                return True
    return False


def stated_amounts(
    facts: StatementFacts, cited: list[EvidenceFacts]
) -> list[tuple[float, str | None]]:
    """Amounts the statement's counts and volumes make with the cited strengths: "2 tablets"
    of 20 mg is 40 mg; "0.5 mL" of 2 mg/mL is 1 mg (so "take 2 tablets (40 mg)" is supported
    even when the order records only the tablet strength)."""
    out: list[tuple[float, str | None]] = []
    strengths = _strengths(cited)
    concs = [
        (v, c)
        for e in cited
        if e.evidence.resource_type in _MED_TYPES
        for v, u in e.quantities
        if (c := concentration(u))
    ]
    for q in facts.quantities:
        try:
            n = float(q.text)
        except ValueError:
            continue
        if _is_mass(q) and q.per_day:
            out += _daily_amounts(cited)
        if is_count(q.unit):
            out += [(sv * n, su) for _, sv, su in strengths]
        ml = millilitres(n, q.unit)
        if ml is not None:
            out += [(cv * per * ml, unit) for cv, (unit, per) in concs]
    return out


def _daily_amounts(cited: list[EvidenceFacts]) -> list[tuple[float, str | None]]:
    """A day's total of each cited order: each dose amount times the doses a day."""
    out: list[tuple[float, str | None]] = []
    for c in cited:
        if c.evidence.resource_type not in _MED_TYPES:
            continue
        for v, u in c.quantities:
            k = unit_key(u)
            if k is not None and k[0] in ("mass", "unit", "meq"):
                out += [(v * f, u) for f in c.frequencies if f > 1]
    return out


def dose_problems(facts: StatementFacts, cited: list[EvidenceFacts]) -> list[str]:
    """A tablet strength that is not the order's, or a total that is not strength x count."""
    strengths = _strengths(cited)
    counts = [q for q in facts.quantities if is_count(q.unit)]
    if not strengths or not counts:
        return []
    problems: list[str] = []
    for q in facts.quantities:
        if not _is_mass(q) or q.per_day:
            continue
        count = min(counts, key=lambda c: abs(c.span[0] - q.span[0]))
        try:
            n = float(count.text)
        except ValueError:
            continue
        mine = [(c, sv, su) for c, sv, su in strengths if _same_dim(q.unit, su)]
        if not mine:
            continue
        shown = f"{q.text} {q.unit}"
        have = ", ".join(sorted({f"{c.evidence.id} is {sv:g} {su}" for c, sv, su in mine}))
        if _per_unit(q, facts, count):
            if not any(same_quantity(q.text, q.unit, sv, su) for _, sv, su in mine):
                total = float(q.text) * n
                problems.append(
                    f"'{shown}' with {count.text} {count.unit} reads as {count.text} x {shown}"
                    f" = {total:g} {q.unit}, but {have} per {_one(count.unit)}"
                )
        elif not any(
            same_quantity(q.text, q.unit, sv * n, su, q.approx) for _, sv, su in mine
        ) and not any(same_quantity(q.text, q.unit, sv, su) for _, sv, su in mine):
            made = ", ".join(sorted({f"{sv * n:g} {su}" for _, sv, su in mine}))
            problems.append(
                f"{count.text} {count.unit} of {have.split(' is ')[-1]} make {made}, not {shown}"
            )
    return problems


def _one(unit: str | None) -> str:
    u = (unit or "dose").lower()
    return u[:-1] if u.endswith("s") else u


def _same_dim(a: str | None, b: str | None) -> bool:
    ka, kb = unit_key(a), unit_key(b)
    return bool(ka and kb and ka[0] == kb[0])
