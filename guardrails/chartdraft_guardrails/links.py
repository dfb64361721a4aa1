"""Purpose and causal claims checked against the chart's FHIR links.

"Keep taking allopurinol for your gout" is supported only when the cited order's reason
(``reasonCode`` text, ``reasonReference``: ``data["reason"]`` and ``data["links"]``, see
``retrieval.normalize``) carries gout; "your kidney disease is due to diabetes" only when the
chart ties the two (one record names both, or ``Condition.evidence`` links them). A purpose the
chart links elsewhere or to nothing is ``unsupported`` and says what the chart links; a supported
claim records the link it used ("reason: Condition/x (Gout)").
"""

from __future__ import annotations

import re
from collections.abc import Callable

from chartdraft_guardrails import lexicon
from chartdraft_guardrails.concepts import (
    TESTED_FOR,
    clinical_words,
    closure,
    covers,
    evidence_concepts,
    mentions,
)
from chartdraft_guardrails.facts import EvidenceFacts, StatementFacts
from chartdraft_guardrails.statement import CheckResult, Verdict
from retrieval.evidence import Evidence

_PURPOSE = re.compile(
    r"\b(?:for|to (?:treat|prevent|control|manage|help(?: with)?|lower|reduce)|treats?|treated for|"
    r"started for|prescribed for|given for|ordered for|because of|"
    r"to (?:evaluate|assess|investigate|work up|diagnose))\b"
)
_CAUSE = re.compile(r"\b(?:due to|caused by|secondary to|as a result of|because of)\b")
_CLAUSE_END = re.compile(r"[.;:,]|\b(?:and|but|or|so|then|which)\b")
_WORD = re.compile(r"[a-z][a-z0-9\-']*[a-z0-9]|[a-z]")
# Cues that state a reason outright (a reason no table names is checked by its words); "to
# help with", "to control", "for" often name an aim or a symptom instead.
_STATED_REASON = re.compile(
    r"started for|prescribed for|given for|ordered for|treated for|to treat|treats?|"
    r"to (?:work up|evaluate|investigate|diagnose)|because of|due to|caused by|secondary to|"
    r"as a result of"
)
_AIM_WORDS = frozenset(
    {
        *("control", "management", "prevention", "relief", "symptoms", "symptom"),
        *("treatment", "maintenance", "health", "protection", "support", "level"),
        *("levels", "care", "problems", "problem", "issues"),
    }
)
_SUBJECT_TYPES = {
    "MedicationRequest",
    "MedicationStatement",
    "MedicationAdministration",
    "Procedure",
    "Encounter",
    "ServiceRequest",
    "CarePlan",
    "Appointment",
    "Immunization",
}
_CAUSE_WORDS = re.compile(r"\b(?:due to|caused by|secondary to|associated with|induced)\b")
# Only claims about conditions and findings are purpose claims ("for 10 days" is not one).
_PURPOSE_KINDS = ("icd:",)
_SYMPTOM = re.compile(r"icd:R[0-6]\d")


def _text_concepts(text: str) -> frozenset[str]:
    return closure(c for m in mentions(lexicon.canonical(text)) for c in m.concepts)


def _reason_text(e: Evidence) -> str:
    d = e.data
    parts = [d.get("reason"), d.get("as_needed_for")]
    addresses = d.get("addresses")
    if isinstance(addresses, list):
        parts += [str(a) for a in addresses]
    return " . ".join(str(p) for p in parts if p)


def _linked(e: Evidence) -> list[str]:
    links = e.data.get("links")
    if not isinstance(links, dict):
        return []
    return [i for ids in links.values() if isinstance(ids, list) for i in ids if isinstance(i, str)]


def _claims(canon: str) -> list[tuple[str, str, int]]:
    """(cue, mention term, concept-bearing position) of each purpose/causal object."""
    out: list[tuple[str, str, int]] = []
    for rx, kind in ((_CAUSE, "cause"), (_PURPOSE, "purpose")):
        for m in rx.finditer(canon):
            if TESTED_FOR.search(canon[: m.end()] + " "):
                continue  # "tested for strep": what a test looks for is no reason
            end = _CLAUSE_END.search(canon, m.end())
            stop = end.start() if end else len(canon)
            obj = canon[m.end() : stop]
            found = mentions(obj)
            if _STATED_REASON.match(m.group(0)) and not any(
                c.startswith(_PURPOSE_KINDS) for men in found for c in men.concepts
            ):
                # "started for ankle oedema", "to work up rectal bleeding": a stated reason
                # no table names is still checked, by its clinical words
                inside = {w for men in found for w in men.term.split()}
                words = [w for w in clinical_words(obj) if w not in inside | _AIM_WORDS]
                if words:
                    out.append((kind, " ".join(words), m.end()))
                    continue
            for men in found:
                # symptoms ("as needed for wheezing", "for fever") are how to use a drug, not
                # a reason the chart records (ICD-10-CM R00-R69; R70-R99 are findings such
                # as prediabetes, which are reasons)
                stated = bool(_STATED_REASON.match(m.group(0)))  # "started for edema"
                if any(c.startswith(_PURPOSE_KINDS) and (stated or not _SYMPTOM.match(c))
                       for c in men.concepts):
                    out.append((kind, men.term, m.end() + men.start))
    seen: set[int] = set()
    uniq = []
    for kind, term, pos in sorted(out, key=lambda x: x[0] != "cause"):
        if pos not in seen:
            seen.add(pos)
            uniq.append((kind, term, pos))
    return uniq


