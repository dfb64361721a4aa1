"""Support check: every clinical fact in a statement is found in the evidence it cites.

Rule-based: dates at the precision written, numbers with units after conversion and rounding,
drug names (brand -> generic), clinical terms, frequency, route, as-needed and status claims.
"""

from __future__ import annotations

import re
from datetime import date

from chartdraft_guardrails.concepts import check_terms
from chartdraft_guardrails.counts import count_problems
from chartdraft_guardrails.dates import DateFact, parse_iso
from chartdraft_guardrails.dates import supports as date_supports
from chartdraft_guardrails.dose_arithmetic import dose_problems, stated_amounts
from chartdraft_guardrails.facts import (
    _REF_CUE,
    STATUS_ACTIVE,
    STATUS_INACTIVE,
    EvidenceFacts,
    StatementFacts,
    stem_match,
)
from chartdraft_guardrails.instructions import check_instructions
from chartdraft_guardrails.numbers import Quantity
from chartdraft_guardrails.statement import CheckResult
from chartdraft_guardrails.units import same_quantity

_STATUS_TYPES = {
    "Condition",
    "MedicationRequest",
    "MedicationStatement",
    "AllergyIntolerance",
    "CarePlan",
    "ServiceRequest",
    "Procedure",
    "Immunization",
}
_NEG_SCOPE = re.compile(
    r"\b(?:no|not|denies|denied|never|without|negative for|free of)\b((?:\W+\w+){1,6})"
)


def _ids(cited: list[EvidenceFacts]) -> str:
    ids = [c.evidence.id for c in cited]
    return ", ".join(ids[:3]) + (f" (+{len(ids) - 3})" if len(ids) > 3 else "")


def _negated_words(canon: str) -> set[str]:
    out: set[str] = set()
    for m in _NEG_SCOPE.finditer(canon):
        out |= set(re.findall(r"[a-z][a-z0-9\-']*", m.group(1)))
    return out


def _fmt_freq(v: float) -> str:
    return {
        1.0: "once daily",
        2.0: "twice daily",
        3.0: "three times daily",
        4.0: "four times daily",
    }.get(v, f"{v:g} times a day")


def check_support(
    facts: StatementFacts, cited: list[EvidenceFacts], birth_date: str | None = None
) -> list[CheckResult]:
    """``birth_date``: the patient's (ISO), so an age ("when she was 46") can be checked even
    when the Patient is not cited."""
    if not cited:
        return []
    where = _ids(cited)
    ids = [c.evidence.id for c in cited]
    problems: list[str] = []
    unverified: list[str] = []

    known_dates = [d for c in cited for d in c.dates]
    birth = birth_of(cited, birth_date) if any(d.age for d in facts.dates) else None
    for d in facts.dates:
        if d.duration is not None:
            problems += duration_problems(d, cited, where)
            continue
        if not any(date_supports(d, k, birth) for k in known_dates):
            if d.age is not None and birth is None and not any(k.age for k in known_dates):
                unverified.append(f"{d.text!r} ({d.iso()}) could not be checked: no birth date")
                continue
            have = sorted({k.iso()[:10] for k in known_dates if k.year and not k.windows})[:3]
            problems.append(
                f"date {d.text!r} ({d.iso()}) is not in {where}"
                + (f" (it has {', '.join(have)})" if have else "")
                + (f"; born {birth.isoformat()}" if d.age is not None and birth else "")
            )

    known_q = [q for c in cited for q in c.quantities]
    if _REF_CUE.search(facts.canon):  # "within the normal range (12-16 g/dL)"
        known_q += [q for c in cited for q in c.ref_quantities]
    known_q += stated_amounts(facts, cited)  # "2 tablets (40 mg)" of 20 mg tablets
    for q in facts.quantities:
        if not any(same_quantity(q.text, q.unit, v, u, _approx(q, u)) for v, u in known_q):
            shown = q.text + (f" {q.unit}" if q.unit else "")
            have = sorted(
                {
                    f"{v:g}" + (f" {u}" if u else "")
                    for v, u in known_q
                    if q.unit is None or u is None or _same_dim(q.unit, u)
                }
            )[:3]
            problems.append(
                f"value {shown!r} is not in {where}"
                + (f" (it has {', '.join(have)})" if have else "")
            )

    problems += dose_problems(facts, cited)
    problems += count_problems(facts, cited)  # "two doses", "three weeks apart"

    known_codes: set[tuple[str | None, str]] = set().union(*(c.codes for c in cited))
    for cm in facts.codes:
        if not any(
            code == cm.code and (cm.system is None or system in (None, cm.system))
            for system, code in known_codes
        ):
            have = sorted(
                f"{(s or 'code').upper()} {c}"
                for s, c in known_codes
                if cm.system is None or s in (None, cm.system)
            )[:3]
            problems.append(
                f"code {cm.shown()!r} is not among the codes of {where}"
                + (f" (it has {', '.join(have)})" if have else "")
            )

    tokens = set().union(*(c.tokens for c in cited))
    drugs = set().union(*(c.drugs for c in cited))
    negated = _negated_words(facts.canon)
    for name in facts.drugs:
        if name in drugs or all(stem_match(w, tokens) for w in name.split()):
            continue
        if set(name.split()) <= negated:
            continue
        problems.append(f"drug {name!r} is not in {where}")
    # clinical mentions as concepts (lay terms, classes, brands); unknown terms: not_verified
    for verdict, why in check_terms(facts, cited, where, negated):
        (unverified if verdict == "not_verified" else problems).append(why)

    meds = [c for c in cited if c.evidence.resource_type.startswith("Medication")]
    if facts.drugs and meds:
        freqs = set().union(*(c.frequencies for c in meds))
        stated = {f for f in facts.frequencies if f > 0}
        if stated and not stated <= freqs:
            hf = ", ".join(sorted(_fmt_freq(f) for f in freqs)) or "no frequency"
            problems.append(
                f"frequency {', '.join(_fmt_freq(f) for f in sorted(stated))} is not "
                f"what {where} says ({hf})"
            )
        rts = set().union(*(c.routes for c in meds))
        if facts.routes and rts and not facts.routes & rts:
            problems.append(
                f"route {', '.join(sorted(facts.routes))} differs from {where} "
                f"({', '.join(sorted(rts))})"
            )
        if facts.as_needed and all(c.as_needed is False for c in meds):
            problems.append(f"'as needed' but {where} is a scheduled order")
    if meds:
        # timing, food and duration words must be in the order's instruction (the citation
        # names the drug when the sentence does not: "Use the auto-injector ...")
        problems += check_instructions(facts.text, True, [c.evidence for c in meds])
    plans = [c for c in cited if c.evidence.resource_type in ("CarePlan", "ServiceRequest")]
    if plans and not (facts.drugs and meds):
        # "ice packs twice a day", "rest for two weeks": the plan must say so
        problems += check_instructions(facts.text, False, [c.evidence for c in plans])
        stated = {f for f in facts.frequencies if f > 0}
        freqs = set().union(*(c.frequencies for c in plans))
        if stated and not stated <= freqs:
            problems.append(
                f"frequency {', '.join(_fmt_freq(f) for f in sorted(stated))} is not in {where}"
            )

    if facts.status_claim:
        bearing = [c for c in cited if c.evidence.resource_type in _STATUS_TYPES and c.status]
        wanted = STATUS_ACTIVE if facts.status_claim == "active" else STATUS_INACTIVE
        if not bearing:
            problems.append(
                f"claims the status {facts.status_claim!r} but {where} records no status"
            )
        elif not any(c.status in wanted for c in bearing):
            st = ", ".join(sorted({f"{c.evidence.id} is {c.status}" for c in bearing}))
            problems.append(f"claims the status {facts.status_claim!r} but {st}")

    if not problems and not unverified:
        return [
            CheckResult(
                check="support",
                verdict="supported",
                reason=f"every fact found in {where}",
                evidence_ids=ids,
            )
        ]
    return [
        CheckResult(check="support", verdict="unsupported", reason=p, evidence_ids=ids)
        for p in problems
    ] + [
        CheckResult(check="support", verdict="not_verified", reason=p, evidence_ids=ids)
        for p in unverified
    ]


