"""Dates as a FHIR chart writes them: ``date``, ``dateTime`` or ``instant``, possibly partial.

FHIR allows a year ("2021"), a month ("2021-03") or a day ("2021-03-04"), and a time only after a
full day ("2021-03-04T10:00:00-05:00"). The day is read as written, before any time zone: that is
the day the chart shows a clinician and the one a draft copies, so no conversion may move it.

Two questions, two functions: ``day_of`` (which calendar day, for windows and comparisons: a
partial date answers none, since "2021" is not a day) and ``date_text`` (the date as text at the
precision the chart wrote it, for drafts). Dates written inside free text (statements) are a
different job: ``chartdraft_guardrails.dates``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

# Year, optional month, optional day; after a full day only a time may follow ('T', or the space
# some exports write). Anything else is not a FHIR date and reads as no date at all.
_FHIR_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2})(?:[T ].*)?)?)?", re.S)


@dataclass(frozen=True)
class FhirDate:
    """A chart date at its own precision: ``month`` and ``day`` are None where it stops."""

    year: int
    month: int | None = None
    day: int | None = None

    @property
    def text(self) -> str:
        """ISO text at the written precision: ``2021``, ``2021-03`` or ``2021-03-04``."""
        out = f"{self.year:04d}"
        if self.month is not None:
            out += f"-{self.month:02d}"
            if self.day is not None:
                out += f"-{self.day:02d}"
        return out

    def as_day(self) -> date | None:
        """The calendar day, or None when the chart gave only a year or a month."""
        if self.month is None or self.day is None:
            return None
        return date(self.year, self.month, self.day)


def parse_fhir_date(value: object) -> FhirDate | None:
    """A FHIR date/dateTime/instant at its precision; None when missing or not a valid date."""
    if not isinstance(value, str):
        return None
    m = _FHIR_DATE.fullmatch(value.strip())
    if m is None:
        return None
    year = int(m.group(1))
    month = int(m.group(2)) if m.group(2) else None
    day = int(m.group(3)) if m.group(3) else None
    try:
        # Validates month and day (no 2021-02-30); year 0 is not a date either.
        date(year, month or 1, day or 1)
    except ValueError:
        return None
    return FhirDate(year, month, day)


def day_of(value: object) -> date | None:
    """The calendar day of a FHIR date/dateTime, or None when missing, partial or malformed."""
    parsed = parse_fhir_date(value)
    return parsed.as_day() if parsed is not None else None


def date_text(value: object) -> str | None:
    """The date part as a draft writes it (``2023-04-02T10:00:00Z`` -> ``2023-04-02``,
    ``2021-03`` stays ``2021-03``); None when missing or malformed, so no junk reaches a draft."""
    parsed = parse_fhir_date(value)
    return parsed.text if parsed is not None else None
