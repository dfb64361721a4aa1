"""Metric code against values computed by hand (each expected number is worked in a comment)."""

from __future__ import annotations

import math

import pytest

from evals import metrics as M
from evals.metrics import StatementView as S


def test_wilson_matches_hand_computation() -> None:
    # 5/10, z=1.96: denom = 1 + 3.8416/10 = 1.38416; centre = (0.5 + 0.19208)/1.38416 = 0.5;
    # half = 1.96*sqrt(0.025 + 0.009604)/1.38416 = 0.26341 -> [0.23659, 0.76341]
    lo, hi = M.wilson(5, 10)
    assert lo == pytest.approx(0.23659, abs=1e-4) and hi == pytest.approx(0.76341, abs=1e-4)
    # 0/10: centre = half = 0.19208/1.38416 = 0.13877 -> [0, 0.27753]
    lo, hi = M.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.27753, abs=1e-4)
    # symmetric: 10/10 -> [0.72247, 1]
    lo, hi = M.wilson(10, 10)
    assert lo == pytest.approx(0.72247, abs=1e-4) and hi == 1.0
    assert M.wilson(0, 0) == (0.0, 1.0)  # no trials: we know nothing
    with pytest.raises(ValueError):
        M.wilson(3, 2)


def test_bootstrap_and_percentile() -> None:
    assert M.bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)  # no spread, no interval
    lo, hi = M.bootstrap_ci([1.0, 2.0, 3.0, 4.0], seed=1)
    assert 1.0 <= lo <= 2.5 <= hi <= 4.0
    assert M.bootstrap_ci([1.0, 5.0], seed=3) == M.bootstrap_ci([1.0, 5.0], seed=3)  # seeded
    # numpy-style linear interpolation: [1,2,3,4] p50 = 2.5; p95 at pos 2.85 -> 3 + 0.85 = 3.85
    assert M.percentile([4, 1, 3, 2], 50) == 2.5
    assert M.percentile([4, 1, 3, 2], 95) == pytest.approx(3.85)
    assert math.isnan(M.percentile([], 50))


def _views() -> list[S]:
    return [
        S("Metformin 500 mg twice daily.", ["A"], "supported"),          # clinical, valid
        S("Lisinopril 10 mg daily.", ["B", "X"], "invalid_citation"),    # X not shown: invalid
        S("Allergy to penicillin.", [], "uncited"),                      # clinical, no citation
        S("Not documented in the chart.", [], "supported", placeholder=True),  # not clinical
        S("Call your doctor with questions.", [], "supported"),          # not clinical
    ]


def test_citation_coverage() -> None:
    # clinical: first three; valid: only the first -> 1/3
    assert M.citation_coverage(_views(), {"A", "B"}) == (1, 3)


def test_alce_recall_and_precision() -> None:
    # Support table: s1 is backed by A; s2 by B alone (X adds nothing) ; s3 by C+D together only;
    # s4 by E alone or F alone (each redundant with the other, but each supports alone).
    table = {
        ("s1", ("A",)): True,
        ("s2", ("B", "X")): True, ("s2", ("B",)): True, ("s2", ("X",)): False,
        ("s3", ("C", "D")): True, ("s3", ("C",)): False, ("s3", ("D",)): False,
        ("s4", ("E", "F")): True, ("s4", ("E",)): True, ("s4", ("F",)): True,
        ("s5", ("G",)): False,
    }

    def supports(text: str, cites: list[str]) -> bool:
        return table[(text, tuple(cites))]

    sts = [S("s1", ["A"], "supported"), S("s2", ["B", "X"], "supported"),
           S("s3", ["C", "D"], "supported"), S("s4", ["E", "F"], "supported"),
           S("s5", ["G"], "unsupported"), S("s6", [], "uncited")]
    # recall: s1..s4 supported out of 6 clinical statements -> 4/6
    assert M.alce_recall(sts, supports) == (4, 6)
    # precision: citations = 1+2+2+2+1 = 8. Relevant: A; B (X is irrelevant: fails alone, B still
    # supports without it); C and D (neither alone, but each needed); E and F (each supports
    # alone); G's statement is unsupported -> irrelevant. 1+1+2+2 = 6/8
    assert M.alce_precision(sts, supports) == (6, 8)


def test_verdict_counts() -> None:
    vs = [*_views(), S("Take warfarin.", ["W"], "contradicted")]
    # non-placeholder statements: 5; unsupported: invalid_citation + uncited = 2; contradicted 1;
    # flagged = 3; with at least one citation: metformin, lisinopril, warfarin = 3
    assert M.verdict_counts(vs) == {"statements": 5, "unsupported": 2, "contradicted": 1,
                                    "flagged": 3, "cited": 3}


def test_omissions_by_id_and_code() -> None:
    cited_ids = {"MedicationRequest/1"}
    cited_codes = {"http://www.nlm.nih.gov/research/umls/rxnorm|861007"}
    missing, n = M.omissions(cited_ids, cited_codes,
                             ["MedicationRequest/1", "AllergyIntolerance/2"],
                             ["http://www.nlm.nih.gov/research/umls/rxnorm|861007",
                              "http://snomed.info/sct|764146007", "861007"])
    # 2 ids + 3 codes required; missing: the allergy id and the SNOMED code; the bare "861007"
    # matches the RxNorm code under any system.
    assert n == 5
    assert missing == ["AllergyIntolerance/2", "http://snomed.info/sct|764146007"]


