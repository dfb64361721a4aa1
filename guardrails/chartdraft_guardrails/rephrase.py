"""Constrained mode's extra guard: a rephrasing must keep every fact of the sentence it rewrites.

The support check alone is not enough here: a rewrite that silently drops the dose ("Take your
blood pressure pill") claims nothing false, so it would pass. This check compares the facts of the
composed sentence with those of the rewrite, and any fact lost, changed or added is a reason to keep
the composed sentence.
"""

from __future__ import annotations

import re

from chartdraft_guardrails.facts import StatementFacts, statement_facts

# Words a plain-language rewrite may add without adding a claim. Anything else new (a promise to
# call, a symptom, a reason) is content the chart did not give, so the rewrite is refused.
_PLAIN = """
a an the and or but so to of in on at for with by from as is are was were be been being
have has had do does did will would should can could may might must please your you yours
our we us it its this that these those there here then now also just only each every all
any some more less very new newly still keep keeping kept continue continuing take taking
took use using used stop stopping stopped start starting started get getting got need
needs needed go going come coming see visit medicine medicines medication medications pill
pills dose doses day days daily time times once twice week weeks month months year years
morning evening night bedtime when if not no don't do doctor doctors nurse team care
hospital stay stayed home about because which who what how changed change changes now
increased decreased higher lower up down same again other
"""
PLAIN_WORDS = frozenset(_PLAIN.split())

_WORD = re.compile(r"[a-z][a-z']+")


def _quantities(f: StatementFacts) -> set[tuple[str, str]]:
    # A set, not a count: saying "20 mg" once instead of twice loses nothing.
    def num(text: str) -> str:
        try:
            return f"{float(text.replace(',', '')):g}"
        except ValueError:
            return text
    return {(num(q.text), (q.unit or "").lower()) for q in f.quantities}


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
        problems.append("drops the route")
    if a.as_needed != b.as_needed:
        problems.append("changes 'as needed'")
    if a.negated != b.negated or a.no_known_allergies != b.no_known_allergies:
        problems.append("changes a negation")
    if a.status_claim != b.status_claim:
        problems.append("changes the status")
    added = set(_WORD.findall(rewritten.lower())) - set(_WORD.findall(original.lower()))
    added -= PLAIN_WORDS
    if added:
        problems.append(f"adds words the sentence did not have: {', '.join(sorted(added))}")
    return problems
