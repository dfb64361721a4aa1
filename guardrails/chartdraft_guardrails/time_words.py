"""Approximate time words and ages in a statement, as date windows (data/time_words.yaml).

"late March 2017" is 2017-03-19..31, "mid-2020" is April to September 2020, "the early 1990s"
1990-1993, "spring 2020" March to May 2020, "about 2015" 2014-2016; "at age 46", "when she was
46", "in her teens", "as a child" are ages, checked against the patient's birth date. A month and
day without a year ("on November 29") keeps year 0 and is compared by month and day. Relative
words ("a few years ago", "last spring") need the draft's date and are not read here.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from datetime import date
from functools import lru_cache
from typing import Any

from chartdraft_guardrails.dates import _MON, MONTHS, DateFact
from chartdraft_guardrails.terminology import data_yaml
from retrieval.errors import BadInput

_WHERE = "chartdraft_guardrails/data/time_words.yaml"
_Y = r"(?P<y>(?:19|20)\d\d)"
# Month names that are never ordinary words ("may" and "mar" are): safe without a preposition.
_MON_SAFE = (r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|march|apr(?:il)?|june?|july?|aug(?:ust)?|"
             r"sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?")
_PERSON = r"(?:he|she|they|you|i|we|the patient|patient)"
_COUNT_WORDS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12,
                "fourteen": 14}  # fmt: skip
_UNIT_DAYS = {"day": 1, "night": 1, "week": 7, "month": 30, "year": 365}
_NUMBER_WORDS = {"twenties": 20, "thirties": 30, "forties": 40, "fifties": 50, "sixties": 60,
                 "seventies": 70, "eighties": 80, "nineties": 90}  # fmt: skip


@lru_cache(maxsize=1)
def _table() -> dict[str, Any]:
    raw = data_yaml("time_words.yaml", "time words")
    need = ("part_of_month", "part_of_year", "part_of_decade", "seasons", "life_stages")
    missing = [k for k in need if not isinstance(raw.get(k), dict)]
    if missing:
        raise BadInput(
            f"time words lack {', '.join(missing)}", where=_WHERE, fix="see the file's header"
        )
    return raw


def _alts(words: Any) -> str:
    return "|".join(re.escape(str(w)) for w in sorted(words, key=len, reverse=True))


@lru_cache(maxsize=1)
def _patterns() -> list[tuple[str, re.Pattern[str]]]:
    t = _table()
    pm, py = _alts(t["part_of_month"]), _alts(t["part_of_year"])
    pd, seasons = _alts(t["part_of_decade"]), _alts(t["seasons"])
    stages = _alts(t["life_stages"])
    decade_words = _alts(t.get("decade_words") or _NUMBER_WORDS)
    pl = _alts(t.get("part_of_life_decade") or t["part_of_decade"])
    poss = r"(?:his|her|their|your|my|the patient's)"
    rows: list[tuple[str, str]] = [
        # "cleared up in about 10 days", "went home after two nights in the hospital": how long
        # something lasted (an instruction's "for 10 days" is instructions.py's)
        ("duration", r"\b(?:cleared(?: up)?|resolved|healed|lasted|recovered|went home|"
         r"discharged|stayed|improved|got better)\b[^.;]{0,40}?\b(?:in|after|within|over|for)\s+"
         r"(?P<approx>about |around |roughly |approximately |nearly |almost |just over |"
         r"just under )?"
         r"(?P<n>\d{1,3}|" + "|".join(_COUNT_WORDS) + r")\s+(?P<u>day|night|week|month|year)s?\b"),
        ("part_month", r"\b(?:the\s+)?(?P<part>" + pm + r")(?:-|\s+of\s+|\s+)" + _MON
         + r",?\s+(?:of\s+)?" + _Y + r"\b"),
        ("part_year", r"\b(?:the\s+)?(?P<part>" + py + r")(?:-|\s+of\s+|\s+)(?:in\s+)?" + _Y
         + r"\b(?!s)"),
        ("decade", r"\b(?:the\s+)?(?:(?P<part>" + pd + r")[- ])?(?P<dec>(?:19|20)\d0)'?s\b"),
        ("season", r"\b(?P<season>" + seasons + r")(?:\s+of)?,?\s+" + _Y + r"\b"),
        ("about_year", r"\b(?:about|around|approximately|circa|roughly|c\.)\s+(?:in\s+)?"
         + _Y + r"\b"),
        # "between 2013 and 2015", "from 2018 to 2020": two years
        ("year_range", r"\b(?:between|from)\s+(?P<y1>(?:19|20)\d\d)\s+(?:and|to|through|until)"
         r"\s+(?P<y2>(?:19|20)\d\d)\b"),
        ("life_decade", r"\bin\s+" + poss + r"\s+(?:(?P<part>" + pl + r")[- ]?)?"
         r"(?:(?P<dec>[1-9]0)'?s|(?P<word>" + decade_words + r"|teens))\b"),
        ("stage", r"\b(?:as an?|when (?:he|she|they|you|i) (?:was|were) an?|in " + poss + r")"
         r"\s*(?P<stage>" + stages + r"|childhood|infancy)\b"),
        ("age_at", r"\b(?:at|by|from)\s+(?:the\s+)?age\s+(?:of\s+)?(?P<n>\d{1,3})\b"),
        ("age_at", r"\baged?\s+(?P<n>\d{1,3})\b(?!\.?\d)"),
        ("age_old", r"\b(?P<n>\d{1,3})[- ]years?[- ]old\b"),
        ("age_at", r"\b(?P<n>\d{1,3})\s+years?\s+of\s+age\b"),
        ("age_person", r"\b" + _PERSON + r"\s+(?:was|were|is|are|turned)\s+(?P<n>\d{1,3})(?!\.?\d)"
         r"(?=\s*(?:,|;|when|at|on|during|in|before|after|and|years?\b|$|\.))"),
        # "quit at 16", "started smoking at 15": an age, not a clock time ("at 8:00")
        ("age_quit", r"\b(?:quit|stopped|started|began|diagnosed|retired)(?:\s+[a-z]+)?\s+at\s+"
         r"(?P<n>\d{1,3})\b(?![:]|\.?\d)"),
        ("age_comma", r",\s*(?P<n>\d{1,3}),?\s+(?=(?:at|when|during)\s+"
         r"(?:his|her|their|your|the)\b)"),
        ("md_range", _MON + r"\s+(?P<d1>[0-3]?\d)(?:st|nd|rd|th)?\s*(?:-|–|to|through|and|&)\s*"
         r"(?P<d2>[0-3]?\d)(?:st|nd|rd|th)?,?\s+" + _Y + r"\b"),
        ("md", r"\b(?:on|by|from|since|until|till|to|through|before|after|of)\s+(?:the\s+)?"
         + _MON + r"\s+(?P<d>[0-3]?\d)(?:st|nd|rd|th)?\b(?!,?\s*(?:19|20)\d\d)"
         r"(?!\s*(?:mg|mcg|g|ml|units?|%|tablets?|capsules?|puffs?|drops?)\b)"),
        # "from 3 to 9 September 1971", "30-31 May 1989": a day range, day first
        ("dm_range", r"\b(?P<d1>[0-3]?\d)(?:st|nd|rd|th)?\s*(?:-|–|to|through|and|&)\s*"
         r"(?P<d2>[0-3]?\d)(?:st|nd|rd|th)?\s+" + _MON + r",?\s+" + _Y + r"\b"),
        # "from 27 July to 10 August 2017", "on 28 March", "(31 Oct)": day and month, no year
        ("md", r"(?<![\d.,/:])\b(?P<d>[0-3]?\d)(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MON_SAFE
         + r"(?!\.?,?\s*(?:of\s+)?(?:19|20)\d\d)\b"),
        ("md", r"\b(?:on|by|from|since|until|till|to|through|before|after|of|at the)\s+"
         r"(?:the\s+)?(?P<d>[0-3]?\d)(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MON
         + r"(?!\.?,?\s*(?:of\s+)?(?:19|20)\d\d)\b"),
        ("from_month", r"\b(?:from|between)\s+(?:early |mid-?|late )?" + _MON
         + r"\s+(?=(?:to|through|until|till|and|-)\s)"),
        # "in mid-March", "by late May" with no year: the month is still checked
        ("month", r"\b(?:in|during|since|by|until|through)\s+(?:(?:the\s+)?(?:early|mid|late|"
         r"beginning|start|end|middle)(?:-|\s+of\s+|\s+))?" + _MON
         + r"(?!\s*(?:\d|of\s+(?:19|20)\d\d))\b"),
    ]
    return [(kind, re.compile(rx, re.I)) for kind, rx in rows]


_MONTH_CUES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_POSS_CUES = ("in his", "in her", "in their", "in your", "in my", "in the patient")
# Substrings one of which a pattern needs before it can match: most statements skip most scans.
_CUES: dict[str, tuple[str, ...]] = {
    "part_month": ("early", "mid", "late", "beginning", "start", "end"),
    "part_year": ("early", "mid", "late", "beginning", "start", "end"),
    "decade": ("0s", "0's"),
    "season": ("spring", "summer", "fall", "autumn", "winter"),
    "about_year": ("about", "around", "approx", "circa", "roughly", "c."),
    "year_range": ("between", "from"),
    "life_decade": _POSS_CUES,
    "stage": ("as a", "when ", *_POSS_CUES),
    "age_at": ("age",),
    "age_old": ("old",),
    "age_person": (" was ", " were ", " is ", " are ", "turned"),
    "age_quit": ("quit", "stopped", "started", "began", "diagnosed", "retired"),
    "age_comma": (", ",),
    "md_range": _MONTH_CUES,
    "dm_range": _MONTH_CUES,
    "md": _MONTH_CUES,
    "from_month": ("from", "between"),
    "month": _MONTH_CUES,
    "duration": ("cleared", "resolved", "healed", "lasted", "recovered", "went home",
                 "discharged", "stayed", "improved", "got better"),
}  # fmt: skip


def _last(y: int, m: int) -> int:
    return calendar.monthrange(y, m)[1]


def _years_after(d: date, n: int) -> date:
    try:
        return d.replace(year=d.year + n)
    except ValueError:  # 29 February
        return d.replace(year=d.year + n, day=28)


def age_window(birth: date, age: tuple[int, int]) -> tuple[date, date]:
    """The days on which someone born on ``birth`` was between ``age[0]`` and ``age[1]``."""
    lo = _years_after(birth, age[0])
    hi = date.fromordinal(_years_after(birth, age[1] + 1).toordinal() - 1)
    return lo, hi


def _fact(kind: str, m: re.Match[str], t: dict[str, Any]) -> DateFact | None:
    g = {k: v.lower() if isinstance(v, str) else v for k, v in m.groupdict().items()}
    text, span = m.group(0), m.span()
    if kind == "part_month":
        y, mon = int(g["y"]), MONTHS[g["mon"].rstrip(".")]
        lo, hi = t["part_of_month"][g["part"]]
        w = (date(y, mon, lo), date(y, mon, min(hi, _last(y, mon))))
        return DateFact(y, mon, None, text, span, windows=(w,))
    if kind == "part_year":
        y = int(g["y"])
        lo, hi = t["part_of_year"][g["part"]]
        return DateFact(y, None, None, text, span, windows=((date(y, lo, 1),
                                                              date(y, hi, _last(y, hi))),))
    if kind == "decade":
        d0 = int(g["dec"])
        lo, hi = t["part_of_decade"][g["part"]] if g.get("part") else (0, 9)
        return DateFact(d0 + lo, None, None, text, span,
                        windows=((date(d0 + lo, 1, 1), date(d0 + hi, 12, 31)),))
    if kind == "season":
        y = int(g["y"])
        a, b = t["seasons"][g["season"]]
        if a <= b:
            ws: tuple[tuple[date, date], ...] = ((date(y, a, 1), date(y, b, _last(y, b))),)
        else:  # winter: the one that ends in y or the one that starts in y
            ws = ((date(y - 1, a, 1), date(y, b, _last(y, b))),
                  (date(y, a, 1), date(y + 1, b, _last(y + 1, b))))
        return DateFact(y, None, None, text, span, windows=ws)
    if kind == "about_year":
        y, n = int(g["y"]), int(t.get("about_years", 1))
        return DateFact(y, None, None, text, span, windows=((date(y - n, 1, 1),
                                                              date(y + n, 12, 31)),))
    if kind == "life_decade":
        if g.get("word") == "teens":
            lo, hi = t["life_stages"]["teens"]
        else:
            dec = int(g["dec"]) if g.get("dec") else int(
                (t.get("decade_words") or _NUMBER_WORDS)[g["word"]])
            plo, phi = (t.get("part_of_life_decade") or t["part_of_decade"]).get(
                g.get("part") or "", (0, 9))
            lo, hi = dec + plo, dec + phi
        return DateFact(0, None, None, text, span, age=(int(lo), int(hi)))
    if kind == "stage":
        stage = {"childhood": "child", "infancy": "infant"}.get(g["stage"], g["stage"])
        lo, hi = t["life_stages"][stage]
        return DateFact(0, None, None, text, span, age=(int(lo), int(hi)))
    if kind.startswith("age"):
        n = int(g["n"])
        return DateFact(0, None, None, text, span, age=(n, n)) if n <= 120 else None
    if kind == "md":
        mon, d = MONTHS[g["mon"].rstrip(".")], int(g["d"])
        if not 1 <= d <= 31:
            return None
        return DateFact(0, mon, d, text, span)
    if kind == "duration":
        n = int(g["n"]) if g["n"].isdigit() else _COUNT_WORDS[g["n"]]
        days = n * _UNIT_DAYS[g["u"]]
        # exact: a day either side (a week, a month: a little more); "about": a fifth either side
        slack = max(1, days // 5) if g.get("approx") else max(1, days // 10)
        dspan = (m.start("n") if not g.get("approx") else m.start("approx"), m.end())
        return DateFact(0, None, None, m.group(0)[dspan[0] - span[0]:], dspan,
                        duration=(max(0, days - slack), days + slack))
    if kind in ("from_month", "month"):
        return DateFact(0, MONTHS[g["mon"].rstrip(".")], None, text, span)
    return None


def _md_range(m: re.Match[str]) -> Iterator[DateFact]:
    y, mon = int(m.group("y")), MONTHS[m.group("mon").lower().rstrip(".")]
    for k in ("d1", "d2"):
        d = int(m.group(k))
        if 1 <= d <= _last(y, mon):
            yield DateFact(y, mon, d, m.group(0), m.span(k) if k == "d1" else
                           (m.span(k)[0], m.end()))


def approximate_dates(text: str, taken: list[tuple[int, int]]) -> list[DateFact]:
    """Windows, ages and yearless days in ``text`` (lower-cased), outside the ``taken`` spans.

    Returns facts with their spans; a yearless month or day followed by a dated one in a range
    ("from March to late May 2017", "November 18 to November 20, 2026") takes that year.
    """
    t = _table()
    found: list[DateFact] = []
    spans = list(taken)
    lower = text.lower()
    for kind, pat in _patterns():
        if not any(c in lower for c in _CUES[kind]):
            continue
        for m in pat.finditer(text):
            # a length of time claims only its number ("two nights"), not the words before it
            mspan = (m.start("n") if m.group("approx") is None else m.start("approx"), m.end()) \
                if kind == "duration" else m.span()
            if any(a < mspan[1] and mspan[0] < b for a, b in spans):
                continue
            if kind in ("md_range", "dm_range"):
                facts = list(_md_range(m))
            elif kind == "year_range":
                facts = [DateFact(int(m.group(k)), None, None, m.group(k), m.span(k))
                         for k in ("y1", "y2")]
            else:
                f = _fact(kind, m, t)
                facts = [f] if f else []
            if facts:
                found += facts
                spans.append(mspan)
    return found


@lru_cache(maxsize=1)
def _anchors() -> re.Pattern[str] | None:
    items = _table().get("anchors") or []
    if not items:
        return None
    return re.compile(r"\b(?:" + "|".join(f"(?:{a})" for a in items) + r")\b", re.I)


def blank_anchors(canon: str) -> str:
    """Blank "on admission", "at discharge"...: time words of a stay, not clinical concepts.

    Positions are kept (spaces), so spans found later still point into the statement.
    """
    rx = _anchors()
    if rx is None or not ("admission" in canon or "discharge" in canon or "arrival" in canon):
        return canon
    return rx.sub(lambda m: " " * len(m.group(0)), canon)


def inherit_years(facts: list[DateFact]) -> list[DateFact]:
    """A yearless month/day takes the year of the next dated fact of its range (within 40 chars)."""
    facts = sorted(facts, key=lambda f: f.span)
    out: list[DateFact] = []
    for i, f in enumerate(facts):
        if f.year == 0 and f.age is None and f.month:
            nxt = next((g for g in facts[i + 1 :] if g.year and g.age is None), None)
            if nxt is not None and nxt.span[0] - f.span[1] <= 40:
                day = f.day if f.day and f.day <= _last(nxt.year, f.month) else None
                f = DateFact(nxt.year, f.month, day, f.text, f.span)
        out.append(f)
    return out
