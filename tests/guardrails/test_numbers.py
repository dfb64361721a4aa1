"""Numbers and units in statements (issue 11, item 5) and dose arithmetic: digits inside names,
per-area units, bare years, BMI units, combination strengths, concentrations and doses, ratios,
approximate words. Each class has pass and flag rows."""

from __future__ import annotations

from typing import Any

import pytest
from chartdraft_guardrails.api import check_statement
from chartdraft_guardrails.facts import statement_facts
from chartdraft_guardrails.statement import CheckResult, Statement, worst
from chartdraft_guardrails.units import same_quantity

from retrieval.evidence import Evidence

PID = "p-num"


def ev(rid: str, title: str, text: str, date: str | None = None, **data: Any) -> Evidence:
    return Evidence(
        id=rid,
        patient_id=PID,
        resource_type=rid.split("/")[0],
        title=title,
        text=text,
        data=data,
        date=date,
    )


CHART = [
    ev("Patient/p-num", "Synthetic Patient", "Synthetic Patient", birth_date="1960-01-01",
       gender="female"),
    ev("Condition/t2dm", "Diabetes mellitus type 2 (disorder)",
       "Diabetes mellitus type 2 (disorder), active, since 1987-04-02", "1987-04-02",
       clinical_status="active", onset="1987-04-02", name="Diabetes mellitus type 2"),
    ev("Immunization/covid", "SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, "
       "preservative free, 100 mcg/0.5mL dose",
       "SARS-COV-2 (COVID-19) vaccine, mRNA, 100 mcg/0.5mL dose, completed on 2021-03-20",
       "2021-03-20", vaccine="SARS-COV-2 (COVID-19) vaccine, mRNA, 100 mcg/0.5mL dose",
       occurrence="2021-03-20", status="completed"),
    ev("Observation/egfr", "Glomerular filtration rate/1.73 sq M.predicted",
       "Glomerular filtration rate/1.73 sq M.predicted: 58.4 mL/min/{1.73_m2} on 2023-01-10",
       "2023-01-10", name="Glomerular filtration rate/1.73 sq M.predicted", loinc="33914-3",
       value=58.4, unit="mL/min/{1.73_m2}", effective="2023-01-10", components=[]),
    ev("Observation/bmi", "Body mass index (BMI) [Ratio]",
       "Body mass index (BMI) [Ratio]: 30.6 kg/m2 on 2023-01-10", "2023-01-10",
       name="Body mass index (BMI) [Ratio]", loinc="39156-5", value=30.62, unit="kg/m2",
       effective="2023-01-10", components=[]),
    ev("Observation/a1c", "Hemoglobin A1c", "Hemoglobin A1c: 6.8 % on 2023-01-10", "2023-01-10",
       name="Hemoglobin A1c", loinc="4548-4", value=6.8, unit="%", effective="2023-01-10",
       components=[]),
    ev("Observation/bp", "Blood pressure panel", "Blood pressure: 138/88 mm[Hg] on 2023-01-10",
       "2023-01-10", name="Blood pressure panel", loinc="85354-9", value=None, unit=None,
       effective="2023-01-10", components=[
           {"name": "Systolic Blood Pressure", "loinc": "8480-6", "value": 138, "unit": "mm[Hg]"},
           {"name": "Diastolic Blood Pressure", "loinc": "8462-4", "value": 88,
            "unit": "mm[Hg]"}]),
    ev("MedicationRequest/augmentin",
       "Amoxicillin 875 MG / Clavulanate 125 MG Oral Tablet",
       "amoxicillin 875 mg / clavulanate 125 mg oral tablet, 1 tablet twice daily, active",
       drug="Amoxicillin 875 MG / Clavulanate 125 MG Oral Tablet", strength_value=875,
       strength_unit="mg", dose_value=1, status="active", frequency="twice daily",
       timing={"frequency": 2, "period": 1, "periodUnit": "d"}),
    ev("MedicationRequest/lis", "lisinopril 20 MG Oral Tablet",
       "lisinopril 20 mg oral tablet, 2 tablets once daily, active",
       drug="lisinopril 20 MG Oral Tablet", strength_value=20, strength_unit="mg", dose_value=2,
       status="active", frequency="once daily",
       timing={"frequency": 1, "period": 1, "periodUnit": "d"}),
    ev("MedicationRequest/enox", "1 ML enoxaparin sodium 2 MG/ML Injection",
       "1 ml enoxaparin sodium 2 mg/ml injection, 0.5 mL once daily, active",
       drug="1 ML enoxaparin sodium 2 MG/ML Injection", strength_value=2,
       strength_unit="mg/ml", dose_value=0.5, dose_unit="mL", status="active",
       frequency="once daily", timing={"frequency": 1, "period": 1, "periodUnit": "d"}),
    ev("MedicationRequest/flut", "fluticasone propionate 0.11 MG/ACTUAT Metered Dose Inhaler",
       "fluticasone propionate 0.11 mg/actuat metered dose inhaler, 2 puffs twice daily, active",
       drug="fluticasone propionate 0.11 MG/ACTUAT Metered Dose Inhaler", strength_value=0.11,
       strength_unit="mg/actuat", dose_value=2, status="active", frequency="twice daily",
       timing={"frequency": 2, "period": 1, "periodUnit": "d"}),
    ev("MedicationRequest/glargine", "insulin glargine 100 UNT/ML Injectable Solution",
       "insulin glargine 100 unt/ml injectable solution, take 10 u under the skin once a day",
       drug="insulin glargine 100 UNT/ML Injectable Solution", strength_value=100,
       strength_unit="unt/ml", dose_value=10, dose_unit=None, status="active",
       frequency="once daily", timing={"frequency": 1, "period": 1, "periodUnit": "d"}),
    ev("Immunization/hpv1", "HPV, quadrivalent", "HPV, quadrivalent, completed on 2019-01-10",
       "2019-01-10", vaccine="HPV, quadrivalent", occurrence="2019-01-10", status="completed"),
    ev("Immunization/hpv2", "HPV, quadrivalent", "HPV, quadrivalent, completed on 2019-01-31",
       "2019-01-31", vaccine="HPV, quadrivalent", occurrence="2019-01-31", status="completed"),
    ev("Immunization/hpv3", "HPV, quadrivalent", "HPV, quadrivalent, completed on 2019-07-10",
       "2019-07-10", vaccine="HPV, quadrivalent", occurrence="2019-07-10", status="completed"),
    ev("MedicationRequest/epi", "epinephrine 1 MG/ML Injectable Solution",
       "epinephrine 1 mg/ml (1:1000) injectable solution, active",
       drug="epinephrine 1 MG/ML Injectable Solution", strength_value=1, strength_unit="mg/ml",
       status="active"),
]  # fmt: skip


