"""The smoke suite through the real pipeline, in-process: extractive always, embedded model (llm).

Checks the results file against the schema, that planted attacks are measured, that a rerun with
the same --out resumes (nothing is drafted twice), and that a run compared with itself passes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from evals.cli import app
from evals.runner import RunConfig, read_jsonl, run
from evals.schema import load, problems
from retrieval.errors import BadInput

DOC_TYPES = {"summary", "discharge-instructions", "prior-auth"}


@pytest.fixture(scope="module")
def extractive_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("smoke-extractive")
    seen: list[tuple[int, int]] = []
    results = run(RunConfig(suite="smoke", out=out, backends=["extractive"], checker=False),
                  progress=lambda done, total, label: seen.append((done, total)))
    assert seen and seen[-1] == (3, 3)
    return out, results


def test_results_file_matches_schema(extractive_run: tuple[Path, dict]) -> None:
    out, results = extractive_run
    on_disk = json.loads((out / "results.json").read_text())
    assert problems(on_disk) == []
    assert load(out)["manifest"]["suite"]["name"] == "smoke"
    man = on_disk["manifest"]
    assert man["backends"] == ["extractive"] and man["settings_fingerprint"]
    assert man["prompt_versions"] and len(man["suite"]["sha256"]) == 64
    assert (out / "report.html").read_text().count("<svg") >= 2
    r = CliRunner().invoke(app, ["validate", str(out / "results.json")])
    assert r.exit_code == 0, r.output


def test_every_case_drafted_and_scored(extractive_run: tuple[Path, dict]) -> None:
    _, results = extractive_run
    cases = results["cases"]
    assert {c["doc_type"] for c in cases} == DOC_TYPES
    assert all(c["status"] == "ok" for c in cases), [c.get("error") for c in cases]
    for c in cases:
        m = c["metrics"]
        assert m["citation_coverage"][1] > 0  # there were clinical statements to score
        assert m["omission"][1] > 0  # and required facts to look for
        # the smoke patient carries a planted injection and another person's identifiers
        assert m["injection_success"] is not None and m["phi_leak"] == [m["phi_leak"][0], 1]
        assert c["timings"]["total"] > 0
    agg = results["runs"]["extractive"]["aggregate"]
    assert agg["case_error"]["value"] == 0
    # extractive drafts only state chart facts: nothing injected or foreign can get in
    assert agg["injection_success"]["k"] == 0 and agg["phi_leak"]["k"] == 0
    grade = agg["readability_grade"]["value"]
    assert grade is not None and 0 < grade < 16
    assert results["runs"]["extractive"]["latency"]["total"]["p50"] > 0


def test_rerun_resumes_without_redrafting(extractive_run: tuple[Path, dict]) -> None:
    out, first = extractive_run
    before = read_jsonl(out / "cases.jsonl")
    again = run(RunConfig(suite="smoke", out=out, backends=["extractive"], checker=False))
    assert read_jsonl(out / "cases.jsonl") == before  # nothing drafted twice
    assert again["runs"]["extractive"]["aggregate"] == first["runs"]["extractive"]["aggregate"]


def test_resuming_with_other_options_is_refused(extractive_run: tuple[Path, dict]) -> None:
    out, _ = extractive_run
    before = read_jsonl(out / "cases.jsonl")
    with pytest.raises(BadInput, match="different max_statements, model") as exc:
        run(RunConfig(suite="smoke", out=out, backends=["extractive"], checker=False,
                      model="/elsewhere/other.gguf", max_statements=2))
    assert exc.value.where == "--out"
    assert read_jsonl(out / "cases.jsonl") == before  # nothing was added or lost


def test_compare_with_itself_passes_the_gate(extractive_run: tuple[Path, dict]) -> None:
    out, _ = extractive_run
    r = CliRunner().invoke(app, ["compare", str(out), str(out), "--fail-on-regression"])
    assert r.exit_code == 0, r.output


@pytest.mark.llm
def test_smoke_with_the_embedded_model(tmp_path: Path) -> None:
    """The packaged SmolLM2 model on the smoke suite, one case per document type.

    Capped to keep it short on 2 cores: one model rephrasing per draft (the other statements keep
    their composed sentence, as when a rephrasing fails its checks), and the CitationQueryEngine
    baseline with the same model on one case (one query per document).
    """
    pytest.importorskip("llama_cpp")
    results = run(RunConfig(suite="smoke", out=tmp_path / "embedded", backends=["embedded"],
                            max_statements=1, checker=False))
    assert problems(json.loads((tmp_path / "embedded" / "results.json").read_text())) == []
    emb = results["runs"]["embedded"]
    assert emb["cases"] == 3 and emb["status_counts"].get("ok") == 3, [
        c.get("error") for c in results["cases"]]
    assert emb["aggregate"]["unsupported_final"]["n"] > 0
    # The model really ran where it writes (constrained mode rewrites only patient-facing
    # discharge instructions), or the draft says why it fell back to extractive.
    assert all(c["tokens_out"] > 0 or c["fallback_reason"] for c in results["cases"]
               if c["doc_type"] == "discharge-instructions")

    cqe = run(RunConfig(suite="smoke", out=tmp_path / "cqe", backends=["cqe-embedded"], limit=1,
                        checker=False))
    assert problems(json.loads((tmp_path / "cqe" / "results.json").read_text())) == []
    case = cqe["cases"][0]
    assert case["status"] == "ok", case.get("error")
    assert case["model"] and case["model"] != "none (extractive)" and case["tokens_out"] > 0
    # every sentence of the answer was checked and is in the record
    assert case["details"]["statements"] == len(case["statements"]) > 0
