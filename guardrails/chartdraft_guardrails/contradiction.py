"""Contradiction check: a statement conflicts with the rest of the chart.

Even when its own citation seems to back it: "no known allergies" while AllergyIntolerance records
exist; a drug given to a patient allergic to it or to its class; a dose that differs from the
active order; "resolved" or "stopped" for something active; "still taking" what was stopped;
denying a condition or drug the chart records as active.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from chartdraft_guardrails import lexicon
from chartdraft_guardrails.dates import supports as date_supports
from chartdraft_guardrails.denials import check_denials
from chartdraft_guardrails.episodes import cited_episode_agrees, clause_terms
from chartdraft_guardrails.facts import (
    STATUS_ACTIVE,
    STATUS_INACTIVE,
    EvidenceFacts,
    StatementFacts,
    drug_names,
    is_no_allergy_record,
    is_term,
    stem_match,
    words,
)
from chartdraft_guardrails.statement import CheckResult
from chartdraft_guardrails.units import same_quantity, unit_key

_ABOUT_ALLERGY = re.compile(
    r"allerg|reaction|rash|hives|anaphyla|intoleran|swelling|avoid|"
    r"do not (?:take|use|give)|don't (?:take|use)|never (?:take|use)"
)
_NEG_SCOPE = re.compile(
    r"\b(?:no|not|denies|denied|never|without|negative for|free of|"
    r"no history of)\b((?:\W+[\w\-]+){1,5})"
)
_REFUTED = {"refuted", "entered-in-error"}
# "No known drug allergies" denies medication allergies only; a peanut allergy does not refute it.
_DRUG_ONLY_NKA = re.compile(
    r"\b(?:no known (?:drug|medication)|nkda|(?:no|any) (?:known )?(?:drug|medication)) allerg|"
    r"\bnkda\b"
)
# A dated or past-tense statement about a dose describes an old order, not the current one.
_STOP_INSTRUCTION = re.compile(r"\b(?:stop (?:taking|using)|do not (?:take|use) any more)\b")
_HISTORY = re.compile(
    r"\b(?:previously|formerly|was (?:prescribed|started|given|on|taking)|"
    r"had been|used to)\b"
)


def allergies(chart: list[EvidenceFacts]) -> list[EvidenceFacts]:
    out = []
    for c in chart:
        if c.evidence.resource_type != "AllergyIntolerance":
            continue
        d = c.evidence.data
        if str(d.get("verification_status") or "").lower() in _REFUTED:
            continue
        if str(d.get("clinical_status") or "active").lower() in {"inactive", "resolved"}:
            continue
        if is_no_allergy_record(c.evidence):  # the record that *supports* "no known allergies"
            continue
        out.append(c)
    return out


def _is_medication_allergy(a: EvidenceFacts) -> bool:
    cats = a.evidence.data.get("category")
    cats = [str(c).lower() for c in cats] if isinstance(cats, list) else [str(cats or "").lower()]
    return not any(cats) or "medication" in cats


def allergy_classes(a: EvidenceFacts) -> tuple[set[str], set[str]]:
    """(generic names, drug classes) an allergy record covers."""
    sub = str(a.evidence.data.get("substance") or a.evidence.title)
    names = drug_names(sub) | a.drugs
    classes: set[str] = set()
    canon = lexicon.canonical(sub)
    for word, cls in lexicon.CLASS_WORDS.items():
        if re.search(r"\b" + re.escape(word) + r"\b", canon):
            classes.add(cls)
    for n in names:
        classes |= lexicon.DRUG_CLASSES.get(n, set())
    return names, classes


def _negated(canon: str) -> set[str]:
    out: set[str] = set()
    for m in _NEG_SCOPE.finditer(canon):
        out |= set(re.findall(r"[a-z][a-z0-9\-']*", m.group(1)))
    return out


def _mass_by_drug(facts: StatementFacts) -> dict[str, list[tuple[str, str]]]:
    """Mass quantities in the statement, each given to the nearest drug named before it."""
    spots = sorted((p, name) for name, ps in facts.drugs.items() for p in ps)
    out: dict[str, list[tuple[str, str]]] = {}
    for q in facts.quantities:
        k = unit_key(q.unit)
        # a day's total ("2,000 mg a day") is checked by support against the order's doses a day
        if not k or k[0] != "mass" or not spots or q.per_day:
            continue
        before = [name for p, name in spots if p <= q.span[0]]
        name = before[-1] if before else spots[0][1]
        out.setdefault(name, []).append((q.text, q.unit or ""))
    return out


def _names_stopped_order(stated: list[tuple[str, str]], orders: list[EvidenceFacts]) -> bool:
    """The statement's dose for a drug is that of one of its stopped orders.

    "metformin 1000 mg ..., active; metformin 500 mg ..., stopped" reports a dose change: the
    500 mg order was stopped, which is true even though a 1000 mg order is active.
    """
    stopped = [c for c in orders if c.status in STATUS_INACTIVE]
    return any(
        same_quantity(t, su, v, u)
        for t, su in stated
        for c in stopped
        for v, u in c.quantities
        if u and (unit_key(u) or ("", 0.0))[0] == "mass"
    )


@lru_cache(maxsize=4096)
def _title_terms(title: str, vocab: frozenset[str]) -> frozenset[str]:
    return frozenset(w for w in words(lexicon.canonical(title)) if is_term(w, vocab))


@dataclass
class _Index:
    chart: list[EvidenceFacts]
    allergy: list[EvidenceFacts]
    meds: list[EvidenceFacts]
    conditions: list[EvidenceFacts]
    smoking: list[EvidenceFacts]  # smoking-status Observations (a "never smoked" denial)


_index: dict[int, _Index] = {}


def _index_of(chart: list[EvidenceFacts]) -> _Index:
    idx = _index.get(id(chart))
    if idx is None or idx.chart is not chart:
        idx = _Index(
            chart,
            allergies(chart),
            [c for c in chart if c.evidence.resource_type.startswith("Medication")],
            [c for c in chart if c.evidence.resource_type == "Condition"],
            [
                c
                for c in chart
                if c.evidence.resource_type == "Observation"
                and (c.evidence.data.get("loinc") == "72166-2" or "smok" in c.evidence.title.lower()
                     )
            ],
        )
        if len(_index) > 8:
            _index.clear()
        _index[id(chart)] = idx
    return idx


def _matches_concept(terms: set[str], e: EvidenceFacts, vocab: frozenset[str]) -> bool:
    """The statement names this condition: one's clinical words contain the other's.

    "asthma" matches "Childhood asthma"; "viral sinusitis" does not match "Chronic sinusitis".
    """
    title = _title_terms(e.evidence.title, vocab)
    if not title or not terms:
        return False
    in_title = all(stem_match(w, title) for w in terms)
    in_statement = all(stem_match(w, terms) for w in title)
    return in_title or in_statement


def check_contradiction(
    facts: StatementFacts,
    chart: list[EvidenceFacts],
    vocab: frozenset[str],
    cited: list[EvidenceFacts] | None = None,
) -> list[CheckResult]:
    """``cited``: the evidence the statement cites (a note it takes a dose from, the episode a
    status claim is about); the rest of the chart is still searched for conflicts."""
    out: list[CheckResult] = []

    def flag(reason: str, ids: list[str]) -> None:
        out.append(
            CheckResult(
                check="contradiction", verdict="contradicted", reason=reason, evidence_ids=ids
            )
        )

    idx = _index_of(chart)
    allergy = idx.allergy
    denied = allergy
    if facts.no_known_allergies and _DRUG_ONLY_NKA.search(facts.canon):
        denied = [a for a in allergy if _is_medication_allergy(a)]
    if facts.no_known_allergies and denied:
        names = ", ".join(
            sorted({str(a.evidence.data.get("substance") or a.evidence.title) for a in denied})[:4]
        )
        flag(
            f"says no known allergies, but the chart records allergies ({names})",
            [a.evidence.id for a in denied],
        )

    negated = _negated(facts.canon)
    about_allergy = bool(_ABOUT_ALLERGY.search(facts.canon))
    if not about_allergy:
        for name in facts.drugs:
            if set(name.split()) <= negated:
                continue
            classes = lexicon.DRUG_CLASSES.get(name, set())
            for a in allergy:
                anames, acls = allergy_classes(a)
                if name in anames:
                    flag(
                        f"names {name}, but the patient is allergic to it ({a.evidence.title})",
                        [a.evidence.id],
                    )
                elif classes & acls:
                    cls = ", ".join(sorted(classes & acls))
                    flag(
                        f"names {name} ({cls}), but the patient is allergic to that class "
                        f"({a.evidence.title})",
                        [a.evidence.id],
                    )

    active_meds = [
        c
        for c in idx.meds
        if c.evidence.resource_type == "MedicationRequest" and c.status in STATUS_ACTIVE
    ]
    for name, stated in _mass_by_drug(facts).items():
        orders = [c for c in active_meds if name in c.drugs]
        # A dated statement about another period, or past tense, describes an old order.
        if facts.dates:
            historical = not any(
                date_supports(d, k) for d in facts.dates for c in orders for k in c.dates
            )
        else:
            historical = bool(_HISTORY.search(facts.canon))
        # "Stop taking tacrolimus 5 mg/mL injection" names the stopped order's strength, which
        # may differ from a still-active order of the same drug; the support check still ties
        # the dose to what the statement cites.
        if not orders or facts.status_claim == "inactive" or historical \
                or _STOP_INSTRUCTION.search(facts.canon):
            continue
        # a dose taken from the note the statement cites is compared with that note (support)
        if _cited_note_says(stated, cited):
            continue
        mass = [
            (v, u)
            for c in orders
            for v, u in c.quantities
            if u and (unit_key(u) or ("", 0.0))[0] == "mass"
        ]
        if mass and not any(same_quantity(t, su, v, u) for t, su in stated for v, u in mass):
            have = ", ".join(sorted({f"{v:g} {u}" for v, u in mass}))
            says = ", ".join(f"{t} {su}" for t, su in stated)
            flag(
                f"gives {name} as {says}, but the active order says {have}",
                [c.evidence.id for c in orders],
            )

    drug_related = {n: [c for c in idx.meds if n in c.drugs] for n in facts.drugs}
    if facts.status_claim == "inactive":
        by_drug = _mass_by_drug(facts)
        for n, rel in drug_related.items():
            act = [c for c in rel if c.status in STATUS_ACTIVE]
            if act and _names_stopped_order(by_drug.get(n, []), rel):
                continue
            if act:
                flag(
                    f"says {n} was stopped, but {act[0].evidence.id} is {act[0].status}",
                    [c.evidence.id for c in act],
                )
        for terms in clause_terms(facts, "inactive"):  # each clause's own concept
            rel = [c for c in idx.conditions if _matches_concept(terms, c, vocab)]
            act = [c for c in rel if c.status in STATUS_ACTIVE]
            # the cited episode is resolved: another, active episode does not refute it
            if act and not drug_related and not cited_episode_agrees(rel, cited, STATUS_INACTIVE):
                flag(
                    f"says {act[0].evidence.title} resolved, but {act[0].evidence.id} is active",
                    [c.evidence.id for c in act],
                )
    elif facts.status_claim == "active" or facts.continued:
        # "Continue warfarin and stop aspirin": only the continued drugs are claimed current
        claimed = (
            drug_related
            if facts.status_claim == "active"
            else {n: rel for n, rel in drug_related.items() if n in facts.continued}
        )
        for n, rel in claimed.items():
            if rel and all(c.status in STATUS_INACTIVE for c in rel):
                flag(
                    f"says {n} is current, but every order for it is stopped or completed "
                    f"({rel[0].evidence.id} is {rel[0].status})",
                    [c.evidence.id for c in rel],
                )
        for terms in clause_terms(facts, "active") if facts.status_claim == "active" else []:
            rel = [c for c in idx.conditions if _matches_concept(terms, c, vocab)]
            if (
                rel
                and not drug_related
                and all(c.status in STATUS_INACTIVE for c in rel)
                and not cited_episode_agrees(rel, cited, STATUS_ACTIVE)
            ):
                flag(
                    f"says {rel[0].evidence.title} is active, but {rel[0].evidence.id} is "
                    f"{rel[0].status}",
                    [c.evidence.id for c in rel],
                )

    if negated and not facts.no_known_allergies:
        for n, rel in drug_related.items():
            act = [c for c in rel if c.status in STATUS_ACTIVE]
            if set(n.split()) <= negated and act:
                flag(
                    f"denies {n}, but {act[0].evidence.id} is an active order",
                    [c.evidence.id for c in act],
                )
        neg_terms = {t for t in facts.terms if t in negated}
        for c in idx.conditions:
            if c.status not in STATUS_ACTIVE:
                continue
            # "Concussion with no loss of consciousness" names the condition, it denies nothing
            quoted = lexicon.canonical(c.evidence.title).split(" (")[0] in facts.canon
            if not quoted and _matches_concept(neg_terms, c, vocab):
                flag(
                    f"denies {c.evidence.title}, but {c.evidence.id} records it as active",
                    [c.evidence.id],
                )
    # "no history of X" / "never had X" / "never smoked": any record of it refutes the denial
    flagged = {i for r in out for i in r.evidence_ids}
    for reason, ids in check_denials(
        facts,
        negated,
        cited or [],
        idx.conditions,
        idx.smoking,
        lambda terms, c: _matches_concept(terms, c, vocab),
    ):
        if reason.startswith("unsupported: "):
            why = reason[len("unsupported: ") :]
            out.append(
                CheckResult(check="denial", verdict="unsupported", reason=why, evidence_ids=ids)
            )
        elif not set(ids) <= flagged:
            flag(reason, ids)
    return out


def _cited_note_says(stated: list[tuple[str, str]], cited: list[EvidenceFacts] | None) -> bool:
    """A cited note (not an order) gives this dose: the statement reports what the note says."""
    return any(
        same_quantity(t, su, v, u)
        for c in cited or []
        if c.evidence.resource_type == "DocumentReference"
        for v, u in c.quantities
        for t, su in stated
    )
