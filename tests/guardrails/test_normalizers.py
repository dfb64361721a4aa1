"""Dates, units, frequencies, readability: the normalizers the checks rely on."""

from __future__ import annotations

import socket

import pytest
from chartdraft_guardrails.dates import find_dates, parse_iso, supports
from chartdraft_guardrails.lexicon import canonical, frequencies
from chartdraft_guardrails.readability import fk_grade, syllables
from chartdraft_guardrails.units import same_quantity


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("on 2019-03-01", "2019-03-01"),
        ("on March 1, 2019", "2019-03-01"),
        ("on 1 March 2019", "2019-03-01"),
        ("on 03/01/2019", "2019-03-01"),  # US order
        ("in August 2018", "2018-08"),
        ("in 2017", "2017"),
        ("Mar. 3rd, 2020", "2020-03-03"),
    ],
)
def test_dates_in_any_common_format(text: str, iso: str) -> None:
    assert [d.iso() for d in find_dates(text)] == [iso]


def test_date_precision_decides_support() -> None:
    chart = parse_iso("2019-03-14T10:00:00+00:00")
    assert chart is not None
    assert supports(find_dates("in March 2019")[0], chart)
    assert not supports(find_dates("on March 13, 2019")[0], chart)
    assert not supports(find_dates("in 2018")[0], chart)


def test_blood_pressure_is_not_a_date() -> None:
    assert find_dates("BP 120/80 mmHg") == []


@pytest.mark.parametrize(
    ("stated", "unit", "value", "chart_unit", "ok"),
    [
        ("500", "mg", 500, "mg", True),
        ("0.5", "g", 500, "mg", True),
        ("16.6", "g/dL", 16.556, "g/dL", True),
        ("17", "g/dL", 16.556, "g/dL", True),
        ("16", "g/dL", 16.556, "g/dL", False),
        ("11.2", "g/dL", 16.556, "g/dL", False),
        ("6.8", "K/uL", 6.8, "10*3/uL", True),
        ("6.8", "x10^3/uL", 6.8, "10*3/uL", True),
        ("44", "mcg", 0.044, "mg", True),
        ("500", "mg", 500, "mL", False),  # different dimension
    ],
)
def test_quantities_convert_and_round(
    stated: str, unit: str, value: float, chart_unit: str, ok: bool
) -> None:
    assert same_quantity(stated, unit, value, chart_unit) is ok


def test_frequencies_and_brands_normalize() -> None:
    assert (
        frequencies("BID") == frequencies("twice daily") == frequencies("every 12 hours") == {2.0}
    )
    assert frequencies("qd") == frequencies("once a day") == {1.0}
    assert "metformin" in canonical("Glucophage 500 mg")
    assert "hypertension" in canonical("high blood pressure")


def test_readability_offline_and_graded(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_network(self: socket.socket, address: object) -> None:
        raise AssertionError(f"network call attempted: {address}")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    simple = fk_grade("Take one pill each day. Drink water. Call us if you feel sick.")
    hard = fk_grade(
        "Administer the antihypertensive medication consistently, monitoring for orthostatic "
        "hypotension, electrolyte abnormalities, and deteriorating renal function."
    )
    assert simple.grade < 6 < hard.grade
    assert syllables("medication") >= 4 and syllables("day") == 1


def test_readability_grades_label_words_as_one_syllable() -> None:
    """Drug names and units are printed on the label and cannot be reworded; the rest is graded."""
    from chartdraft_guardrails.readability import check_readability, label_words

    label = label_words(["Acetaminophen 325 MG Oral Tablet", "oxycodone hydrochloride 5 MG"])
    med = "New medicine: oxycodone hydrochloride 5 mg. Take 1 tablet by mouth as needed for pain."
    assert fk_grade(med, label).grade < fk_grade(med).grade
    assert check_readability("Your medicines", [med], label=label)["ok"]
    # A label word makes nothing else easy: long instructions around it are still graded.
    hard = (
        "Administer acetaminophen consistently, monitoring for orthostatic hypotension, "
        "electrolyte abnormalities, and deteriorating renal function."
    )
    assert not check_readability("Your medicines", [hard], label=label)["ok"]
    # Words count the same (sentence length is unchanged); only their syllables differ.
    assert fk_grade(med, label).words == fk_grade(med).words
