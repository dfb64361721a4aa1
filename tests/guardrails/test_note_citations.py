"""A whole-note citation (DocumentReference/ID) resolves to the note's sections; a dose stated
from a cited note is compared with that note, not with an active order of another dose.
Notes come from the normalized bulk export in ../shared/data/bulk-10-patients."""

from __future__ import annotations

from pathlib import Path

import pytest
from chartdraft_guardrails.api import check_statement
from chartdraft_guardrails.corpus import synthetic_charts
from chartdraft_guardrails.statement import CheckResult, Statement, worst

from retrieval.evidence import Evidence

BULK = Path(__file__).resolve().parents[3] / "shared" / "data" / "bulk-10-patients"
NOTE = "DocumentReference/00212c89-d070-985e-b695-b5f12fffd23e"


@pytest.fixture(scope="module")
def chart() -> list[Evidence]:
    if not BULK.exists():
        pytest.skip("../shared/data is absent: the bulk export is needed here")
    from retrieval.fhir_load import load_path
    from retrieval.normalize import normalize_all

    evidence, _ = normalize_all(load_path(BULK).resources)
    pid = next(e.patient_id for e in evidence if e.id.startswith(NOTE + "#"))
    return [e for e in evidence if e.patient_id == pid]


def run(chart: list[Evidence], text: str, cites: list[str],
        shown: set[str] | None = None) -> list[CheckResult]:  # fmt: skip
    by_id = {e.id: e for e in chart}
    return check_statement(Statement(text=text, citations=cites),
                           cited=[by_id[c] for c in cites if c in by_id], chart=chart,
                           shown_ids=set(by_id) if shown is None else shown,
                           patient_id=chart[0].patient_id or "", doc_type="summary")  # fmt: skip


def test_whole_note_citation_resolves_to_its_sections(chart: list[Evidence]) -> None:
    sections = [e for e in chart if e.id.startswith(NOTE + "#")]
    assert len(sections) > 1 and NOTE not in {e.id for e in chart}
    res = run(chart, "Her chief complaint was a cough in November 1987.", [NOTE])
    assert not [r for r in res if r.verdict == "invalid_citation"], [r.reason for r in res]
    assert worst(res) == "supported", [r.reason for r in res if r.verdict != "supported"]


def test_whole_note_citation_still_checks_the_facts(chart: list[Evidence]) -> None:
    res = run(chart, "Her chief complaint was a cough in March 1990.", [NOTE])
    assert worst(res) == "unsupported", [r.reason for r in res]
    assert not [r for r in res if r.verdict == "invalid_citation"]


def test_whole_note_counts_as_shown_when_its_sections_were(chart: list[Evidence]) -> None:
    sections = {e.id for e in chart if e.id.startswith(NOTE + "#")}
    others = {e.id for e in chart} - sections
    res = run(chart, "Her chief complaint was a cough.", [NOTE], shown=others | {min(sections)})
    assert not [r for r in res if r.verdict == "invalid_citation"], [r.reason for r in res]
    res = run(chart, "Her chief complaint was a cough.", [NOTE], shown=others)
    assert worst(res) == "invalid_citation"
    assert "not among the sources shown" in " ".join(r.reason for r in res)


def test_unknown_note_is_invalid(chart: list[Evidence]) -> None:
    res = run(chart, "Her chief complaint was a cough.", ["DocumentReference/nope"])
    assert worst(res) == "invalid_citation"


def _with_note() -> list[Evidence]:
    ana = synthetic_charts()["ana"]
    note = Evidence(id="DocumentReference/home#1", patient_id=ana[0].patient_id,
                    resource_type="DocumentReference", title="Admission note: Home medications",
                    text="Home medications: metformin 1000 mg twice daily before admission.",
                    date="2024-01-30", data={"note_type": "Admission note"})  # fmt: skip
    return [*ana, note]


@pytest.mark.parametrize(
    ("text", "cites", "verdict"),
    [
        # the note says 1000 mg: reported from the note, not a contradiction of the 500 mg order
        ("Before admission she took metformin 1000 mg twice daily.",
         ["DocumentReference/home#1"], "supported"),
        # the same dose citing the order, or nothing, is contradicted by the active 500 mg order
        ("She takes metformin 1000 mg twice daily.", ["MedicationRequest/met"], "contradicted"),
        ("She takes metformin 1000 mg twice daily.", [], "contradicted"),
        # a dose the note does not say is still not supported by it
        ("Before admission she took metformin 850 mg twice daily.",
         ["DocumentReference/home#1"], "contradicted"),
    ],
)
def test_dose_from_a_cited_note(text: str, cites: list[str], verdict: str) -> None:
    res = run(_with_note(), text, cites)
    assert worst(res) == verdict, [(r.verdict, r.reason) for r in res]


@pytest.mark.parametrize(
    ("text", "cites", "verdict"),
    [
        # a true fact cited to the wrong resource: compared with the CITED resource only
        ("She had a colonoscopy on 2016-10-03.", ["Procedure/colo"], "unsupported"),
        ("Her hemoglobin was 16.6 g/dL.", ["Observation/a1c"], "unsupported"),
        ("Her creatinine was 0.92 mg/dL on 2024-02-01.", ["Observation/glu"], "unsupported"),
        ("She had her flu shot on 2022-05-17.", ["Immunization/flu"], "unsupported"),
        # naming the concept only: the citation is fine whatever its date
        ("She had a colonoscopy.", ["Procedure/colo"], "supported"),
        ("She had a colonoscopy on 2022-05-17.", ["Procedure/colo"], "supported"),
        ("She had a colonoscopy in 2022 and a cholecystectomy in 2016.",
         ["Procedure/colo", "Procedure/chole"], "supported"),
        ("Her hemoglobin was 16.6 g/dL.", ["Observation/hgb"], "supported"),
    ],
)
def test_fact_is_compared_with_the_cited_resource(
    text: str, cites: list[str], verdict: str
) -> None:
    res = run(synthetic_charts()["ana"], text, cites)
    assert worst(res) == verdict, [(r.verdict, r.reason) for r in res]
