"""Readability: Flesch-Kincaid grade level, computed offline (pyphen for syllables).

Label words are not long words. A drug's name, its units and numbers ("acetaminophen 325 mg",
"0.09 mg/actuat", "hydrochloride") are printed on the patient's medicine label and must be copied
exactly; no rewording can shorten them. So every such word counts as a word (it still lengthens the
sentence) of ONE syllable, and numbers count as no word at all (as before). Everything else --
the instructions around the names -- is graded as written. The caller passes the label words (the
chart's medication and allergy names); units are known here.

The formula and the counting (``measure``) are shared with the eval harness
(``evals.metrics.fk_grade``), which grades every word as written: see there for why.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from functools import lru_cache

import pyphen

_dic: pyphen.Pyphen | None = None
# Straight or curly apostrophe: models write "don’t", and it is one word as "don't" is.
_WORD = re.compile(r"[A-Za-z][A-Za-z'’\-]*")
_SENT = re.compile(r"[.!?]+(?:\s|$)|\n+")
UNIT_WORDS = frozenset(
    ["mg", "mcg", "ug", "g", "kg", "ml", "l", "meq", "unt", "unit", "units", "iu", "actuat"]
    + ["puff", "puffs", "hr", "mmhg", "mmol", "dl"]
)


def _pyphen() -> pyphen.Pyphen:
    global _dic
    if _dic is None:
        _dic = pyphen.Pyphen(lang="en_US")
    return _dic


@lru_cache(maxsize=20000)
def syllables(word: str) -> int:
    """Syllables of one word: pyphen's hyphenation points, floored by a vowel-group count.

    Hyphenation dictionaries skip breaks near word ends ("every" -> 1 break), so take the larger
    of the two estimates, corrected for a silent final e.
    """
    w = word.lower().strip("'’-")
    if not w:
        return 0
    hy = len(_pyphen().positions(w)) + 1
    groups = len(re.findall(r"[aeiouy]+", w))
    if w.endswith("e") and not w.endswith(("le", "ee")) and groups > 1:
        groups -= 1
    return max(1, hy, groups)


@dataclass(frozen=True)
class Readability:
    grade: float
    words: int
    sentences: int
    syllables: int


def label_words(names: list[str]) -> frozenset[str]:
    """The words of medicine / allergy names as the chart writes them, lower-cased."""
    return frozenset(w.lower() for n in names for w in _WORD.findall(n) if len(w) > 1)


def measure(text: str, syllables_of: Callable[[str], int] = syllables) -> Readability:
    """Flesch-Kincaid grade, unrounded: 0.39 words/sentence + 11.8 syllables/word - 15.59.

    Words are letters (numbers are not words); a sentence ends at . ! ? or a line break and has
    a word. ``grade`` is NaN when there is no word to grade.
    """
    words = _WORD.findall(text)
    if not words:
        return Readability(math.nan, 0, 0, 0)
    sentences = max(1, len([s for s in _SENT.split(text) if _WORD.search(s)]))
    syl = sum(syllables_of(w) for w in words)
    grade = 0.39 * len(words) / sentences + 11.8 * syl / len(words) - 15.59
    return Readability(grade, len(words), sentences, syl)


def fk_grade(text: str, label: AbstractSet[str] = frozenset()) -> Readability:
    """Flesch-Kincaid grade to 0.1; words in ``label`` (and units) count as one syllable each."""

    def syl(w: str) -> int:
        return 1 if w.lower() in label or w.lower() in UNIT_WORDS else syllables(w)

    r = measure(text, syl)
    if not r.words:
        return Readability(0.0, 0, 0, 0)
    return replace(r, grade=round(r.grade, 1))


def check_readability(
    title: str,
    texts: list[str],
    *,
    target: float = 6.0,
    limit: float = 8.0,
    label: AbstractSet[str] = frozenset(),
) -> dict[str, object]:
    """One section's grade; ``ok`` is False above ``limit`` (``on_target`` at or below target).

    ``label``: medicine and allergy name words, graded as one syllable (see the module doc).
    ``hardest``: the sentences above ``target`` that push the grade up, hardest first.
    """
    r = fk_grade(" ".join(t.strip().rstrip(".") + "." for t in texts if t.strip()), label)
    return {
        "section": title,
        "grade": r.grade,
        "target": target,
        "limit": limit,
        "ok": r.grade <= limit,
        "on_target": r.grade <= target,
        "words": r.words,
        "hardest": hardest_sentences(texts, target=target, label=label),
    }


def hardest_sentences(
    texts: list[str],
    *,
    target: float = 6.0,
    label: AbstractSet[str] = frozenset(),
    top: int = 3,
) -> list[dict[str, object]]:
    """The ``top`` sentences graded above ``target``, hardest first, so a clinician knows which
    ones to shorten. Ties go to the longer sentence (it adds more to the section's grade)."""
    graded = []
    for t in texts:
        for s in _SENT.split(t):
            s = s.strip()
            if not _WORD.search(s):
                continue
            r = fk_grade(s + ".", label)
            if r.grade > target:
                graded.append({"sentence": s + ".", "grade": r.grade, "words": r.words})
    graded.sort(key=lambda g: (-float(g["grade"]), -int(g["words"])))  # type: ignore[arg-type]
    return graded[:top]
