"""A prior-auth criterion line asserts that the chart meets it, so it needs a citation; a line
saying the chart does not document it asserts nothing clinical."""

from __future__ import annotations

import pytest
from chartdraft_guardrails.citation import is_clinical


@pytest.mark.parametrize(
    ("text", "clinical"),
    [
        ("Criterion 2 (pt-trial): met. The policy requires six weeks of therapy.", True),
        ("Criterion 1 (imaging): documented. MRI of the lumbar spine.", True),
        ("Criterion 3 (neurologic-deficit): not met. Not documented in the chart.", False),
        ("Criterion 4 (x): Not documented in the chart.", False),
    ],
)
def test_criterion_lines(text: str, clinical: bool) -> None:
    assert is_clinical(text) is clinical