def run(text: str, cites: list[str]) -> list[CheckResult]:
    by_id = {e.id: e for e in CHART}
    return check_statement(
        Statement(text=text, citations=cites),
        cited=[by_id[c] for c in cites],
        chart=CHART,
        shown_ids=set(by_id),
        patient_id=PID,
        doc_type="summary",
    )


CASES = [
    # (class, statement, citations, flagged?, word the flag's reason must name)
    ("name digits", "She has had T2DM since 1987.", ["Condition/t2dm"], False, None),
    ("name digits", "She has had type 2 diabetes since 1987.", ["Condition/t2dm"], False, None),
    ("name digits", "She has had type 2 diabetes since 1991.", ["Condition/t2dm"], True, "1991"),
    ("name digits", "She got the COVID-19 vaccine on March 20, 2021.", ["Immunization/covid"],
     False, None),
    ("bare year", "Her diabetes was diagnosed in 1987 (T2DM).", ["Condition/t2dm"], False, None),
    ("bare year", "Diabetes, diagnosed 1987.", ["Condition/t2dm"], False, None),
    ("bare year", "Diabetes, diagnosed 1993.", ["Condition/t2dm"], True, "1993"),
    ("per-area unit", "Her eGFR was 58 mL/min/1.73 m².", ["Observation/egfr"], False, None),
    ("per-area unit", "Her eGFR was 58 mL/min/1.73m2.", ["Observation/egfr"], False, None),
    ("per-area unit", "Her eGFR was 73 mL/min/1.73 m².", ["Observation/egfr"], True, "73"),
    ("bmi unit", "Her BMI was 30.6 kg/m2.", ["Observation/bmi"], False, None),
    ("bmi unit", "Her BMI was 30.6 kg/m².", ["Observation/bmi"], False, None),
    ("bmi unit", "Her BMI was 33.6 kg/m2.", ["Observation/bmi"], True, "33.6"),
    ("strength pair", "Take amoxicillin-clavulanate 875/125 mg twice daily.",
     ["MedicationRequest/augmentin"], False, None),
    ("strength pair", "Take amoxicillin-clavulanate 500/125 mg twice daily.",
     ["MedicationRequest/augmentin"], True, "500"),
    ("blood pressure", "Her blood pressure was 138/88.", ["Observation/bp"], False, None),
    ("blood pressure", "Her blood pressure was 148/88.", ["Observation/bp"], True, "148"),
    ("rounding", "Her BMI was about 31.", ["Observation/bmi"], False, None),
    ("rounding", "Her BMI was 31.", ["Observation/bmi"], False, None),
    ("rounding", "Her blood pressure was roughly 140/90.", ["Observation/bp"], False, None),
    ("rounding", "Her HbA1c was just under 7%.", ["Observation/a1c"], False, None),
    ("rounding", "Her HbA1c was just over 7%.", ["Observation/a1c"], True, "7"),
    ("rounding", "Her HbA1c was under 6.5%.", ["Observation/a1c"], True, "6.5"),
    ("rounding", "Her BMI was about 35.", ["Observation/bmi"], True, "35"),
    ("concentration", "Inject 0.5 mL (1 mg) of enoxaparin 2 mg/mL once daily.",
     ["MedicationRequest/enox"], False, None),
    ("concentration", "Inject enoxaparin 1 mg once daily.", ["MedicationRequest/enox"], False,
     None),
    ("concentration", "Inject enoxaparin 2 mg once daily.", ["MedicationRequest/enox"], True,
     "2 mg"),
    ("dose arithmetic", "Take 2 tablets (40 mg) of lisinopril once daily.",
     ["MedicationRequest/lis"], False, None),
    ("dose arithmetic", "Take lisinopril 20 mg tablets, 2 tablets once daily.",
     ["MedicationRequest/lis"], False, None),
    ("dose arithmetic", "Lisinopril 40 mg, take 2 tablets once daily.",
     ["MedicationRequest/lis"], True, "80 mg"),
    ("dose arithmetic", "Take 2 tablets (60 mg) of lisinopril once daily.",
     ["MedicationRequest/lis"], True, "60 mg"),
    ("daily total", "That is 440 mcg of fluticasone a day.", ["MedicationRequest/flut"], False,
     None),
    ("daily total", "That is 880 mcg of fluticasone a day.", ["MedicationRequest/flut"], True,
     "880"),
    ("unitless dose", "She injects 10 units of insulin glargine daily.",
     ["MedicationRequest/glargine"], False, None),
    ("unitless dose", "She injects 10 mL of insulin glargine daily.",
     ["MedicationRequest/glargine"], True, "10 ml"),
    ("count", "She received two doses of the HPV vaccine.",
     ["Immunization/hpv1", "Immunization/hpv2"], False, None),
    ("count", "She received two doses of the HPV vaccine.",
     ["Immunization/hpv1", "Immunization/hpv2", "Immunization/hpv3"], True, "two doses"),
    ("interval", "Her first two HPV doses were given three weeks apart.",
     ["Immunization/hpv1", "Immunization/hpv2"], False, None),
    ("interval", "Her first two HPV doses were given six weeks apart.",
     ["Immunization/hpv1", "Immunization/hpv2"], True, "21 days"),
    ("ratio", "Epinephrine 1:1000 is 1 mg/mL.", ["MedicationRequest/epi"], False, None),
    ("ratio", "Epinephrine 1:10000 is 1 mg/mL.", ["MedicationRequest/epi"], True, "1:10000"),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "text", "cites", "flagged", "named"), CASES)