def check_links(
    facts: StatementFacts,
    cited: list[EvidenceFacts],
    by_id: dict[str, Evidence],
    facts_of: Callable[[Evidence], EvidenceFacts],
    negated: set[str] | None = None,
) -> list[CheckResult]:
    """One result per purpose or causal claim of the statement (none when it makes none)."""
    if not cited:
        return []
    claims = _claims(facts.canon)
    if not claims:
        return []
    ids = [c.evidence.id for c in cited]
    out: list[CheckResult] = []
    for kind, term, _ in claims:
        if negated and set(term.split()) & negated:
            continue
        wanted = frozenset(c for m in mentions(term) for c in m.concepts)
        verdict, why = _judge(kind, term, wanted, cited, by_id, facts_of)
        out.append(CheckResult(check="links", verdict=verdict, reason=why, evidence_ids=ids))
    return out


def _words_in(term: str, c: EvidenceFacts) -> bool:
    """A stated reason no table names, found word for word in a cited record."""
    return not mentions(term) and covers(term.split(), c.tokens)


def _judge(
    kind: str,
    term: str,
    wanted: frozenset[str],
    cited: list[EvidenceFacts],
    by_id: dict[str, Evidence],
    facts_of: Callable[[Evidence], EvidenceFacts],
) -> tuple[Verdict, str]:
    subjects = [c for c in cited if c.evidence.resource_type in _SUBJECT_TYPES]
    found: list[str] = []  # what the chart links, for the reason
    pool = subjects if subjects else cited
    for c in pool:
        e = c.evidence
        reason = _reason_text(e)
        for lid in _linked(e):
            target = by_id.get(lid)
            if target is None:
                continue
            shown = f"{lid} ({target.title})"
            tf = facts_of(target)
            if wanted & evidence_concepts(tf) or covers(term.split(), tf.tokens):
                return "supported", f"reason: {shown}"
            found.append(shown)
        if reason and (
            wanted & _text_concepts(reason)
            or covers(term.split(), set(_WORD.findall(lexicon.canonical(reason))))
        ):
            return "supported", f"reason: {e.id} ({reason})"
        if reason and not _linked(e):
            found.append(f"'{reason}'")
    if not subjects:
        # Causal claims between conditions: one record naming both ("kidney disease due to
        # diabetes"); a purpose named by the cited condition itself ("treated for asthma").
        for c in cited:
            own = evidence_concepts(c)
            # an allergy's reactions are what it causes ("avoid penicillin because of hives")
            ties = kind == "purpose" or c.evidence.resource_type == "AllergyIntolerance"
            if (wanted & own or _words_in(term, c)) and (ties or _CAUSE_WORDS.search(c.canon)):
                return "supported", f"{c.evidence.id} ({c.evidence.title}) records it"
    where = ", ".join(c.evidence.id for c in pool[:2])
    if subjects and not found:
        # The order records no reason at all, and the statement cites the condition beside it:
        # the chart does not say otherwise, and the clinician sees both records.
        # Medication orders only: a procedure or visit's reason is recorded where it exists.
        meds = [c for c in subjects if c.evidence.resource_type.startswith("Medication")]
        for c in cited if meds else []:
            if c not in subjects and (wanted & evidence_concepts(c) or _words_in(term, c)):
                return "supported", (
                    f"{c.evidence.id} ({c.evidence.title}) is cited with {where}, "
                    "which records no reason"
                )
    verb = "links" if kind == "purpose" else "ties"
    if found:
        return (
            "unsupported",
            f"'{term}': the chart {verb} {where} to {', '.join(dict.fromkeys(found))}, "
            f"not to {term}",
        )
    return "unsupported", f"'{term}': the chart {verb} {where} to nothing (no reason recorded)"
