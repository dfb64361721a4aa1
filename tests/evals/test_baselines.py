"""The CitationQueryEngine answer parser: [n] markers map back to evidence ids."""

from __future__ import annotations

from evals.baselines import split_cited, split_sections


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


def test_split_sections_follows_the_headings_the_model_wrote() -> None:
    titles = ["Why you were in the hospital", "Your medicines", "Allergies"]
    text = ("You had pneumonia [1].\n## Your medicines\nTake amoxicillin [2].\n"
            "**Allergies:**\nNo known allergies.\nYour medicines\nStop ibuprofen [9].")
    secs = split_sections(text, ["Condition/1", "MedicationRequest/2"], titles)
    assert [s.title for s in secs] == titles
    assert [[st.text for st in s.statements] for s in secs] == [
        ["You had pneumonia."], ["Take amoxicillin.", "Stop ibuprofen."], ["No known allergies."]]
    assert secs[1].statements[1].citations == ["[9]"]


def test_split_sections_without_headings_files_everything_under_the_first() -> None:
    secs = split_sections("One [1]. Two.", ["Condition/1"], ["A", "B"])
    assert [len(s.statements) for s in secs] == [2, 0]