def test_numbers_and_units(
    cls: str, text: str, cites: list[str], flagged: bool, named: str | None
) -> None:
    res = run(text, cites)
    bad = [r for r in res if r.verdict != "supported"]
    assert (worst(res) != "supported") == flagged, f"[{cls}] {[r.reason for r in bad]}"
    if named:
        assert any(named in r.reason for r in bad), [r.reason for r in bad]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("T2DM, COVID-19, HbA1c, CD4, B12, G6PD, H2 blocker, O2, PHQ-9, type 2", []),
        ("eGFR 62 mL/min/1.73 m²", [("62", "ml/min/1.73 m²")]),
        ("BMI 31 kg/m2", [("31", "kg/m2")]),
        ("amoxicillin-clavulanate 875/125 mg", [("875", "mg"), ("125", "mg")]),
        ("BP 128/82", [("128", "mmHg"), ("82", "mmHg")]),
        ("pain 10/10", [("10", None)]),
        ("40 mg in 0.4 mL; 100 mcg/0.5 mL", [("40", "mg"), ("0.4", "ml"), ("100", "mcg"),
                                             ("0.5", "ml")]),
        ("epinephrine 1:1000 at 8:30", [("1:1000", "ratio")]),
        ("since 1987, in late 2019, diagnosed 2004", []),
        ("0.12/0.015 mg per 24 hours, a 24-hour urine", [("0.12", "mg"), ("0.015", "mg")]),
    ],
)  # fmt: skip
def test_what_is_a_quantity(text: str, expected: list[tuple[str, str | None]]) -> None:
    got = [(q.text, q.unit) for q in statement_facts(text, frozenset()).quantities]
    assert got == expected


