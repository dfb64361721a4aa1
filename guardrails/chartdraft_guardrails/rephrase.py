"""Constrained mode's extra guard: a rephrasing must keep every fact of the sentence it rewrites.

The support check alone is not enough here: a rewrite that silently drops the dose ("Take your
blood pressure pill") claims nothing false, so it would pass. This check compares the facts of the
composed sentence with those of the rewrite, and any fact lost, changed or added is a reason to keep
the composed sentence. Its word lists are in data/rephrase_words.yaml.
"""

from __future__ import annotations

import re
from functools import lru_cache

from chartdraft_guardrails.facts import StatementFacts, statement_facts
from chartdraft_guardrails.instructions import instruction_kinds
from chartdraft_guardrails.terminology import data_yaml
from retrieval.errors import BadInput

_WORD = re.compile(r"[a-z][a-z']+")
# "Stop taking aspirin" and "Keep taking aspirin" differ only in this instruction.
_STOP = re.compile(r"\b(?:stop|stopped|discontinue|discontinued|quit)\b", re.I)


@lru_cache(maxsize=1)
def _words() -> tuple[frozenset[str], re.Pattern[str]]:
    where = "chartdraft_guardrails/data/rephrase_words.yaml"
    raw = data_yaml("rephrase_words.yaml", "rephrase words")
    plain, sides = str(raw.get("plain") or "").split(), raw.get("laterality") or []
    if not plain or not sides:
        raise BadInput("plain words or laterality missing", where=where,
                       fix="plain: 'word word ...', laterality: [left, right, ...]")  # fmt: skip
    alts = "|".join(re.escape(str(s)) for s in sorted(sides, key=len, reverse=True))
    return frozenset(plain), re.compile(r"\b(" + alts + r")\b", re.I)


def plain_words() -> frozenset[str]:
    """Words a plain-language rewrite may add without adding a claim."""
    return _words()[0]


def _quantities(f: StatementFacts) -> set[tuple[str, str]]:
    # A set, not a count: saying "20 mg" once instead of twice loses nothing.
    def num(text: str) -> str:
        try:
            return f"{float(text.replace(',', '')):g}"
        except ValueError:
            return text
    return {(num(q.text), (q.unit or "").lower()) for q in f.quantities}


def _sides(text: str) -> set[str]:
    return {m.group(1).lower() for m in _words()[1].finditer(text)}


def lost_facts(original: str, rewritten: str, vocab: frozenset[str]) -> list[str]:
    """What the rewrite lost, changed or added, in words; empty when every fact is kept."""
    a, b = statement_facts(original, vocab), statement_facts(rewritten, vocab)
    problems: list[str] = []
    for drug in sorted(set(a.drugs) - set(b.drugs)):
        problems.append(f"drops the drug {drug!r}")
    for drug in sorted(set(b.drugs) - set(a.drugs)):
        problems.append(f"adds the drug {drug!r}")
    qa, qb = _quantities(a), _quantities(b)
    for value, unit in (qa - qb):
        problems.append(f"drops or changes {value} {unit}".rstrip())
    for value, unit in (qb - qa):
        problems.append(f"adds {value} {unit}".rstrip())
    da, db = {d.iso() for d in a.dates}, {d.iso() for d in b.dates}
    if da != db:
        problems.append(f"dates differ ({', '.join(sorted(da)) or 'none'} -> "
                        f"{', '.join(sorted(db)) or 'none'})")
    ca, cb = {(c.system, c.code) for c in a.codes}, {(c.system, c.code) for c in b.codes}
    if ca != cb:
        problems.append("drops, changes or adds a code")
    if a.frequencies != b.frequencies:
        problems.append("changes how often")
    if a.routes - b.routes:
        problems.append("drops the route" if not b.routes else "changes the route")
    elif b.routes - a.routes:
        problems.append("adds a route")
    if a.as_needed != b.as_needed:
        problems.append("changes 'as needed'")
    if a.negated != b.negated or a.no_known_allergies != b.no_known_allergies:
        problems.append("changes a negation")
    if (
        a.status_claim != b.status_claim
        or a.continued != b.continued
        or bool(_STOP.search(original)) != bool(_STOP.search(rewritten))
    ):
        problems.append("changes the status")
    sa, sb = _sides(original), _sides(rewritten)
    if sa != sb:
        problems.append(f"changes the side ({', '.join(sorted(sa)) or 'none'} -> "
                        f"{', '.join(sorted(sb)) or 'none'})")
    ia, ib = set(instruction_kinds(original)), set(instruction_kinds(rewritten))
    if ia != ib:
        problems.append("changes the instructions (time of day, food or duration)")
    added = set(_WORD.findall(rewritten.lower())) - set(_WORD.findall(original.lower()))
    added -= plain_words()
    if added:
        problems.append(f"adds words the sentence did not have: {', '.join(sorted(added))}")
    return problems
