"""The citation contract: schema shape, parser repairs and reports, streaming equals final parse."""

from __future__ import annotations

import json

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.llm.citations import (
    draft_schema,
    iter_statements,
    parse_draft,
    parse_rephrase,
    rephrase_schema,
)

IDS = ["MedicationRequest/m1", "AllergyIntolerance/a1", "Observation/o1", "kb:hf#diet"]
TITLES = ["Your medicines", "Allergies"]


def _draft() -> dict:
    return {
        "sections": [
            {"title": "Your medicines", "statements": [
                {"text": "Take metformin 500 mg by mouth twice a day.",
                 "citations": ["MedicationRequest/m1"]},
                {"text": "Your A1c was 7.1 % on 2024-01-02.", "citations": ["Observation/o1"]},
            ]},
            {"title": "Allergies", "statements": [
                {"text": "You are allergic to penicillin.", "citations": ["AllergyIntolerance/a1"]},
            ]},
        ]
    }


def _flat(sections):
    return [(t, s.text, s.citations) for t, stmts in sections for s in stmts]


def test_schema_is_valid_and_constrains_citations_to_the_ids_shown():
    schema = draft_schema(IDS, TITLES)
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(_draft(), schema)
    bad = _draft()
    bad["sections"][0]["statements"][0]["citations"] = ["Condition/invented"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)
    bad = _draft()
    bad["sections"][0]["title"] = "Something else"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_schema_without_evidence_allows_no_citations():
    schema = draft_schema([], [])
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate({"sections": [{"title": "x", "statements": [
        {"text": "Not documented in the chart.", "citations": []}]}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"sections": [{"title": "x", "statements": [
            {"text": "a", "citations": ["Condition/1"]}]}]}, schema)


def test_rephrase_schema_and_parse():
    schema = rephrase_schema(max_length=200)
    jsonschema.Draft202012Validator.check_schema(schema)
    assert parse_rephrase('{"text": " Take 500 mg. "}') == ("Take 500 mg.", [])
    assert parse_rephrase('sure! {"text": "x"} thanks')[0] == "x"
    assert parse_rephrase('{"text": ""}')[0] is None
    assert parse_rephrase("no json")[0] is None
    assert parse_rephrase('{"text": "cut')[0] is None


def test_valid_output_parses_cleanly():
    res = parse_draft(json.dumps(_draft()), shown_ids=set(IDS), section_titles=TITLES)
    assert res.problems == [] and not res.repaired
    assert [t for t, _ in res.sections] == TITLES
    assert [len(s) for _, s in res.sections] == [2, 1]
    assert res.statements()[0].citations == ["MedicationRequest/m1"]


def test_unknown_citation_is_removed_and_reported_statement_kept():
    d = _draft()
    d["sections"][0]["statements"][0]["citations"] = ["MedicationRequest/m1", "Condition/zzz"]
    d["sections"][1]["statements"][0]["citations"] = ["Patient/other"]
    res = parse_draft(json.dumps(d), shown_ids=set(IDS))
    stmts = res.statements()
    assert len(stmts) == 3  # nothing silently dropped
    assert stmts[0].citations == ["MedicationRequest/m1"]
    assert stmts[2].citations == []  # goes to the checks as uncited
    assert sum("Condition/zzz" in p for p in res.problems) == 1
    assert sum("Patient/other" in p for p in res.problems) == 1


def test_code_fence_and_trailing_garbage_are_repaired_and_reported():
    text = "Here is the draft:\n```json\n" + json.dumps(_draft()) + "\n```\nHope this helps!"
    res = parse_draft(text, shown_ids=set(IDS))
    assert res.repaired
    assert len(res.statements()) == 3
    assert any("before the JSON" in p for p in res.problems)
    assert any("after the JSON" in p for p in res.problems)


def test_truncated_output_keeps_complete_statements_and_reports_the_partial_one():
    full = json.dumps(_draft())
    cut = full[: full.index("You are allergic") + 10]
    res = parse_draft(cut, shown_ids=set(IDS))
    assert res.repaired
    assert [s.text for s in res.statements()] == [
        "Take metformin 500 mg by mouth twice a day.", "Your A1c was 7.1 % on 2024-01-02."]
    assert any("cut off" in p for p in res.problems)
    assert any("You are al" in p for p in res.problems)  # the dropped partial text is reported


def test_missing_commas_between_statements_keep_complete_objects():
    text = ('{"sections": [{"title": "Allergies", "statements": [{"text": "A", "citations": '
            '["AllergyIntolerance/a1"]} {"text": "B", "citations": []}]}]}')
    res = parse_draft(text, shown_ids=set(IDS))
    assert res.repaired
    assert [s.text for s in res.statements()] == ["A", "B"]
    assert any("not valid JSON" in p for p in res.problems)


@pytest.mark.parametrize(
    "text, expect_texts, problem_word",
    [
        # a bare string where a statement object belongs: kept, uncited, reported
        ('{"sections":[{"title":"Allergies","statements":["Penicillin allergy."]}]}',
         ["Penicillin allergy."], "bare string"),
        # statements at the top level instead of inside sections
        ('{"statements":[{"text":"A","citations":[]}]}', ["A"], "top level"),
        # a statement with no text cannot be kept, and says so
        ('{"sections":[{"title":"x","statements":[{"citations":["Observation/o1"]}]}]}',
         [], "no text"),
        # a number where a statement belongs
        ('{"sections":[{"title":"x","statements":[42]}]}', [], "not an object"),
        # a lone id instead of a list of ids
        ('{"sections":[{"title":"x","statements":[{"text":"A","citations":"Observation/o1"}]}]}',
         ["A"], "string, not a list"),
        # no JSON at all
        ("I cannot help with that.", [], "no JSON object"),
        # title missing
        ('{"sections":[{"statements":[{"text":"A","citations":[]}]}]}', ["A"], "no title"),
        # extra keys
        ('{"sections":[{"title":"x","statements":[{"text":"A","citations":[],"note":1}]}]}',
         ["A"], "unexpected keys"),
    ],
)
def test_wrong_shapes_are_reported(text, expect_texts, problem_word):
    res = parse_draft(text, shown_ids=set(IDS))
    assert [s.text for s in res.statements()] == expect_texts
    assert any(problem_word in p for p in res.problems), res.problems


def test_title_after_statements_is_applied_when_known():
    text = ('{"sections":[{"statements":[{"text":"A","citations":[]}],"title":"Allergies"}]}')
    streamed = list(iter_statements([text[:40], text[40:]], shown_ids=set(IDS)))
    assert [(t, s.text) for t, s in streamed] == [("Allergies", "A")]
    assert parse_draft(text, shown_ids=set(IDS)).sections[0][0] == "Allergies"


def test_statements_stream_as_soon_as_their_object_closes():
    text = json.dumps(_draft())
    first_close = text.index("}") + 1
    chunks = iter([text[:first_close], text[first_close:]])
    it = iter_statements(chunks, shown_ids=set(IDS))
    title, st1 = next(it)
    # the first statement arrives before the rest of the text has been read
    assert st1.text.startswith("Take metformin")
    assert title == "Your medicines"


def test_unknown_section_title_is_reported():
    d = _draft()
    d["sections"][1]["title"] = "Random"
    res = parse_draft(json.dumps(d), shown_ids=set(IDS), section_titles=TITLES)
    assert any("Random" in p for p in res.problems)


text_st = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1,
                  max_size=40).filter(lambda s: s.strip() != "")