def test_bare_year_is_a_date() -> None:
    f = statement_facts("Diabetes, diagnosed 2004.", frozenset())
    assert [d.iso() for d in f.dates] == ["2004"] and not f.quantities


@pytest.mark.parametrize(
    ("stated", "unit", "approx", "value", "ok"),
    [
        ("31", None, "about", 30.62, True),
        ("30", None, "about", 31.4, True),  # within 5 %
        ("30", None, "about", 32.0, False),
        ("7", "%", "just_below", 6.8, True),
        ("7", "%", "just_below", 7.1, False),
        ("7", "%", "just_below", 5.9, False),  # far under 7 is not "just under"
        ("7", "%", "below", 5.9, True),
        ("9", "%", "below", 9.1, False),  # rounding does not rescue a bound
        ("10", "lb", "above", 10.0, True),  # the chart states the same bound
        ("140", "mmHg", "about", 138.0, True),
    ],
)
def test_approximate_words(
    stated: str, unit: str | None, approx: str, value: float, ok: bool
) -> None:
    assert same_quantity(stated, unit, value, unit, approx) is ok


@pytest.mark.parametrize(
    ("stated", "unit", "value", "chart_unit", "ok"),
    [
        ("101.3", "°F", 38.5, "Cel", True),
        ("38.5", "°C", 101.3, "[degF]", True),
        ("99", "°F", 38.5, "Cel", False),
        ("1", "g", 1000.0, "mg", True),
        ("0.5", "mg", 500.0, "mcg", True),
        ("62", "mL/min/1.73 m²", 62.0, "mL/min/{1.73_m2}", True),
        ("31", "kg/m²", 31.0, "kg", False),  # BMI is not a weight
        ("2", "mg/mL", 2.0, "mg", False),  # a concentration is not a dose
    ],
)
def test_unit_conversion(stated: str, unit: str, value: float, chart_unit: str, ok: bool) -> None:
    assert same_quantity(stated, unit, value, chart_unit) is ok
