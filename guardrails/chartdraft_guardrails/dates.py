"""Dates in statements and in evidence, at the precision they were written.

"2019-03-01", "March 1, 2019", "1 March 2019", "03/01/2019" (US order) are day precision;
"March 2019", "in August 2018", "03/2019" month; "in 2018" year. A date supports another when they
agree at the coarser of the two precisions the statement states (a statement "in March 2019" is
backed by 2019-03-14). Relative phrases ("yesterday", "3 days ago") resolve only with a reference
date; without one they are not extracted (nothing to check them against).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ]
    )
    for m in names
}
_MON = r"(?P<mon>jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"  # noqa: E501

_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "iso",
        re.compile(r"\b(?P<y>(?:19|20)\d\d)-(?P<m>[01]\d)(?:-(?P<d>[0-3]\d))?(?:T[\d:.+\-Z]*)?"),
    ),
    (
        "mdy_text",
        re.compile(_MON + r"\s+(?P<d>[0-3]?\d)(?:st|nd|rd|th)?,?\s+(?P<y>(?:19|20)\d\d)\b", re.I),
    ),
    (
        "dmy_text",
        re.compile(
            r"\b(?P<d>[0-3]?\d)(?:st|nd|rd|th)?\s+" + _MON + r",?\s+(?P<y>(?:19|20)\d\d)\b", re.I
        ),
    ),
    ("my_text", re.compile(r"\b" + _MON + r",?\s+(?:of\s+)?(?P<y>(?:19|20)\d\d)\b", re.I)),
    ("us_slash", re.compile(r"\b(?P<m>[01]?\d)/(?P<d>[0-3]?\d)/(?P<y>(?:19|20)\d\d)\b")),
    ("month_slash", re.compile(r"\b(?P<m>[01]?\d)/(?P<y>(?:19|20)\d\d)\b")),
    (
        "year",
        re.compile(r"\b(?:in|since|from|during|of|until|through)\s+(?P<y>(?:19|20)\d\d)\b", re.I),
    ),
]
_RELATIVE = re.compile(
    r"\b(?:(?P<n>\d+)\s+(?P<unit>day|week|month|year)s?\s+ago|(?P<yest>yesterday)|(?P<today>today))\b",
    re.I,
)


@dataclass(frozen=True)
class DateFact:
    """A date at the precision written. ``year`` 0: a month and day written without a year.

    ``windows``: an approximate time ("late March 2017", "spring 2020") stands for any day in one
    of these intervals. ``age``: an age in years (youngest, oldest), checked against a birth date.
    """

    year: int
    month: int | None = None
    day: int | None = None
    text: str = ""
    span: tuple[int, int] = (0, 0)
    windows: tuple[tuple[date, date], ...] = ()
    age: tuple[int, int] | None = None
    # "cleared up in about 10 days": a length of time in days (shortest, longest), checked
    # against a cited resource's start and end (support.py)
    duration: tuple[int, int] | None = None

    def iso(self) -> str:
        if self.duration is not None:
            lo, hi = self.duration
            return f"{lo} days" if lo == hi else f"{lo}-{hi} days"
        if self.age is not None:
            lo, hi = self.age
            return f"age {lo}" if lo == hi else f"age {lo}-{hi}"
        if self.windows:
            return " or ".join(f"{a.isoformat()}..{b.isoformat()}" for a, b in self.windows)
        if self.year == 0:
            return f"--{self.month or 0:02d}" + (f"-{self.day:02d}" if self.day else "")
        out = f"{self.year:04d}"
        if self.month:
            out += f"-{self.month:02d}"
            if self.day:
                out += f"-{self.day:02d}"
        return out


def _make(
    y: str, m: str | int | None, d: str | None, text: str, span: tuple[int, int]
) -> DateFact | None:
    year = int(y)
    month = int(m) if m not in (None, "") else None
    day = int(d) if d else None
    if month is not None and not 1 <= month <= 12:
        return None
    if day is not None:
        try:
            date(year, month or 1, day)
        except ValueError:
            return None
    return DateFact(year, month, day, text, span)


def find_dates(text: str, *, today: date | None = None) -> list[DateFact]:
    """Every date written in ``text``, each with its character span (no overlaps)."""
    from chartdraft_guardrails.time_words import approximate_dates, inherit_years

    # approximate words first: "late March 2017" is one window, not "March 2017"; yearless
    # days ("on November 29") only where no full date was written
    approx = approximate_dates(text, [])
    found: list[DateFact] = [f for f in approx if f.year or f.age or f.duration]
    yearless = [f for f in approx if not (f.year or f.age or f.duration)]
    taken: list[tuple[int, int]] = [f.span for f in found]
    for _kind, pat in _PATTERNS:
        for m in pat.finditer(text):
            span = m.span()
            if any(a < span[1] and span[0] < b for a, b in taken):
                continue
            g = m.groupdict()
            month: str | int | None = g.get("m")
            if g.get("mon"):
                month = MONTHS[g["mon"].lower().rstrip(".")]
            fact = _make(g["y"], month, g.get("d"), m.group(0), span)
            if fact is not None:
                found.append(fact)
                taken.append(span)
    if today is not None:
        for m in _RELATIVE.finditer(text):
            if m.group("today"):
                d = today
            elif m.group("yest"):
                d = today - timedelta(days=1)
            else:
                n, unit = int(m.group("n")), m.group("unit").lower()
                days = {"day": 1, "week": 7, "month": 30, "year": 365}[unit] * n
                d = today - timedelta(days=days)
                if unit in ("month", "year"):  # approximate: only the coarser part is checkable
                    found.append(
                        DateFact(
                            d.year, d.month if unit == "month" else None, None, m.group(0), m.span()
                        )
                    )
                    continue
            found.append(DateFact(d.year, d.month, d.day, m.group(0), m.span()))
    # a month or day without a year ("on November 29", "from March to ...")
    found += [
        f for f in yearless if not any(a < f.span[1] and f.span[0] < b for a, b in taken)
    ]
    return inherit_years(found)


def parse_iso(value: object) -> DateFact | None:
    """An evidence date field (ISO date or datetime, possibly partial)."""
    if not isinstance(value, str):
        return None
    m = re.match(r"^((?:19|20)\d\d)(?:-([01]\d))?(?:-([0-3]\d))?", value.strip())
    if not m:
        return None
    return _make(m.group(1), m.group(2), m.group(3), value, (0, 0))


def interval(f: DateFact) -> tuple[date, date] | None:
    """The days a dated fact covers at its precision (None: an age or a yearless day)."""
    if f.age is not None or f.year == 0:
        return None
    if f.windows:
        return min(a for a, _ in f.windows), max(b for _, b in f.windows)
    if f.month is None:
        return date(f.year, 1, 1), date(f.year, 12, 31)
    last = calendar.monthrange(f.year, f.month)[1]
    if f.day is None:
        return date(f.year, f.month, 1), date(f.year, f.month, last)
    d = date(f.year, f.month, f.day)
    return d, d


def _within(known: DateFact, windows: tuple[tuple[date, date], ...]) -> bool:
    """The chart's date lies inside a window (at its precision: a month must fit entirely)."""
    k = interval(known)
    return k is not None and any(a <= k[0] and k[1] <= b for a, b in windows)


