"""Patient-voice rules (data/patient_voice.yaml): each rewrite, each finding, and the rewrites that
must NOT happen (a letter inside a word, a dose that is already safe)."""

from __future__ import annotations

import pytest
from chartdraft_guardrails import patient_voice as pv
from chartdraft_guardrails.api import check_draft
from chartdraft_guardrails.readability import check_readability
from chartdraft_guardrails.statement import Statement

REWRITES = [
    # ISMP error-prone abbreviations
    ("Take 10 U of insulin at night.", "Take 10 units of insulin at night."),
    ("Take 10U of insulin.", "Take 10 units of insulin."),
    ("Take 1 U of insulin.", "Take 1 unit of insulin."),
    ("Take 5 u before meals.", "Take 5 units before meals."),
    ("Take 400 IU of vitamin D.", "Take 400 units of vitamin D."),
    ("Take 1 tablet QD.", "Take 1 tablet every day."),
    ("Take 1 tablet q.d. with food.", "Take 1 tablet every day with food."),
    ("Take 1 tablet qd.", "Take 1 tablet every day."),
    ("Take it q.d. Then rest.", "Take it every day. Then rest."),
    ("Take 1 tablet QOD.", "Take 1 tablet every other day."),
    ("Take 1 tablet q.o.d. with water.", "Take 1 tablet every other day with water."),
    ("Take 1 tablet qhs.", "Take 1 tablet at bedtime."),
    ("Take 10 mg HS.", "Take 10 mg at bedtime."),
    ("Inject 5 units SC daily.", "Inject 5 units under the skin daily."),
    ("Inject 5 units SQ daily.", "Inject 5 units under the skin daily."),
    ("Take 5 cc of syrup.", "Take 5 mL of syrup."),
    ("Take 50 µg daily.", "Take 50 mcg daily."),
    ("Take it TIW.", "Take it 3 times a week."),
    ("Take 1 tablet per os.", "Take 1 tablet by mouth."),
    # trailing zeros and naked decimals
    ("Take 5.0 mg daily.", "Take 5 mg daily."),
    ("Take 10.00 mg daily.", "Take 10 mg daily."),
    ("Take 1.0 tablet.", "Take 1 tablet."),
    ("Take .5 mg at night.", "Take 0.5 mg at night."),
    ("Use (.25 mg) daily.", "Use (0.25 mg) daily."),
    # dates in words
    ("Your visit is on 2026-11-23.", "Your visit is on November 23, 2026."),
    ("It was on 2024-02-29T10:00:00Z.", "It was on February 29, 2024."),
    ("since 2021-03.", "since March 2021."),
    # tall-man lettering
    ("Take predniSONE 20 mg.", "Take prednisone 20 mg."),
    ("Take hydrOXYzine 25 mg.", "Take hydroxyzine 25 mg."),
    ("Stop taking NIFEdipine.", "Stop taking nifedipine."),
    ("Keep taking metFORMIN.", "Keep taking metformin."),
    ("Take HumaLOG with meals.", "Take Humalog with meals."),
    # RxNorm units: the plain form of the dose
    ("New medicine: tiotropium 0.0025 MG/ACTUAT inhalation Spray.",
     "New medicine: tiotropium inhalation spray (0.0025 mg in each puff)."),
    ("albuterol 0.09 MG/ACTUAT Metered Dose Inhaler. Take 2 puffs.",
     "albuterol metered dose inhaler (0.09 mg in each puff). Take 2 puffs."),
    ("fluticasone 0.05 mg/actuat Nasal Spray", "fluticasone nasal spray (0.05 mg in each spray)"),
    ("Take 2 actuat with your inhaler.", "Take 2 puffs with your inhaler."),
    ("Take 1 actuation.", "Take 1 puff."),
    ("insulin glargine 100 UNT/ML Injection", "insulin glargine 100 units in each mL Injection"),
    ("insulin glargine 100 unt/ml injection", "insulin glargine 100 units in each mL injection"),
    # lay terms with the clinical term in brackets
    ("It gave you this reaction: urticaria.", "It gave you this reaction: hives (urticaria)."),
    ("You were treated for hypertension.",
     "You were treated for high blood pressure (hypertension)."),
    ("Call if your dyspnea gets worse.", "Call if your shortness of breath (dyspnea) gets worse."),
    # clinical shorthand
    ("Take 1 tablet PO BID PRN.", "Take 1 tablet by mouth twice a day as needed."),
]

