"""results.json schema, the compare gate (CLI exit codes) and the HTML report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from evals_helpers import record, results
from typer.testing import CliRunner

from evals.cli import app
from evals.compare import compare, gate_failures
from evals.report import render
from evals.schema import problems, validate
from retrieval.errors import BadInput


def _write(tmp: Path, name: str, doc: dict) -> Path:
    p = tmp / name
    p.write_text(json.dumps(doc))
    return p


def _run(unsupported: tuple[int, int], n: int = 20) -> dict:
    return results([record(f"c{i}", unsupported=unsupported) for i in range(n)])


def test_results_doc_is_valid_and_broken_one_is_not() -> None:
    doc = _run((1, 10))
    assert problems(doc) == []
    agg = doc["runs"]["extractive"]["aggregate"]["unsupported_final"]
    assert (agg["k"], agg["n"]) == (20, 200)
    broken = json.loads(json.dumps(doc))
    broken["schema_version"] = "0.9"
    broken["cases"][0]["status"] = "exploded"
    del broken["manifest"]["git_commit"]
    errs = problems(broken)
    assert len(errs) >= 3
    with pytest.raises(BadInput):
        validate(broken)


def test_compare_gate_flags_a_safety_regression(tmp_path: Path) -> None:
    base = _run((1, 10))   # 10% unsupported, Wilson [6.6%, 14.9%]
    worse = _run((3, 10))  # 30% is beyond the baseline's upper bound
    same = _run((1, 10))
    rows, _ = compare(base, worse)
    failing = gate_failures(rows)
    assert [(r.backend, r.metric) for r in failing] == [("extractive", "unsupported_final")]
    assert gate_failures(compare(base, same)[0]) == []
    # a better candidate is never a regression
    assert gate_failures(compare(base, _run((0, 10)))[0]) == []

    runner = CliRunner()
    b = _write(tmp_path, "base.json", base)
    w = _write(tmp_path, "worse.json", worse)
    s = _write(tmp_path, "same.json", same)
    r = runner.invoke(app, ["compare", str(b), str(w), "--fail-on-regression"])
    assert r.exit_code == 1, r.output
    assert "REGRESSION" in r.output
    r = runner.invoke(app, ["compare", str(b), str(s), "--fail-on-regression"])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["compare", str(b), str(w)])  # report only
    assert r.exit_code == 0
    r = runner.invoke(app, ["compare", str(b), str(tmp_path / "missing.json")])
    assert r.exit_code == 2 and "no results file" in r.output


def test_report_is_self_contained_html_with_plots() -> None:
    doc = results([record("c1", unsupported=(2, 10), flagged=[
        {"section": "Medications", "text": "Take 50 mg metformin.", "verdict": "unsupported",
         "citations": ["MedicationRequest/1"], "reasons": ["support: dose 50 mg not in it"]}]),
        record("c2")])
    html = render(doc)
    assert html.startswith("<!doctype html>")
    assert html.count("<svg") >= 3  # metric bars, reading grade, subgroup charts
    assert "Take 50 mg metformin." in html and "support: dose 50 mg not in it" in html
    # nothing to fetch: the only URL is the SVG namespace
    urls = set(re.findall(r"https?://[^\s\"'<>]+", html))
    assert urls <= {"http://www.w3.org/2000/svg"}
    assert "<script" not in html


def test_a_blinded_check_fails_the_gate() -> None:
    def with_checker(tp: int, fn: int) -> dict:
        doc = _run((1, 10))
        doc["checker"] = {"available": True, "rows": 40, "result": {"per_type": {
            "wrong_dose": {"tp": tp, "fp": 0, "fn": fn, "tn": 20,
                           "precision": 1.0 if tp else None, "recall": tp / (tp + fn)}}}}
        return doc

    base = with_checker(20, 0)  # recall 20/20, Wilson lower bound 0.839
    rows, _ = compare(base, with_checker(12, 8))  # recall 0.6 is beyond it
    assert [(r.backend, r.metric) for r in gate_failures(rows)] == [
        ("checker", "wrong_dose.recall")]
    assert gate_failures(compare(base, with_checker(20, 0))[0]) == []