def supports(stated: DateFact, known: DateFact, birth: date | None = None) -> bool:
    """``known`` (from the chart) backs ``stated`` at the precision the statement wrote.

    An approximate time is backed by a chart date inside its window; an age by a chart age that
    overlaps it, or by a chart date on which the patient (born ``birth``) had that age.
    """
    if stated.duration is not None or known.duration is not None:
        return False  # a length of time is checked against a start and an end, not a date
    if stated.age is not None:
        if known.age is not None:
            return known.age[0] <= stated.age[1] and stated.age[0] <= known.age[1]
        if birth is None or (known.year, known.month, known.day) == (
            birth.year,
            birth.month,
            birth.day,
        ):
            return False
        return _within(known, (age_window(birth, stated.age),))
    if known.age is not None:
        return False
    if stated.year == 0:  # "on November 29": month and day only
        return bool(known.year) and known.month == stated.month and (
            stated.day is None or known.day == stated.day
        )
    if stated.windows:
        return _within(known, stated.windows)
    if known.windows or known.year == 0:
        return False
    if stated.year != known.year:
        return False
    if stated.month is not None:
        if known.month != stated.month:
            return False
        if stated.day is not None and known.day != stated.day:
            return False
    return True


def age_window(birth: date, age: tuple[int, int]) -> tuple[date, date]:
    from chartdraft_guardrails.time_words import age_window as window

    return window(birth, age)
