"""Denials: "no history of X", "never had X", "has no X", "never smoked" against the chart.

A history denial is refuted by any record of the thing denied (a resolved episode too); a
current denial by an active one. A denial that cites a positive record (a Condition, Procedure,
order, vaccine or allergy the patient has) and says nothing else about it cites the record that
refutes it. "Never smoked" is refuted by a smoking status or note that records tobacco use.
Phrases live in data/denials.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

from chartdraft_guardrails.facts import (
    STATUS_ACTIVE,
    EvidenceFacts,
    StatementFacts,
    is_no_allergy_record,
    stem_match,
)
from chartdraft_guardrails.terminology import data_yaml
from retrieval.errors import BadInput

_WHERE = "chartdraft_guardrails/data/denials.yaml"
# Records whose existence says the patient has (or had) the thing: citing one for a denial
# refutes it. Observations are left out: their value decides ("Never smoker").
_POSITIVE = ("Condition", "Procedure", "Immunization", "AllergyIntolerance", "MedicationRequest",
             "MedicationStatement", "MedicationAdministration")  # fmt: skip
_NOT_RECORDED = {"refuted", "entered-in-error"}


@dataclass(frozen=True)
class _Phrases:
    history: re.Pattern[str]
    current: re.Pattern[str]
    tobacco_denial: re.Pattern[str]
    tobacco_use: re.Pattern[str]


def _rx(items: object, key: str) -> re.Pattern[str]:
    if not isinstance(items, list) or not items:
        raise BadInput(f"no phrases for {key!r}", where=f"{_WHERE}: {key}",
                       fix="list regular expressions under it")  # fmt: skip
    return re.compile(r"\b(?:" + "|".join(f"(?:{p})" for p in items) + r")\b", re.I)


@lru_cache(maxsize=1)
def _phrases() -> _Phrases:
    raw = data_yaml("denials.yaml", "denial phrases")
    tob = raw.get("tobacco") or {}
    return _Phrases(
        _rx(raw.get("history"), "history"),
        _rx(raw.get("current"), "current"),
        _rx(tob.get("denial"), "tobacco.denial"),
        _rx(tob.get("refuted_by"), "tobacco.refuted_by"),
    )


def denial_kind(canon: str) -> str | None:
    """"history" (never had it), "current" (does not have it now) or None."""
    p = _phrases()
    if p.history.search(canon):
        return "history"
    if p.current.search(canon):
        return "current"
    return None


def _recorded(c: EvidenceFacts) -> bool:
    v = str(c.evidence.data.get("verification_status") or "").lower()
    return c.status not in _NOT_RECORDED and v not in _NOT_RECORDED


def check_denials(
    facts: StatementFacts,
    negated: set[str],
    cited: list[EvidenceFacts],
    conditions: list[EvidenceFacts],
    smoking: list[EvidenceFacts],
    matches: Callable[[set[str], EvidenceFacts], bool],
) -> list[tuple[str, list[str]]]:
    """(reason, evidence ids) for each record that refutes the statement's denial; a reason
    starting "unsupported: " is a citation that neither backs nor refutes it.

    ``matches(terms, condition)``: does the statement's denied concept name this condition.
    """
    out: list[tuple[str, list[str]]] = []
    p = _phrases()
    if p.tobacco_denial.search(facts.canon):
        for c in [*cited, *smoking]:
            m = p.tobacco_use.search(c.canon)
            if m:
                out.append((f"says never smoked, but {c.evidence.id} records "
                            f"'{m.group(0)}'", [c.evidence.id]))  # fmt: skip
                break
        return out
    kind = denial_kind(facts.canon)
    if kind is None or facts.no_known_allergies:
        return out
    live = (lambda c: _recorded(c)) if kind == "history" else (
        lambda c: _recorded(c) and c.status in STATUS_ACTIVE)  # fmt: skip
    what = "a history of" if kind == "history" else "having"
    neg_terms = {t for t in facts.terms if t in negated}
    seen: set[str] = set()
    if kind == "history" and neg_terms:
        for c in conditions:
            if live(c) and matches(neg_terms, c):
                out.append((f"denies {what} {c.evidence.title}, but {c.evidence.id} records it"
                            f" ({c.status or 'no status'})", [c.evidence.id]))  # fmt: skip
                seen.add(c.evidence.id)
    # the statement's own citation: a positive record it says nothing else about
    affirmed = {t for t in facts.terms if t not in negated} | {
        w for n in facts.drugs for w in n.split() if w not in negated
    }
    for c in cited:
        if c.evidence.id in seen or c.evidence.resource_type not in _POSITIVE:
            continue
        if is_no_allergy_record(c.evidence) or not live(c) or facts.dates or facts.quantities:
            continue
        if any(stem_match(t, c.tokens) for t in affirmed):
            continue  # "no asthma now; her bronchitis ..." affirms something the record says
        if facts.drugs and c.drugs and not set(facts.drugs) & c.drugs:
            continue  # "never needed insulin" citing the metformin order: about another drug
        title, status = c.evidence.title, c.status or "no status"
        if neg_terms and not any(stem_match(t, c.tokens) for t in neg_terms):
            # it denies something else: the citation cannot back the denial, nor refute it
            out.append((f"unsupported: denies {what} {', '.join(sorted(neg_terms))}, but cites "
                        f"{c.evidence.id} ({title})", [c.evidence.id]))  # fmt: skip
            continue
        out.append((f"denies {what} it, but the cited {c.evidence.id} records {title} "
                    f"({status})", [c.evidence.id]))  # fmt: skip
    return out