stmt_st = st.fixed_dictionaries({
    "text": text_st,
    "citations": st.lists(st.sampled_from(IDS + ["Condition/unknown"]), max_size=3),
})
draft_st = st.fixed_dictionaries({"sections": st.lists(st.fixed_dictionaries({
    "title": st.sampled_from(TITLES), "statements": st.lists(stmt_st, max_size=4)}), max_size=4)})


@settings(max_examples=150, deadline=None)
@given(draft_st, st.lists(st.integers(min_value=1, max_value=30), min_size=1, max_size=40),
       st.booleans())
def test_streamed_statements_equal_final_parse(draft, cuts, indent):
    text = json.dumps(draft, indent=2 if indent else None, ensure_ascii=indent)
    chunks, pos = [], 0
    for c in cuts:
        chunks.append(text[pos: pos + c])
        pos += c
    chunks.append(text[pos:])
    streamed = list(iter_statements(chunks, shown_ids=set(IDS)))
    final = parse_draft(text, shown_ids=set(IDS))
    assert [(t, s) for t, s in streamed] == [(t, s) for t, ss in final.sections for s in ss]
    want = [(sec["title"], s["text"].strip()) for sec in draft["sections"]
            for s in sec["statements"]]
    assert [(t, s.text) for t, s in streamed] == want
    assert not final.repaired


@settings(max_examples=60, deadline=None)
@given(draft_st, st.floats(min_value=0, max_value=1))
def test_any_truncation_never_raises_and_keeps_a_prefix(draft, frac):
    text = json.dumps(draft)
    cut = text[: int(len(text) * frac)]
    full = parse_draft(text, shown_ids=set(IDS)).statements()
    part = parse_draft(cut, shown_ids=set(IDS))
    got = part.statements()
    assert got == full[: len(got)]
    streamed = [s for _, s in iter_statements([cut], shown_ids=set(IDS))]
    assert streamed == got
