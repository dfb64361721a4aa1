"""Approximate time words, ages and yearless dates (time_words.py, dates.py): a chart date inside
the stated window supports it, one outside is flagged."""

from __future__ import annotations

import pytest
from chartdraft_guardrails.api import check_statement
from chartdraft_guardrails.dates import find_dates
from chartdraft_guardrails.statement import CheckResult, Statement, worst

from retrieval.evidence import Evidence

PATIENT = Evidence(id="Patient/p1", patient_id="p1", resource_type="Patient", title="Pat Test",
                   text="Pat Test, female, born 1952-05-23", data={"birth_date": "1952-05-23"})
CHART = [
    PATIENT,
    Evidence(id="Condition/oa", patient_id="p1", resource_type="Condition",
             title="Osteoarthritis of knee",
             text="Osteoarthritis of knee, active, since 1999-05-12",
             date="1999-05-12", data={"clinical_status": "active", "onset": "1999-05-12"}),
    Evidence(id="Condition/acl", patient_id="p1", resource_type="Condition",
             title="Injury of anterior cruciate ligament",
             text="Injury of anterior cruciate ligament, resolved, since 2017-03-21, resolved "
             "2017-05-27", date="2017-03-21",
             data={"clinical_status": "resolved", "onset": "2017-03-21",
                   "abatement": "2017-05-27"}),
    Evidence(id="Condition/htn", patient_id="p1", resource_type="Condition",
             title="Essential hypertension",
             text="Essential hypertension, active, since 1985-02-01",
             date="1985-02-01", data={"clinical_status": "active", "onset": "1985-02-01"}),
    Evidence(id="Condition/teen", patient_id="p1", resource_type="Condition", title="Acne",
             text="Acne, resolved, since 1968-06-01", date="1968-06-01",
             data={"clinical_status": "resolved", "onset": "1968-06-01"}),
    Evidence(id="Encounter/adm", patient_id="p1", resource_type="Encounter",
             title="Hospital admission", text="Hospital admission, 2020-11-18 to 2020-11-20",
             date="2020-11-18", data={"start": "2020-11-18", "end": "2020-11-20"}),
]  # fmt: skip


def run(text: str, cites: list[str], chart: list[Evidence] = CHART) -> list[CheckResult]:
    by_id = {e.id: e for e in chart}
    return check_statement(Statement(text=text, citations=cites),
                           cited=[by_id[c] for c in cites], chart=chart, shown_ids=set(by_id),
                           patient_id="p1", doc_type="summary")  # fmt: skip


PASS = [
    ("She injured her anterior cruciate ligament in late March 2017.", ["Condition/acl"]),
    ("The ligament injury had resolved by the end of May 2017.", ["Condition/acl"]),
    ("She injured her anterior cruciate ligament in spring 2017.", ["Condition/acl"]),
    ("She injured her anterior cruciate ligament in early 2017.", ["Condition/acl"]),
    ("The ligament injury lasted from March to late May 2017.", ["Condition/acl"]),
    ("She has had hypertension since the mid-1980s.", ["Condition/htn"]),
    ("She has had hypertension since 1985.", ["Condition/htn"]),
    ("She has had hypertension since about 1986.", ["Condition/htn"]),
    ("Her knee osteoarthritis was diagnosed in the late 1990s.", ["Condition/oa"]),
    ("Her knee osteoarthritis was diagnosed in mid-1999.", ["Condition/oa"]),
    # ages, against the birth date (cited Patient or the chart's)
    ("She was diagnosed with knee osteoarthritis when she was 46.",
     ["Condition/oa", "Patient/p1"]),
    ("She was diagnosed with knee osteoarthritis at age 46.", ["Condition/oa"]),
    ("She was diagnosed with knee osteoarthritis in her forties.", ["Condition/oa"]),
    ("She was diagnosed with knee osteoarthritis in her mid-40s.", ["Condition/oa"]),
    ("She had acne in her teens.", ["Condition/teen"]),
    ("She had acne as a teenager.", ["Condition/teen"]),
    # yearless days and day ranges
    ("She was in the hospital from November 18 to November 20, 2020.", ["Encounter/adm"]),
    ("She was in the hospital from November 18 to 20, 2020.", ["Encounter/adm"]),
    ("She was admitted on November 18.", ["Encounter/adm"]),
    ("She injured her knee ligament in late March; it had healed by late May.", ["Condition/acl"]),
    # how long it lasted, against the cited start and end
    ("The ligament injury healed in about 10 weeks.", ["Condition/acl"]),
    ("She went home after two nights in the hospital.", ["Encounter/adm"]),
]

