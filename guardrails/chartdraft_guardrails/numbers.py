"""Numbers in text that are clinical values, and the ones that are not.

A value is a number with an optional unit ("500 mg", "7.2 %", "62 mL/min/1.73 m²"), a blood
pressure ("128/82"), a combination product's strength pair ("875/125 mg": 875 mg and 125 mg) or
a ratio ("1:1000"). Not values: digits inside names ("T2DM", "COVID-19", "type 2 diabetes",
"PHQ-9"), years ("diagnosed 2019": a date, see :func:`bare_years`), frequencies ("every 12
hours"). Words before a number ("about 31", "just under 7 %") are kept as its ``approx`` kind
(data/approximate_words.yaml) so the comparison can widen the way those words do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from chartdraft_guardrails.dates import DateFact
from chartdraft_guardrails.units import UNIT_PATTERN

_DATA = Path(__file__).with_name("data")

_NUM = r"\d+(?:,\d{3})*(?:\.\d+)?"
_BP = re.compile(r"(?<![\d.])(\d{2,3})\s*/\s*(\d{2,3})(?:\s*(mmHg|mm\[Hg\]|mm hg))?(?![\d.])", re.I)
# "875/125 mg", "5/325 mg", "100/25 mcg": a combination product's two strengths, not a pressure
_PAIR = re.compile(
    r"(?<![\d.])(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)\s*(mg|mcg|µg|g|units?|iu|meq)(?![\w/])",
    re.I,
)
_QTY = re.compile(
    r"(?<![\w.^*/])(?<![a-z]-)(" + _NUM + r")(?:\s*(?:-\s*)?(" + UNIT_PATTERN + r"))?(?![\w^*])",
    re.I,
)
# "40 mg/0.4 mL", "100 mcg/0.5 mL", "250 mg/5 mL": an amount in a volume, two values
_IN_VOLUME = re.compile(
    r"(?<![\w.])(\d+(?:\.\d+)?)\s*(mg|mcg|µg|g|units?|iu|meq)\s*/\s*(\d+(?:\.\d+)?)\s*(ml|l)(?![\w/])",
    re.I,
)
# "per 24 hours", "a 24-hour urine": the period of a rate or a test's name, not a value
_PERIOD = re.compile(
    r"\bper\s+\d+\s*(?:hours?|hrs?|h|days?|weeks?)\b|\b\d+-(?:hour|hr|day|week|month|year)\b", re.I
)
# "2,000 mg a day in total", "440 mcg of fluticasone per day": a day's total, not one dose
DAILY_AFTER = re.compile(
    r"^\s*(?:of\s+[a-z][\w-]*(?:\s+[a-z][\w-]*)?\s+)?"
    r"(?:(?:a|per|each|every)\s+day|/\s*day|daily total|in total|total daily|total a day"
    r"|total per day)\b"
)
_RATIO = re.compile(r"(?<![\w.:/])(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)(?![\w:.])")
_TIME_CUE = re.compile(
    r"\b(?:at|by|until|from|before|after|around)\s*$|^\s*(?:a\.?m|p\.?m|h\b)", re.I
)
_EVERY = re.compile(r"\b(?:every|q)\s*\d+(?:\s*-\s*\d+)?\s*(?:h\b|hours?|hrs?)", re.I)
# Digits that belong to a name: "type 2 diabetes", "COVID-19", "SARS-CoV-2", "PHQ-9", "omega-3",
# "T2DM", "HbA1c", "CD4", "B12" (the last ones are already glued to letters and never match).
_NAME_DIGITS = re.compile(
    r"\btype\s+(?:1|2|i|ii)\b(?!\s*(?:" + UNIT_PATTERN + r"))|\b[a-z][a-z\-]*-\d+[a-z]?\b",
    re.I,
)
_YEAR = re.compile(r"(?<![\w.,/:])((?:19|20)\d\d)(?![\w/:%]|[.,]\d|\s*(?:" + UNIT_PATTERN + r")\b)")


@dataclass
class Quantity:
    text: str
    unit: str | None
    span: tuple[int, int]
    approx: str | None = None  # "about", "below", "just_below"... (data/approximate_words.yaml)
    per_day: bool = False  # "2,000 mg a day in total": a day's total, not one dose


@lru_cache(maxsize=1)
def _approx_words() -> tuple[re.Pattern[str], dict[str, str]]:
    path = _DATA / "approximate_words.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    kinds: dict[str, str] = {}
    for kind, ws in (raw.get("words") or {}).items():
        for w in ws or []:
            kinds[str(w).lower()] = str(kind)
    if not kinds:
        raise ValueError(f"{path}: no approximate words (expected words: {{kind: [word, ...]}})")
    alts = "|".join(re.escape(w) for w in sorted(kinds, key=len, reverse=True))
    # The word ends right before the number: "about 31", "~31", "<7 %".
    return re.compile(r"(?:^|(?<=[\s(,;:]))(" + alts + r")\s*$", re.I), kinds


def approx_before(text: str, start: int) -> str | None:
    """The approximate kind of the words just before ``start`` ("about" for "about 31")."""
    rx, kinds = _approx_words()
    m = rx.search(text[max(0, start - 40) : start])
    return kinds.get(m.group(1).lower()) if m else None


def _overlaps(span: tuple[int, int], taken: list[tuple[int, int]]) -> bool:
    return any(a < span[1] and span[0] < b for a, b in taken)


def quantities(text: str, skip: list[tuple[int, int]]) -> list[Quantity]:
    """Values in ``text`` (see the module doc); spans in ``skip`` (dates, codes) are not values."""
    out: list[Quantity] = []
    taken = list(skip) + [m.span() for m in _EVERY.finditer(text)]
    taken += [m.span() for m in _NAME_DIGITS.finditer(text)]
    taken += [m.span() for m in _PERIOD.finditer(text)]
    for m in _IN_VOLUME.finditer(text):
        if _overlaps(m.span(), taken):
            continue
        ap = approx_before(text, m.start())
        out.append(Quantity(m.group(1), m.group(2), m.span(1), ap))
        out.append(Quantity(m.group(3), m.group(4), m.span(3), ap))
        taken.append(m.span())
    for m in _PAIR.finditer(text):
        if _overlaps(m.span(), taken):
            continue
        ap = approx_before(text, m.start())
        out.append(Quantity(m.group(1), m.group(3), m.span(1), ap))
        out.append(Quantity(m.group(2), m.group(3), m.span(2), ap))
        taken.append(m.span())
    for m in _BP.finditer(text):
        if _overlaps(m.span(), taken):
            continue
        unit = m.group(3) or "mmHg"
        ap = approx_before(text, m.start())
        top, bottom = int(m.group(1)), int(m.group(2))
        if not m.group(3) and not (50 <= top <= 300 and 20 <= bottom < top):
            # "10/10" pain, "20/20" vision: a score out of a maximum, not a pressure
            out.append(Quantity(m.group(1), None, m.span(1), ap))
            taken.append(m.span())
            continue
        out.append(Quantity(m.group(1), unit, m.span(1), ap))
        out.append(Quantity(m.group(2), unit, m.span(2), ap))
        taken.append(m.span())
    for m in _RATIO.finditer(text):
        if _overlaps(m.span(), taken):
            continue
        a, b = m.group(1), m.group(2)
        # "at 8:30", "10:15 am": a clock time, not a ratio
        clock = len(b) == 2 and "." not in a + b and int(a) <= 23 and int(b) < 60
        if clock or _TIME_CUE.search(text[: m.start()]) or _TIME_CUE.search(text[m.end() :]):
            taken.append(m.span())
            continue
        out.append(Quantity(f"{a}:{b}", "ratio", m.span(), approx_before(text, m.start())))
        taken.append(m.span())
    taken += [m.span(1) for m in bare_year_matches(text, taken)]
    for m in _QTY.finditer(text):
        if _overlaps(m.span(), taken):
            continue
        out.append(
            Quantity(
                m.group(1).replace(",", ""), m.group(2), m.span(), approx_before(text, m.start())
            )
        )
    for q in out:
        q.per_day = bool(q.unit and DAILY_AFTER.match(text[q.span[1] :]))
    return sorted(out, key=lambda q: q.span)


def bare_year_matches(text: str, skip: list[tuple[int, int]]) -> list[re.Match[str]]:
    return [m for m in _YEAR.finditer(text) if not _overlaps(m.span(1), skip)]


def bare_years(text: str, skip: list[tuple[int, int]]) -> list[DateFact]:
    """Years written alone ("diagnosed 2019", "(1987)"): dates to check, not quantities."""
    return [
        DateFact(int(m.group(1)), None, None, m.group(1), m.span(1))
        for m in bare_year_matches(text, skip)
    ]


def value_of(text: str) -> float | None:
    """The number a quantity's text stands for ("1:1000" -> 0.001)."""
    a, sep, b = text.partition(":")
    try:
        return float(a) / float(b) if sep else float(text)
    except (ValueError, ZeroDivisionError):
        return None


def concentrations_in(text: str) -> list[tuple[float, str]]:
    """Concentrations written as an amount in a volume: "250 mg/5 mL" -> (50, "mg/ml")."""
    out: list[tuple[float, str]] = []
    for m in _IN_VOLUME.finditer(text):
        vol = float(m.group(3)) * (1000.0 if m.group(4).lower() == "l" else 1.0)
        if vol > 0:
            out.append((float(m.group(1)) / vol, f"{m.group(2).lower()}/ml"))
    return out