UNCHANGED = [
    "Take 1.5 mg daily.",  # a real decimal dose
    "Take 0.5 mg daily.",  # a leading zero is already there
    "Take 10.5 mg daily.",
    "Your A1c was 7.0 %.".replace(" %", " percent"),  # a lab value is not a dose unit
    "Use the UNIT on your USB cable.",  # U inside words
    "Go to the ICU if you feel worse.",
    "Read your Quick Guide.",  # q.d. letters inside words
    "The QDR team will call.",
    "You were in the hospital from March 3, 2025 to March 5, 2025.",
    "Take prednisone 20 mg.",
    "It gave you hives (urticaria).",  # already in the patient's words
    "You have hives.",
    "Call 555-0100-22 if you feel worse.",  # a number that is no date
    "Your blood pressure was 120/80 mmHg.",
    "You need a blood test (Potassium) on June 2, 2025.",
    "Use the PO box address.".replace("PO", "P.O."),
]


@pytest.mark.parametrize(("text", "want"), REWRITES)
def test_rewrite(text: str, want: str) -> None:
    assert pv.rewrite(text) == want
    assert pv.check(text), f"check found nothing in {text!r}"
    assert not pv.check(want), pv.check(want)  # the rewrite leaves nothing to report
    assert pv.rewrite(want) == want  # and is stable


@pytest.mark.parametrize("text", UNCHANGED)
def test_rewrites_that_must_not_happen(text: str) -> None:
    assert pv.rewrite(text) == text
    assert pv.check(text) == []


@pytest.mark.parametrize(("text", "rule"), [
    ("Stop the drug D/C on Monday.", "ismp-abbreviation"),
    ("Put 1 drop 2 OU.", "ismp-abbreviation"),
    ("Take MSO4 as needed.", "ismp-abbreviation"),
    ("Take HCTZ daily.", "ismp-abbreviation"),
    ("Meet us @ the clinic.", "ismp-abbreviation"),
    ("Take 1 tablet x3d.", "ismp-abbreviation"),
    ("Take lamoTRIgine daily.", "tall-man"),
    ("Take bupROPION daily.", "tall-man"),  # not the list's spelling, still tall-man
])
def test_reported_without_a_rewrite_where_unsafe(text: str, rule: str) -> None:
    found = pv.check(text)
    assert rule in {f.rule for f in found}, found


@pytest.mark.parametrize("abbr", ["U", "IU", "QD", "QOD", "q.d.", "q.o.d.", "cc", "SC", "SQ",
                                  "TIW", "qhs", "HS"])
def test_each_ismp_abbreviation_after_a_dose_is_reported(abbr: str) -> None:
    text = f"Take 10 {abbr} daily."
    found = [f for f in pv.check(text) if f.rule == "ismp-abbreviation"]
    assert found and found[0].fix, text
    assert abbr not in pv.rewrite(text).split()


def test_draft_report_lists_patient_voice_findings_and_hardest_sentences() -> None:
    sections = [("Your medicines", [Statement(text="Take 10 U of insulin on 2026-11-23.")]),
                ("Allergies", [Statement(text="You have no known allergies.")])]
    report = check_draft(sections, chart=[], shown_ids=set(), patient_id="p1",
                         doc_type="discharge-instructions")
    rules = sorted(f["rule"] for f in report.summary()["patient_voice"])
    assert rules == ["ismp-abbreviation", "iso-date"]
    assert all(f["section"] == "Your medicines" and f["index"] == 0
               for f in report.patient_voice)
    # A clinician's summary is not patient text: no patient-voice findings.
    summary = check_draft(sections, chart=[], shown_ids=set(), patient_id="p1", doc_type="summary")
    assert summary.patient_voice == []


def test_readability_names_the_sentences_that_push_the_grade_up() -> None:
    easy = "Take your pills. Drink water."
    hard = ("Comprehensive cardiovascular rehabilitation consultation is recommended "
            "following hospitalization.")
    r = check_readability("Diet and activity", [easy, hard], target=6.0)
    hardest = r["hardest"]
    assert isinstance(hardest, list) and [h["sentence"] for h in hardest] == [hard]
    assert check_readability("Diet and activity", [easy], target=6.0)["hardest"] == []
