"""The CitationQueryEngine answer parser: [n] markers map back to evidence ids."""

from __future__ import annotations

from evals.baselines import split_cited


def test_split_cited_maps_sources_and_keeps_bad_numbers() -> None:
    sources = ["MedicationRequest/1", "AllergyIntolerance/2", None]
    text = ("Take metformin 500 mg twice a day [1]. You are allergic to penicillin [2][1]. "
            "Rest at home [3]. See source [7]. [2]")
    sts = split_cited(text, sources)
    assert [s.text for s in sts] == ["Take metformin 500 mg twice a day.",
                                     "You are allergic to penicillin.", "Rest at home.",
                                     "See source."]
    assert sts[0].citations == ["MedicationRequest/1"]
    assert sts[1].citations == ["AllergyIntolerance/2", "MedicationRequest/1"]
    # a source with no evidence id behind it, or a number past the sources, stays visibly invalid
    assert sts[2].citations == ["[3]"]
    # a marker after the full stop belongs to the sentence before it
    assert sts[3].citations == ["[7]", "AllergyIntolerance/2"]
