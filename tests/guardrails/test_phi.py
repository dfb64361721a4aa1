"""PHI: foreign identifiers in drafts, Presidio de-identification, fail-closed behaviour."""

from __future__ import annotations

import pytest
from chartdraft_guardrails import phi
from chartdraft_guardrails.corpus import synthetic_charts
from chartdraft_guardrails.phi import (
    Deidentifier,
    allowed_identifiers,
    analyze,
    check_phi,
    find_identifiers,
    npi_valid,
)

from retrieval.errors import CheckFailed

SENTENCES = [
    # (text, identifiers that must be found)
    (
        "John Smith (DOB 03/04/1980, MRN 12345678) was seen today.",
        ["John Smith", "03/04/1980", "12345678"],
    ),
    ("Call his daughter Maria Gonzalez at 617-555-0199.", ["Maria Gonzalez", "617-555-0199"]),
    ("Patient lives at 42 Maple Street, Springfield.", ["42 Maple Street", "Springfield"]),
    ("Member ID XQH4471920, claim number CLM-2024-88813.", ["XQH4471920", "CLM-2024-88813"]),
    ("Referred by Dr. Alan Chu, NPI 1234567893.", ["Alan Chu", "1234567893"]),
    ("SSN 999-12-3456 on file; email jo.doe@example.org.", ["999-12-3456", "jo.doe@example.org"]),
    ("Seen on 2024-02-01 by Emily Carter.", ["2024-02-01", "Emily Carter"]),
    (
        "Mrs. Olivia Brown, 555-201-8899, 7 Harbor Road.",
        ["Olivia Brown", "555-201-8899", "7 Harbor Road"],
    ),
]


def test_npi_checksum() -> None:
    assert npi_valid("1234567893")
    assert not npi_valid("1234567890")


def test_patterns_find_clinical_identifiers_without_ner() -> None:
    kinds = {
        i.kind
        for i in find_identifiers(
            "MRN: A1234567, member id ZX99812, claim # 7781234, NPI 1234567893, 9 Elm Street"
        )
    }
    assert {"MRN", "MEMBER_ID", "CLAIM_NUMBER", "NPI", "STREET_ADDRESS"} <= kinds


def test_foreign_identifiers_flagged_own_allowed() -> None:
    chart = synthetic_charts()["ana"]
    allowed = allowed_identifiers(chart[0], chart)
    assert check_phi("Call Ana Lima at 555-201-3344.", allowed) == []
    flagged = check_phi("Call Mr. John Doe at 555-111-2222 (MRN-772019).", allowed)
    assert len(flagged) == 3 and all(r.verdict == "unsupported" for r in flagged)


@pytest.mark.slow
def test_presidio_recall_on_clinical_sentences() -> None:
    found = total = 0
    for text, expected in SENTENCES:
        hits = analyze(text)
        spans = [text[h.start : h.end] for h in hits]
        for want in expected:
            total += 1
            found += any(want in s or s in want and len(s) > 3 for s in spans)
    print(f"\nPresidio + our recognizers: {found}/{total} identifiers found")
    assert found / total >= 0.9


@pytest.mark.slow
def test_dob_mrn_ssn_are_not_organizations() -> None:
    text = "DOB 03/04/1980. MRN 12345678. SSN 999-12-3456."
    assert not [h for h in analyze(text) if h.entity_type == "ORGANIZATION"]


@pytest.mark.slow
def test_ner_finds_foreign_name_without_honorific() -> None:
    chart = synthetic_charts()["ana"]
    allowed = allowed_identifiers(chart[0], chart)
    assert check_phi("Results were discussed with Ana Lima.", allowed, ner=True) == []
    assert check_phi("Results were discussed with Robert Jenkins.", allowed, ner=True)


@pytest.mark.slow
def test_deidentify_is_consistent_and_reversible() -> None:
    d = Deidentifier(salt=b"request-1")
    text = "John Smith, MRN 12345678, called 617-555-0199. John Smith felt better."
    out = d.deidentify(text)
    assert "John Smith" not in out and "12345678" not in out and "617-555-0199" not in out
    tokens = [t for t in out.split() if t.startswith("<PERSON_")]
    assert len(tokens) == 2 and tokens[0].rstrip(",.") == tokens[1].rstrip(",.")
    assert d.reidentify(out) == text
    other = Deidentifier(salt=b"request-2").deidentify(text)
    assert other != out  # a new request gets new pseudonyms


def test_fail_closed_on_unknown_entity() -> None:
    with pytest.raises(CheckFailed):
        Deidentifier(entities=["PERSON", "BLOOD_TYPE"]).deidentify("John Smith")


def test_fail_closed_when_engine_cannot_build(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise OSError("spaCy model missing")

    monkeypatch.setattr(phi, "_analyzer", None)
    monkeypatch.setattr(phi, "_build", broken)
    with pytest.raises(CheckFailed) as err:
        Deidentifier().deidentify("John Smith")
    assert "unavailable" in str(err.value)
