"""Several episodes of one condition, status claims per clause, and denials (episodes.py,
denials.py, contradiction.py): pass and flag rows over a chart built here."""

from __future__ import annotations

import pytest
from chartdraft_guardrails.api import check_statement
from chartdraft_guardrails.statement import CheckResult, Statement, worst

from retrieval.evidence import Evidence


def cond(cid: str, title: str, status: str, onset: str, abatement: str | None = None) -> Evidence:
    text = f"{title}, {status}, since {onset}" + (f", resolved {abatement}" if abatement else "")
    return Evidence(id=f"Condition/{cid}", patient_id="p1", resource_type="Condition", title=title,
                    text=text, date=onset, data={"clinical_status": status, "onset": onset,
                                                 "abatement": abatement})  # fmt: skip


CHART = [
    Evidence(id="Patient/p1", patient_id="p1", resource_type="Patient", title="Pat Test",
             text="Pat Test, female, born 1980-05-01", data={"birth_date": "1980-05-01"}),
    cond("sin1", "Viral sinusitis (disorder)", "resolved", "2017-07-02", "2017-07-20"),
    cond("sin2", "Viral sinusitis (disorder)", "active", "2024-02-10"),
    cond("asthma", "Asthma", "active", "2010-03-01"),
    cond("bronch", "Acute bronchitis (disorder)", "resolved", "2017-11-02", "2017-11-16"),
    cond("ear1", "Otitis media", "resolved", "2012-04-01", "2012-04-20"),
    cond("preg", "Normal pregnancy", "resolved", "2016-01-10", "2016-09-30"),
    cond("frac", "Fracture of wrist", "resolved", "2011-09-07", "2011-11-01"),
    Evidence(id="Observation/smoke", patient_id="p1", resource_type="Observation",
             title="Tobacco smoking status",
             text="Tobacco smoking status: Former smoker, on 2023-01-01",
             date="2023-01-01", data={"loinc": "72166-2", "value": "Former smoker"}),
    Evidence(id="AllergyIntolerance/peanut", patient_id="p1", resource_type="AllergyIntolerance",
             title="Allergy to peanut", text="Allergy to peanut (food), active",
             data={"substance": "peanut", "clinical_status": "active", "category": ["food"]}),
    Evidence(id="AllergyIntolerance/wheat", patient_id="p1", resource_type="AllergyIntolerance",
             title="Allergy to wheat", text="Allergy to wheat (food), inactive",
             data={"substance": "wheat", "clinical_status": "inactive", "category": ["food"]}),
    Evidence(id="Procedure/appy", patient_id="p1", resource_type="Procedure", title="Appendectomy",
             text="Appendectomy, completed, on 2005-06-01", date="2005-06-01",
             data={"status": "completed", "performed": "2005-06-01"}),
]  # fmt: skip


def run(text: str, cites: list[str]) -> list[CheckResult]:
    by_id = {e.id: e for e in CHART}
    return check_statement(Statement(text=text, citations=cites),
                           cited=[by_id[c] for c in cites], chart=CHART, shown_ids=set(by_id),
                           patient_id="p1", doc_type="summary")  # fmt: skip


PASS = [
    # the cited episode is resolved; another, active sinusitis does not refute that
    ("Her viral sinusitis from July 2017 has resolved.", ["Condition/sin1"]),
    ("The July 2017 sinusitis resolved in late July 2017.", ["Condition/sin1"]),
    ("Her current viral sinusitis is still active.", ["Condition/sin2"]),
    # one sentence, two episodes, both cited
    ("Her 2017 sinusitis resolved, but she has an active sinusitis since February 2024.",
     ["Condition/sin1", "Condition/sin2"]),
    ("Her asthma remains active, while the November 2017 bronchitis has resolved.",
     ["Condition/asthma", "Condition/bronch"]),
    ("Her ear infection in 2012 has resolved.", ["Condition/ear1"]),
    # true denials
    ("She does not smoke now; she is a former smoker.", ["Observation/smoke"]),
]

FLAG = [
    # status and date claims are judged on the episode the statement cites
    ("Her viral sinusitis from July 2017 is still active.", ["Condition/sin1"], "unsupported"),
    ("Her current viral sinusitis has resolved.", ["Condition/sin2"], "contradicted"),
    ("Her viral sinusitis began in March 2024.", ["Condition/sin2"], "unsupported"),
    ("She has an active wheat allergy.", ["AllergyIntolerance/wheat"], "unsupported"),
    ("Her wrist fracture is still healing.", ["Condition/frac"], "contradicted"),
    ("Her asthma has resolved, while the bronchitis remains active.",
     ["Condition/asthma", "Condition/bronch"], "contradicted"),
    # a contradiction check still sees the other episodes and records
    ("She has no history of sinusitis.", ["Condition/asthma"], "contradicted"),
    ("She has never had bronchitis.", [], "contradicted"),
    ("You have never had asthma.", ["Condition/asthma"], "contradicted"),
    # a denial citing the record that refutes it
    ("She has never been pregnant.", ["Condition/preg"], "contradicted"),
    ("She has never broken a bone.", ["Condition/frac"], "contradicted"),
    ("She has no ongoing medical problems.", ["Condition/asthma"], "contradicted"),
    ("She has never smoked.", ["Observation/smoke"], "contradicted"),
    ("She denies any prior surgical history.", ["Procedure/appy"], "contradicted"),
    # a denial citing a record of something else: the citation cannot back it
    ("She has no history of stroke.", ["Condition/asthma"], "unsupported"),
    ("She has no known allergies.", ["Condition/asthma"], "contradicted"),
    ("She has no known allergies.", [], "contradicted"),
]


@pytest.mark.parametrize(("text", "cites"), PASS)
def test_pass(text: str, cites: list[str]) -> None:
    res = run(text, cites)
    assert worst(res) == "supported", [r.reason for r in res if r.verdict != "supported"]


@pytest.mark.parametrize(("text", "cites", "verdict"), FLAG)
def test_flag(text: str, cites: list[str], verdict: str) -> None:
    res = run(text, cites)
    assert worst(res) == verdict, [(r.verdict, r.reason) for r in res]


def test_true_no_known_allergies_passes() -> None:
    chart = [e for e in CHART if e.resource_type != "AllergyIntolerance"] + [
        Evidence(id="AllergyIntolerance/nka", patient_id="p1", resource_type="AllergyIntolerance",
                 title="No known allergy (situation)", text="No known allergy, active",
                 data={"substance": "No known allergy (situation)", "clinical_status": "active"})
    ]  # fmt: skip
    by_id = {e.id: e for e in chart}
    res = check_statement(Statement(text="She has no known allergies.",
                                    citations=["AllergyIntolerance/nka"]),
                          cited=[by_id["AllergyIntolerance/nka"]], chart=chart,
                          shown_ids=set(by_id), patient_id="p1", doc_type="summary")  # fmt: skip
    assert worst(res) == "supported", [r.reason for r in res if r.verdict != "supported"]
