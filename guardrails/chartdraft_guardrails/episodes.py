"""Several episodes of one condition: status claims per clause, and the episode a statement cites.

"His asthma remains active, while the November 2017 bronchitis has resolved" makes two claims,
each about the concept in its own clause. A claim about the episode the statement cites is judged
by that episode: "the July 2017 sinusitis resolved" citing the resolved July episode is true even
though a later sinusitis is active.
"""

from __future__ import annotations

import re

from chartdraft_guardrails.facts import EvidenceFacts, StatementFacts, status_claim_of, words

_CLAUSE = re.compile(r"[;,]|\b(?:while|whereas|but|although|though|and)\b")


def clause_terms(facts: StatementFacts, claim: str) -> list[set[str]]:
    """The clinical terms of each clause that makes ``claim`` ("active" / "inactive").

    Clauses without a claim of their own ("his asthma and ...") join the next claiming clause; a
    claiming clause with no term ("... and it has resolved") stands for the whole statement.
    """
    out: list[set[str]] = []
    pending: set[str] = set()
    for clause in _CLAUSE.split(facts.canon):
        terms = {w for w in words(clause) if w in facts.terms}
        said = status_claim_of(clause)
        if said is None:
            pending |= terms
            continue
        if said == claim:
            out.append((pending | terms) or set(facts.terms))
        pending = set()
    return out or [set(facts.terms)]


def cited_episode_agrees(
    related: list[EvidenceFacts], cited: list[EvidenceFacts] | None, wanted: set[str]
) -> bool:
    """The statement cites one of the ``related`` episodes, and its status is the one claimed."""
    ids = {c.evidence.id for c in related}
    return any(c.evidence.id in ids and c.status in wanted for c in cited or [])
