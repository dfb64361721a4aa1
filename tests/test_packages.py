"""The repo's own packages import from this checkout, and layers only point one way."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FIRST_PARTY = {
    "assistant": ROOT / "assistant",
    "retrieval": ROOT / "retrieval",
    "chartdraft_guardrails": ROOT / "guardrails" / "chartdraft_guardrails",
    "prompts": ROOT / "prompts",
    "evals": ROOT / "evals",
}


@pytest.mark.parametrize("name", sorted(FIRST_PARTY))
def test_first_party_package_imports_from_this_repo(name: str) -> None:
    module = importlib.import_module(name)
    assert module.__file__ is not None
    assert Path(module.__file__).resolve().parent == FIRST_PARTY[name].resolve()


def test_guardrails_import_name_belongs_to_guardrails_ai() -> None:
    """Our folder guardrails/ must not shadow the guardrails-ai library's `guardrails` package."""
    spec = importlib.util.find_spec("guardrails")
    if spec is None:  # guardrails-ai not installed: at least our folder must not be importable
        return
    assert spec.origin is not None
    assert "site-packages" in spec.origin, spec.origin
    assert not Path(spec.origin).resolve().is_relative_to(ROOT / "guardrails")


def test_layers_point_one_way() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a test dependency (pip install -e '.[test]')"
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
