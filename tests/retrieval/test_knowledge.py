"""The knowledge base: starter documents load as citable passages; policies and their criteria."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from retrieval.errors import BadInput
from retrieval.evidence import Code, Evidence
from retrieval.knowledge import KB_DIR, evidence_for_criterion, load_kb, policies, policy_for_code

CPT = "http://www.ama-assn.org/go/cpt"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def test_starter_kb_passages_are_citable_and_unique() -> None:
    kb = load_kb()
    ids = [e.id for e in kb]
    assert len(ids) == len(set(ids))
    assert all(e.kind == "knowledge" and e.patient_id is None for e in kb)
    assert all(i.startswith("kb:") and "#" in i for i in ids)
    docs = {e.data["doc"]: e.data["kind"] for e in kb}
    assert sum(k == "education" for k in docs.values()) >= 6
    assert sum(k == "policy" for k in docs.values()) == 3
    # Every education document can feed warning signs, diet and activity.
    for doc, kind in docs.items():
        if kind == "education":
            for section in ("warning-signs", "diet", "activity"):
                assert f"kb:{doc}#{section}" in ids, (doc, section)
    assert "kb:heart-failure#warning-signs" in ids
    assert all(len(e.text) >= 10 for e in kb)


def test_policies_have_numbered_criteria_matching_front_matter() -> None:
    ps = policies()
    assert {p.id for p in ps} == {"policy-lumbar-mri", "policy-semaglutide", "policy-adalimumab"}
    kb = {e.id: e for e in load_kb()}
    for p in ps:
        assert p.payer and p.duration and len(p.criteria) >= 3
        crit = kb[f"kb:{p.id}#criteria"]
        assert [c["id"] for c in crit.data["criteria"]] == [c.id for c in p.criteria]
        # The numbered list in the Markdown has one item per front-matter criterion.
        for n in range(1, len(p.criteria) + 1):
            assert f"{n}. " in crit.text
        assert all(c.needs.resource_types for c in p.criteria)


def test_policy_for_code() -> None:
    mri = policy_for_code(CPT, "72148")
    assert mri is not None and mri.id == "policy-lumbar-mri"
    assert policy_for_code(RXNORM, "1991302").id == "policy-semaglutide"  # type: ignore[union-attr]
    assert policy_for_code(RXNORM, "327361").id == "policy-adalimumab"  # type: ignore[union-attr]
    assert policy_for_code(CPT, "99999") is None
    assert policy_for_code(RXNORM, "72148") is None  # the system matters too


def _e(rid: str, rtype: str, *, text: str = "", codes: list[Code] | None = None,
       data: dict | None = None, when: str | None = None) -> Evidence:
    return Evidence(id=rid, patient_id="p1", resource_type=rtype, title=text or rid, text=text,
                    codes=codes or [], data=data or {"status": "final"}, date=when)


def test_criteria_match_by_code_family_value_and_recency() -> None:
    sema = policy_for_code(RXNORM, "1991302")
    assert sema is not None
    dx, a1c, metformin, thyroid = sema.criteria
    today = date(2025, 6, 1)
    chart = [
        _e("Condition/1", "Condition", text="Type 2 diabetes", codes=[Code(
            system="http://hl7.org/fhir/sid/icd-10-cm", code="E11.65")]),
        _e("Observation/old", "Observation", text="HbA1c", codes=[Code(code="4548-4")],
           data={"value": 8.2}, when="2024-01-02"),
        _e("Observation/low", "Observation", text="HbA1c", codes=[Code(code="4548-4")],
           data={"value": 6.4}, when="2025-05-01"),
        _e("Observation/high", "Observation", text="HbA1c", codes=[Code(code="4548-4")],
           data={"value": 7.9}, when="2025-05-20"),
        _e("DocumentReference/9#1", "DocumentReference",
           text="Family history of thyroid disease in an aunt."),
    ]
    assert [e.id for e in evidence_for_criterion(dx, chart, today=today)] == ["Condition/1"]
    # Too old, and below threshold, do not count.
    assert [e.id for e in evidence_for_criterion(a1c, chart, today=today)] == ["Observation/high"]
    assert evidence_for_criterion(metformin, chart, today=today) == []
    assert evidence_for_criterion(thyroid, chart, today=today) == []
    # Knowledge passages never satisfy a chart criterion.
    assert evidence_for_criterion(dx, load_kb(), today=today) == []


def test_a_folder_of_markdown_and_text_documents(tmp_path: Path) -> None:
    (tmp_path / "falls.md").write_text(
        "---\nid: falls\ntitle: Preventing falls\nkind: education\n---\n# Falls\n\n"
        "## Warning signs\nCall if you fall and hit your head.\n\n## Activity\nUse a walker.\n")
    (tmp_path / "sleep.txt").write_text(
        "---\nid: sleep\ntitle: Sleep\nkind: education\n---\n## Diet\nNo coffee after noon.\n")
    (tmp_path / "README.rst").write_text("ignored: not markdown or text")
    # No front matter, no sections: one passage named after the file, titled by its heading.
    (tmp_path / "Hand Washing.md").write_text("# Clean hands\nWash for 20 seconds.\n")
    kb = load_kb(tmp_path)
    by_id = {e.id: e for e in kb}
    assert set(by_id) == {"kb:falls#warning-signs", "kb:falls#activity",
                          "kb:hand-washing#text", "kb:sleep#diet"}
    hands = by_id["kb:hand-washing#text"]
    assert hands.text == "Wash for 20 seconds." and hands.title == "Clean hands: Text"
    assert by_id["kb:falls#warning-signs"].text == "Call if you fall and hit your head."
    assert policies(tmp_path) == []


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("---\nid: x\ntitle: X\nkind: recipe\n---\n## A\ntext\n", "front matter is invalid"),
        ("---\nid: x\ntitle: X\nkind: education\n---\n# Only a title\n", "has no text"),
        ("---\nid: p\ntitle: P\nkind: policy\n---\n## Criteria\n1. x\n", "a policy needs"),
    ],
)
def test_bad_documents_say_what_and_where(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "bad.md").write_text(content)
    with pytest.raises(BadInput, match=message) as info:
        load_kb(tmp_path)
    assert "bad.md" in str(info.value)


def test_missing_folder_and_duplicate_ids(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="does not exist"):
        load_kb(tmp_path / "nope")
    doc = "---\nid: same\ntitle: S\nkind: education\n---\n## A\ntext\n"
    (tmp_path / "a.md").write_text(doc)
    (tmp_path / "b.md").write_text(doc)
    with pytest.raises(BadInput, match="used twice"):
        load_kb(tmp_path)
    assert KB_DIR.is_dir()


def test_recency_needs_a_whole_day_within_the_window() -> None:
    """A year or month alone cannot show "within N days"; a datetime counts by its written day."""
    sema = policy_for_code(RXNORM, "1991302")
    assert sema is not None
    a1c = sema.criteria[1]
    today = date(2025, 6, 1)

    def obs(rid: str, when: str | None) -> Evidence:
        return _e(rid, "Observation", text="HbA1c", codes=[Code(code="4548-4")],
                  data={"value": 7.9}, when=when)

    chart = [obs("Observation/dt", "2025-05-20T23:30:00-05:00"),
             obs("Observation/month", "2025-05"), obs("Observation/year", "2025"),
             obs("Observation/none", None), obs("Observation/junk", "recently"),
             obs("Observation/future", "2025-06-02")]
    assert [e.id for e in evidence_for_criterion(a1c, chart, today=today)] == ["Observation/dt"]
