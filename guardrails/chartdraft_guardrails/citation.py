"""Citation check: a clinical statement cites something, and every cited id is usable.

Usable means: the id is in this patient's chart (or is a knowledge-base passage) and it was shown
to the model in the prompt. Another patient's id is never usable.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from functools import lru_cache

from chartdraft_guardrails import lexicon
from chartdraft_guardrails.facts import (
    BUILTIN_TERMS,
    is_term,
    names_clinical_concept,
    names_drug,
    words,
)
from chartdraft_guardrails.statement import CheckResult, Statement
from chartdraft_guardrails.terminology import data_yaml
from retrieval.errors import BadInput
from retrieval.evidence import Evidence

# Sentences that state no clinical fact and so need no citation.
_NON_CLINICAL = re.compile(
    r"^\s*(?:not documented(?: in the chart)?|no (?:information|data|records?) (?:is |was )?"
    r"(?:available|documented|found)|(?:please )?(?:call|contact|ask) (?:your|the) (?:doctor|"
    r"care team|nurse|clinic|provider|pharmacist)|if you have (?:any )?questions|"
    r"bring (?:this|these) (?:instructions|papers)|this (?:summary|letter|document) was drafted|"
    r"none (?:documented|recorded|on file)|see below|n/?a)\b",
    re.I,
)
# "Criterion 3 (neurologic-deficit): Not documented in the chart." -- the label is no claim.
_LABEL = re.compile(r"^\s*(?:criterion|item)\s+#?\d+\s*(?:\([^)]*\))?\s*:\s*", re.I)
# A number is a value unless it is an emergency or phone number ("Call 911").
_VALUE = re.compile(r"(?<![\d-])(?!911\b)\d(?![\d-]{6})")


@lru_cache(maxsize=1)
def _cues() -> re.Pattern[str]:
    """The clinical cue words of data/clinical_cues.yaml, as one word-start alternation."""
    raw = data_yaml("clinical_cues.yaml", "clinical cue words")
    cues = [str(c) for group in (raw.get("cues") or {}).values() for c in group or []]
    _PLAIN_WORDS.update(str(w).lower() for w in raw.get("not_clinical") or [])
    if not cues:
        raise BadInput(
            "no clinical cue words",
            where="chartdraft_guardrails/data/clinical_cues.yaml",
            fix="list them as cues: {group: [word, ...]}",
        )
    return re.compile(r"\b(?:" + "|".join(sorted(cues, key=len, reverse=True)) + ")", re.I)


_PLAIN_WORDS: set[str] = set()  # filled from data/clinical_cues.yaml (not_clinical)


def _names_term(body: str) -> bool:
    """A clinical word of data/clinical_terms.csv or with a clinical suffix (-itis, -ectomy)."""
    _cues()
    return any(
        is_term(w, BUILTIN_TERMS)
        for w in words(lexicon.canonical(body))
        if len(w) >= 4 and w not in _PLAIN_WORDS
    )


def is_clinical(
    text: str, vocab: frozenset[str] = frozenset(), concepts: AbstractSet[str] = frozenset()
) -> bool:
    """Does ``text`` state a clinical fact (and so need a citation)?

    Only when it names a clinical concept, value, drug, status or finding: a number, a drug or
    allergy substance (``vocab``: the chart's vocabulary, plus the brand/generic lexicon), a
    condition or procedure word of the chart (``concepts``) or of the clinical-term list, a
    clinical cue word (data/clinical_cues.yaml), a status claim or an allergy denial. "Take
    amoxicillin every day." and "Continue warfarin." are clinical though they have no dose;
    "Please bring this sheet to your next visit.", "Call us with any questions." and general
    advice ("Keep all medicines out of reach of children.") are not.
    """
    body = _LABEL.sub("", text, count=1)  # the label ("(metformin-trial)") is no claim
    if body != text and re.match(r"\s*(?:documented|met)\b", body, re.I):
        return True  # "Criterion 2 (...): met. ..." asserts that the chart meets it
    if _NON_CLINICAL.search(body) and not re.search(r"\d", body):
        return names_drug(body, vocab)  # "Call your doctor before you stop warfarin" is not idle
    _cues()  # loads _PLAIN_WORDS too
    if concepts and _PLAIN_WORDS & concepts:  # "children" alone is no clinical concept
        concepts = frozenset(concepts) - _PLAIN_WORDS
    return (
        bool(_VALUE.search(body) or _cues().search(body))
        or names_clinical_concept(body, vocab, concepts)
        or _names_term(body)
    )


def is_knowledge_id(evidence_id: str) -> bool:
    return evidence_id.startswith("kb:")


def note_sections(
    evidence_id: str, chart_by_id: dict[str, Evidence], shown_ids: AbstractSet[str] = frozenset()
) -> list[Evidence]:
    """``DocumentReference/9`` cites the whole note: its sections (``DocumentReference/9#...``).

    With ``shown_ids``, only the sections shown in the prompt (the note counts as shown when its
    sections were). Empty for any other id.
    """
    if "#" in evidence_id or not evidence_id.startswith("DocumentReference/"):
        return []
    prefix = evidence_id + "#"
    return [
        e
        for k, e in chart_by_id.items()
        if k.startswith(prefix) and (not shown_ids or k in shown_ids)
    ]


def check_citations(
    statement: Statement,
    *,
    chart_by_id: dict[str, Evidence],
    cited: list[Evidence],
    shown_ids: set[str],
    patient_id: str,
    clinical: bool | None = None,
) -> list[CheckResult]:
    """``clinical``: whether the statement states a clinical fact, when the caller already knows
    (it has the chart's vocabulary); default: :func:`is_clinical` without chart vocabulary.
    """
    results: list[CheckResult] = []
    if not statement.citations:
        if clinical if clinical is not None else is_clinical(statement.text):
            results.append(
                CheckResult(
                    check="citation",
                    verdict="uncited",
                    reason="states a clinical fact but cites no evidence",
                )
            )
        return results
    cited_by_id = {e.id: e for e in cited}
    for cid in statement.citations:
        e = cited_by_id.get(cid) or chart_by_id.get(cid)
        sections = note_sections(cid, chart_by_id) if e is None else []
        if sections:
            if any(s.patient_id not in (None, patient_id) for s in sections):
                why = f"cites {cid}, which belongs to another patient"
            elif not note_sections(cid, chart_by_id, shown_ids):
                why = f"cites {cid}, which was not among the sources shown in the prompt"
            else:
                continue
        elif e is not None and e.kind == "chart" and e.patient_id not in (None, patient_id):
            why = f"cites {cid}, which belongs to another patient"
        elif e is None and not is_knowledge_id(cid):
            why = f"cites {cid}, which is not in this patient's chart"
        elif e is None:
            why = f"cites knowledge passage {cid}, which was not provided"
        elif shown_ids and cid not in shown_ids:
            why = f"cites {cid}, which was not among the sources shown in the prompt"
        else:
            continue
        results.append(
            CheckResult(
                check="citation", verdict="invalid_citation", reason=why, evidence_ids=[cid]
            )
        )
    return results