_SPANS = (("onset", "abatement"), ("start", "end"), ("performed", "performed_end"))


def duration_problems(d: DateFact, cited: list[EvidenceFacts], where: str) -> list[str]:
    """A stated length of time ("in about 10 days") against the cited start and end."""
    assert d.duration is not None
    lengths: list[int] = []
    for c in cited:
        for a, b in _SPANS:
            pa, pb = parse_iso(c.evidence.data.get(a)), parse_iso(c.evidence.data.get(b))
            if pa and pb and pa.month and pb.month and pa.day and pb.day:
                lengths.append((date(pb.year, pb.month, pb.day)
                                - date(pa.year, pa.month, pa.day)).days)  # fmt: skip
    lo, hi = d.duration
    if any(lo <= n <= hi for n in lengths):
        return []
    have = ", ".join(f"{n} days" for n in sorted(set(lengths))[:3])
    return [f"{d.text!r} ({d.iso()}) is not how long {where} lasted"
            + (f" (it lasted {have})" if have else " (it records no start and end)")]


def birth_of(cited: list[EvidenceFacts], birth_date: str | None) -> date | None:
    """The patient's birth date: given, or a cited Patient's."""
    values = [birth_date] + [
        c.evidence.data.get("birth_date") for c in cited if c.evidence.resource_type == "Patient"
    ]
    for v in values:
        p = parse_iso(v)
        if p and p.month and p.day:
            return date(p.year, p.month, p.day)
    return None


def _same_dim(a: str, b: str) -> bool:
    from chartdraft_guardrails.units import unit_key

    ka, kb = unit_key(a), unit_key(b)
    return bool(ka and kb and ka[0] == kb[0])


def _approx(q: Quantity, unit: str | None) -> str | None:
    """The approximation a stated number may use against a chart value in ``unit``.

    "about 31" widens around any value; a bound ("under 7 %", "over 140/90") only holds against
    a value of the same dimension: "over 2" alone would be satisfied by any larger number.
    """
    if q.approx in (None, "about", "near_below", "just_below", "just_above"):
        return q.approx
    return q.approx if q.unit and unit and _same_dim(q.unit, unit) else None
