"""Citation check: a clinical statement cites something, and every cited id is usable.

Usable means: the id is in this patient's chart (or is a knowledge-base passage) and it was shown
to the model in the prompt. Another patient's id is never usable.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet

from chartdraft_guardrails.facts import names_clinical_concept, names_drug
from chartdraft_guardrails.statement import CheckResult, Statement
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
_CUE = re.compile(
    r"\d|\b(?:mg|mcg|tablet|capsule|inhaler|dose|allerg\w*|diagnos\w*|prescrib\w*|medication\w*|"
    r"medicine\w*|history|condition|disease|disorder|infection|surgery|procedure|underwent|"
    r"vaccin\w*|immuniz\w*|lab|result\w*|level|pressure|rate|hemoglobin|glucose|cholesterol|"
    r"a1c|creatinine|resolved|active|stopped|discontinued|takes|taking|started|admitted|"
    r"discharged|hospitali\w*|encounter|visit|reaction|rash|hives|anaphylaxis|pain|fracture|"
    r"cancer|diabetes|hypertension|asthma|pneumonia|sinusitis|bronchitis|pharyngitis|anemia|"
    r"obesity|weight|height|bmi|temperature|oxygen|exam\w*|weakness|numbness|tingling|deficit|"
    r"x-ray|mri|imaging|radiograph\w*|therapy)\b",
    re.I,
)


def is_clinical(
    text: str, vocab: frozenset[str] = frozenset(), concepts: AbstractSet[str] = frozenset()
) -> bool:
    """Does ``text`` state a clinical fact (and so need a citation)?

    A number or clinical cue word, a drug or allergy substance (``vocab``: the chart's vocabulary,
    plus the brand/generic lexicon), a condition or procedure word of the chart (``concepts``), a
    status claim or an allergy denial: "Take amoxicillin every day." and "Continue warfarin." are
    clinical though they have no dose. "Not documented in the chart.", "Call your doctor if you
    have questions." and general advice ("Eat less salt.") are not.
    """
    body = _LABEL.sub("", text, count=1)  # the label ("(metformin-trial)") is no claim
    if body != text and re.match(r"\s*documented\b", body, re.I):
        return True  # "Criterion 2 (...): documented. ..." asserts that the chart meets it
    if _NON_CLINICAL.search(body) and not re.search(r"\d", body):
        return names_drug(body, vocab)  # "Call your doctor before you stop warfarin" is not idle
    return bool(_CUE.search(body)) or names_clinical_concept(body, vocab, concepts)


def is_knowledge_id(evidence_id: str) -> bool:
    return evidence_id.startswith("kb:")


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
        if e is not None and e.kind == "chart" and e.patient_id not in (None, patient_id):
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
