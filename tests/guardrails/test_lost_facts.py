"""Constrained mode's fact guard (rephrase.lost_facts), table-driven.

Each row is a composed sentence, the model's rewrite and what the guard must do: refuse a rewrite
that loses, changes or adds a fact of any class (dose, unit, frequency, drug, date, negation,
status, route, laterality, as-needed), and keep a plain-language rewording with the same facts.
"""

from __future__ import annotations

import pytest
from chartdraft_guardrails.corpus import synthetic_charts
from chartdraft_guardrails.facts import chart_vocab
from chartdraft_guardrails.rephrase import lost_facts


@pytest.fixture(scope="module")
def vocab() -> frozenset[str]:
    return chart_vocab(synthetic_charts()["ana"])


LISINOPRIL = "Take lisinopril 10 mg by mouth once daily."
APAP = "Take acetaminophen 500 mg by mouth every 6 hours as needed for pain."

REFUSE = [
    # (fact class, original, rewrite, a word the reason must contain)
    ("dose", LISINOPRIL, "Take lisinopril 20 mg by mouth once daily.", "10"),
    ("dose", LISINOPRIL, "Take lisinopril by mouth once daily.", "10"),
    ("unit", LISINOPRIL, "Take lisinopril 10 mcg by mouth once daily.", "10"),
    ("frequency", LISINOPRIL, "Take lisinopril 10 mg by mouth twice daily.", "often"),
    ("frequency", LISINOPRIL, "Take lisinopril 10 mg by mouth.", "often"),
    ("drug", LISINOPRIL, "Take losartan 10 mg by mouth once daily.", "lisinopril"),
    ("drug", LISINOPRIL, "Take your blood pressure pill 10 mg by mouth once daily.", "lisinopril"),
    ("date", "Your tetanus shot was given on 2021-03-03.",
     "Your tetanus shot was given on March 3, 2020.", "date"),
    ("date", "Your tetanus shot was given on 2021-03-03.", "Your tetanus shot was given.", "date"),
    ("negation", "Do not take ibuprofen.", "Take ibuprofen.", "negation"),
    ("negation", "You have no known allergies.", "You have allergies.", "negation"),
    ("status", "Your asthma has resolved.", "You still have asthma.", "status"),
    ("status", "Stop taking aspirin 81 mg.", "Keep taking aspirin 81 mg.", "status"),
    ("route", LISINOPRIL, "Take lisinopril 10 mg once daily.", "route"),
    ("route", "Use fluticasone 50 mcg nasal spray once daily.",
     "Take fluticasone 50 mcg by mouth once daily.", "route"),
    ("laterality", "You had an X-ray of your left knee.", "You had an X-ray of your right knee.",
     "right"),
    ("laterality", "You had an X-ray of your left knee.", "You had an X-ray of your knee.", "left"),
    ("as-needed", APAP, "Take acetaminophen 500 mg by mouth every 6 hours for pain.", "needed"),
    ("as-needed", "Take acetaminophen 500 mg by mouth every 6 hours.",
     "Take acetaminophen 500 mg by mouth every 6 hours as needed.", "needed"),
    ("added claim", LISINOPRIL, "Take lisinopril 10 mg by mouth once daily for your kidneys.",
     "kidneys"),
]

KEEP = [
    # (original, plain-language rewrite with the same facts)
    (LISINOPRIL, "Take your lisinopril 10 mg by mouth once a day."),
    ("Continue metformin 500 mg by mouth twice daily.",
     "Keep taking your metformin 500 mg by mouth two times a day."),
    ("Hemoglobin was 11.2 g/dL on 2024-03-02.", "Your hemoglobin was 11.2 g/dL on March 2, 2024."),
    ("Do not take ibuprofen.", "Please do not take ibuprofen."),
    (APAP, "Take acetaminophen 500 mg by mouth every 6 hours when needed for pain."),
    ("You had an X-ray of your left knee.", "You had an X-ray of your left knee."),
    ("Stop taking aspirin 81 mg.", "Please stop taking your aspirin 81 mg."),
]


@pytest.mark.parametrize(("kind", "original", "rewrite", "word"), REFUSE,
                         ids=[f"{r[0]}-{i}" for i, r in enumerate(REFUSE)])  # fmt: skip
def test_refuses_a_rewrite_that_loses_or_changes_a_fact(
    vocab: frozenset[str], kind: str, original: str, rewrite: str, word: str
) -> None:
    problems = lost_facts(original, rewrite, vocab)
    assert problems, f"{kind}: {rewrite!r} was accepted for {original!r}"
    assert any(word in p for p in problems), (kind, problems)


@pytest.mark.parametrize(("original", "rewrite"), KEEP)
def test_keeps_a_plain_rewording_with_the_same_facts(
    vocab: frozenset[str], original: str, rewrite: str
) -> None:
    assert lost_facts(original, rewrite, vocab) == []
