"""Small clinical vocabularies the rule-based checks rely on.

Brand -> generic names for common drugs, drug classes (for allergy cross-reactivity), phrase
synonyms (loaded from the data files by :mod:`chartdraft_guardrails.terminology`), frequencies,
routes. A missing entry makes a check stricter (a brand name it does not know is "not found"),
never silently laxer.
"""

from __future__ import annotations

import re

from chartdraft_guardrails import terminology

# The vocabularies live in data files (data/drugs.csv, drug_classes.csv, synonyms.csv) with their
# sources; these names stay so callers keep working.
BRAND_TO_GENERIC: dict[str, str] = terminology.brand_to_generic()
# Drug -> cross-reactive classes; an allergy to a class or to one member flags the others.
DRUG_CLASSES: dict[str, set[str]] = terminology.allergy_classes()
CLASS_WORDS: dict[str, str] = terminology.allergy_class_words()
# Generic names recognised in statements even when the chart does not mention them (so a
# wrong drug is caught as "not in the cited evidence").
COMMON_DRUGS: set[str] = set(terminology.common_drugs())
# Phrase -> canonical phrase, applied to statement and evidence text alike before comparing.
SYNONYMS: list[tuple[str, str]] = list(terminology.synonyms())

_BRAND_RE = re.compile(
    r"\b(" + "|".join(sorted(map(re.escape, BRAND_TO_GENERIC), key=len, reverse=True)) + r")\b"
)
_SYN = [(re.compile(p), r) for p, r in SYNONYMS]


def canonical(text: str) -> str:
    """Lower-case ``text`` and map brands and phrase synonyms to canonical words."""
    t = text.lower()
    t = _BRAND_RE.sub(lambda m: BRAND_TO_GENERIC[m.group(1)], t)
    for pat, rep in _SYN:
        t = pat.sub(rep, t)
    return t


# Frequencies -> (times per day, as needed). Order matters: longer phrases first.
_FREQ: list[tuple[str, float | None]] = [
    (r"\b(?:four times (?:a |per )?daily|four times a day|qid|q\.i\.d\.?|every 6 hours|q6h)\b", 4),
    (
        r"\b(?:three times (?:a |per )?daily|three times a day|tid|t\.i\.d\.?|every 8 hours|q8h)\b",
        3,
    ),
    (
        r"\b(?:twice (?:a |per )?daily|twice a day|two times a day|bid|b\.i\.d\.?|"
        r"every 12 hours|q12h)\b",
        2,
    ),
    (r"\b(?:every 4 hours|q4h)\b", 6),
    (r"\b(?:every 2 hours|q2h)\b", 12),
    (r"\b(?:every 3 hours|q3h)\b", 8),
    (
        r"\b(?:once (?:a |per )?daily|once a day|daily|every day|qd|q\.d\.?|every 24 hours|"
        r"q24h|each day|"
        r"at bedtime|nightly|every night|qhs|every morning|qam)\b",
        1,
    ),
    (r"\b(?:once (?:a |per )?week|weekly|every week)\b", 1 / 7),
    (r"\b(?:every other day|qod)\b", 0.5),
    (r"\b(?:once|one time|single dose)\b", 0),
]
_FREQ_RE = [(re.compile(p, re.I), v) for p, v in _FREQ]
_PRN_RE = re.compile(r"\b(?:as needed|prn|p\.r\.n\.|when needed|if needed)\b", re.I)


def frequencies(text: str) -> set[float]:
    """Times-per-day values written in ``text`` ("BID", "twice daily", "every 12 hours" -> 2)."""
    found: set[float] = set()
    rest = text
    for pat, v in _FREQ_RE:
        if pat.search(rest):
            found.add(float(v or 0))
            rest = pat.sub(" ", rest)
    return found


def as_needed(text: str) -> bool:
    return bool(_PRN_RE.search(text))


ROUTES: list[tuple[str, str]] = [
    (r"\b(?:by mouth|orally|oral|po|p\.o\.)\b", "oral"),
    (r"\b(?:intravenous(?:ly)?|iv)\b", "intravenous"),
    (r"\b(?:subcutaneous(?:ly)?|subcut|sc|sq)\b", "subcutaneous"),
    (r"\b(?:intramuscular(?:ly)?|im)\b", "intramuscular"),
    (r"\b(?:inhaled|inhalation|inhaler|nebulized)\b", "inhaled"),
    (r"\b(?:topical(?:ly)?|to the skin)\b", "topical"),
    (r"\b(?:transdermal|patch)\b", "transdermal"),
]
_ROUTE_RE = [(re.compile(p, re.I), r) for p, r in ROUTES]


def routes(text: str) -> set[str]:
    return {r for pat, r in _ROUTE_RE if pat.search(text)}


# Words too generic to be a clinical fact on their own (data/generic_words.csv).
GENERIC_WORDS: set[str] = set(terminology.generic_words())