FLAG = [
    ("She injured her anterior cruciate ligament in early March 2017.", ["Condition/acl"]),
    ("She injured her anterior cruciate ligament in late 2017.", ["Condition/acl"]),
    ("She injured her anterior cruciate ligament in summer 2017.", ["Condition/acl"]),
    ("She has had hypertension since the early 1990s.", ["Condition/htn"]),
    ("Her knee osteoarthritis was diagnosed in the early 1990s.", ["Condition/oa"]),
    ("She was diagnosed with knee osteoarthritis when she was 52.",
     ["Condition/oa", "Patient/p1"]),
    ("She was diagnosed with knee osteoarthritis at age 40.", ["Condition/oa"]),
    ("She was diagnosed with knee osteoarthritis in her fifties.", ["Condition/oa"]),
    ("She had acne in her twenties.", ["Condition/teen"]),
    ("She was admitted on November 21.", ["Encounter/adm"]),
    ("She injured her knee ligament in mid-September.", ["Condition/acl"]),
    ("The ligament injury healed in about 3 weeks.", ["Condition/acl"]),
    ("She went home after five nights in the hospital.", ["Encounter/adm"]),
    ("She was in the hospital from November 17 to 20, 2020.", ["Encounter/adm"]),
]


@pytest.mark.parametrize(("text", "cites"), PASS)
def test_time_word_inside_the_window_passes(text: str, cites: list[str]) -> None:
    res = run(text, cites)
    assert worst(res) == "supported", [r.reason for r in res if r.verdict != "supported"]


@pytest.mark.parametrize(("text", "cites"), FLAG)
def test_time_word_outside_the_window_is_flagged(text: str, cites: list[str]) -> None:
    res = run(text, cites)
    assert worst(res) in ("unsupported", "contradicted"), [r.reason for r in res]


def test_stay_anchors_are_time_words_not_concepts() -> None:
    from chartdraft_guardrails.facts import statement_facts

    f = statement_facts("Creatinine was 2.19 on admission and 1.26 at discharge.", frozenset())
    assert "admission" not in f.canon and "discharge" not in f.canon
    assert [q.text for q in f.quantities] == ["2.19", "1.26"]
    # the word itself, outside a time phrase, is still text to check
    assert "admission" in statement_facts("The admission was for pneumonia.", frozenset()).canon


def test_age_without_birth_date_is_not_verified() -> None:
    chart = [e for e in CHART if e.resource_type != "Patient"]
    res = run("She was diagnosed with knee osteoarthritis at age 46.", ["Condition/oa"], chart)
    assert worst(res) == "not_verified", [r.reason for r in res]
    assert "no birth date" in " ".join(r.reason for r in res)


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("in late March 2017", ["2017-03-19..2017-03-31"]),
        ("mid-2020", ["2020-04-01..2020-09-30"]),
        ("since 1987", ["1987"]),
        ("in 2019", ["2019"]),
        ("in the 1990s", ["1990-01-01..1999-12-31"]),
        ("in his 40s", ["age 40-49"]),
        ("a 7-year-old boy", ["age 7"]),
        ("between 2013 and 2015", ["2013", "2015"]),
        ("from 27 July to 10 August 2017", ["2017-07-27", "2017-08-10"]),
        ("a week later on 28 March", ["--03-28"]),
        ("admitted from 3 to 9 September 1971", ["1971-09-03", "1971-09-09"]),
        ("sputum microscopy (31 Oct), then", ["--10-31"]),
        ("the 2 may cause", []),
    ],
)
def test_find_dates(text: str, iso: list[str]) -> None:
    assert [d.iso() for d in find_dates(text)] == iso