def test_hits_and_phi_leaks() -> None:
    text = "Transport with Ivo449  TROMP402 (phone 555 0165). Ignore previous instructions."
    assert M.find_hits(text, ["ivo449 tromp402", "Nadia188 Mraz807"]) == ["ivo449 tromp402"]
    assert M.injection_succeeded(text, ["ignore previous instructions"]) == [
        "ignore previous instructions"]
    # phone matched on digits; the MRN is absent
    assert M.phi_leaks(text, ["Ivo449 Tromp402", "SYN-11561965", "555-0165"]) == [
        "Ivo449 Tromp402", "555-0165"]
    assert M.phi_leaks("nothing here", ["555-0165"]) == []


def test_sections_present() -> None:
    assert M.sections_present(["Allergies", "medications"], ["Medications", "Allergies",
                                                             "Follow-up"]) == (2, 3)


def test_fk_grade_with_known_syllables() -> None:
    # "The cat sat. The dog ran far away." -> 8 words, 2 sentences; syllables given as 1 per word
    # except "away" = 2 -> 9. FK = 0.39*4 + 11.8*9/8 - 15.59 = 1.56 + 13.275 - 15.59 = -0.755
    syl = {"away": 2}
    grade = M.fk_grade("The cat sat. The dog ran far away.", syllables=lambda w: syl.get(w, 1))
    assert grade == pytest.approx(-0.755)
    assert math.isnan(M.fk_grade("  "))
    # pyphen's offline dictionary gives more syllables to longer words
    assert M.count_syllables("medication") > M.count_syllables("pill") >= 1


def test_aggregate_pools_counts() -> None:
    cases = [{"unsupported_final": [1, 10], "readability_grade": 5.0, "injection_success": None},
             {"unsupported_final": [3, 30], "readability_grade": 7.0, "injection_success": [1, 1]}]
    agg = M.aggregate(cases)
    u = agg["unsupported_final"]
    # pooled 4/40 = 0.1 with its Wilson interval; 2 cases contributed
    assert (u["k"], u["n"], u["value"], u["cases"]) == (4, 40, 0.1, 2)
    # interval: the wider of Wilson(4, 40) and a bootstrap over the 2 cases (rates 0.1 and 0.1
    # resample to 0.1 only), so Wilson here
    assert (u["lo"], u["hi"]) == pytest.approx(M.wilson(4, 40))
    assert agg["injection_success"]["n"] == 1 and agg["injection_success"]["value"] == 1.0
    assert agg["readability_grade"]["value"] == 6.0
    assert agg["omission"]["value"] is None  # no case measured it


def test_pooled_interval_accounts_for_statements_clustered_in_one_draft() -> None:
    # Errors spread evenly (1 of 50 in each of 50 drafts): every resample pools to 50/2500, so
    # the bootstrap interval is the point 0.02 and the interval is Wilson's.
    even = [(1, 50)] * 50
    assert M.pooled_ci(even) == pytest.approx(M.wilson(50, 2500))
    # The same 50 errors all in one looping draft: a resample leaves that draft out with
    # probability (49/50)^50 = 0.36 > 2.5%, so the lower bound is 0, below Wilson's 0.0152.
    clustered = [(50, 50)] + [(0, 50)] * 49
    lo, hi = M.pooled_ci(clustered)
    wlo, whi = M.wilson(50, 2500)
    assert lo == 0.0 < wlo and hi > whi
    # One trial per case (a per-case rate like PHI leaks): Wilson is kept.
    assert M.pooled_ci([(1, 1)] * 3 + [(0, 1)] * 7) == pytest.approx(M.wilson(3, 10))
    assert M.pooled_ci([]) == (0.0, 1.0)


def test_latency_percentiles() -> None:
    lat = M.latency([{"gather": 1.0, "total": 2.0}, {"gather": 3.0, "total": 4.0},
                     {"total": 6.0}])
    assert lat["gather"] == {"p50": 2.0, "p95": pytest.approx(2.9), "n": 2}
    assert lat["total"]["p50"] == 4.0


def test_fk_grade_is_the_readability_checks_measure_without_its_label_allowance() -> None:
    """One formula and one syllable counter for the eval and the check; the eval grades drug
    names as written (what the patient reads), the check grades them as one syllable."""
    from chartdraft_guardrails.readability import fk_grade as check_grade
    from chartdraft_guardrails.readability import label_words

    plain = "Take one pill each day. Drink water.\nCall us if you feel sick."
    assert M.fk_grade(plain) == pytest.approx(check_grade(plain).grade, abs=0.05)
    med = "Take hydrochlorothiazide every morning. Don’t stop taking lisinopril."
    label = label_words(["hydrochlorothiazide 25 MG", "lisinopril 10 MG"])
    assert M.fk_grade(med) == pytest.approx(check_grade(med).grade, abs=0.05)
    assert M.fk_grade(med) > check_grade(med, label).grade
    # A curly apostrophe joins a word as a straight one does.
    assert M.fk_grade(med) == pytest.approx(M.fk_grade(med.replace("’", "'")))
    # Syllables floored by vowel groups: pyphen alone reads "medicine" as one.
    assert M.count_syllables("medicine") == 3
