"""FHIR dates at their own precision: the one parser plans, knowledge, compose and evals share."""

from __future__ import annotations

from datetime import date

import pytest

from retrieval.dates import FhirDate, date_text, day_of, parse_fhir_date


@pytest.mark.parametrize(("value", "parsed"), [
    ("2021", FhirDate(2021)),
    ("2021-03", FhirDate(2021, 3)),
    ("2021-03-04", FhirDate(2021, 3, 4)),
    ("2021-03-04T10:00:00Z", FhirDate(2021, 3, 4)),
    ("2021-03-04T10:00:00.123+05:30", FhirDate(2021, 3, 4)),
    # The day as written, before its zone: 23:30 in New York is still the 4th in the chart.
    ("2021-03-04T23:30:00-05:00", FhirDate(2021, 3, 4)),
    (" 2021-03-04 ", FhirDate(2021, 3, 4)),
    ("2021-03-04 10:00:00", FhirDate(2021, 3, 4)),  # the space some exports write for 'T'
])
def test_fhir_dates_at_each_precision(value: str, parsed: FhirDate) -> None:
    assert parse_fhir_date(value) == parsed


@pytest.mark.parametrize("value", [
    None, "", "   ", 20210304, date(2021, 3, 4), "unknown", "03/04/2021", "21-03-04",
    "2021-13", "2021-02-30", "0000", "2021-3-4", "2021-03T10:00:00Z", "2021-03-04x",
])
def test_missing_or_malformed_is_no_date(value: object) -> None:
    assert parse_fhir_date(value) is None
    assert day_of(value) is None
    assert date_text(value) is None


def test_day_of_answers_only_a_whole_day() -> None:
    assert day_of("2023-04-02T10:00:00Z") == date(2023, 4, 2)
    assert day_of("2024-02-29") == date(2024, 2, 29)
    # "2021" is not a day: it can be placed in no window and compared with no day.
    assert day_of("2021") is None
    assert day_of("2021-03") is None


def test_date_text_keeps_the_written_precision() -> None:
    assert date_text("2023-04-02T10:00:00Z") == "2023-04-02"
    assert date_text("2021-03") == "2021-03"
    assert date_text("2021") == "2021"
    assert FhirDate(987).text == "0987"
