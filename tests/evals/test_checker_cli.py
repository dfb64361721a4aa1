"""`chartdraft eval checker`: a labels file over a tiny two-patient chart written here.

The expected outcomes are ones no tuning of the rules may change: a verbatim restatement of a lab
result passes, a wrong value, an uncited clinical sentence and a citation to another patient's
resource are flagged. Counts and intervals are computed from those outcomes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from evals.cli import app
from evals.metrics import wilson

runner = CliRunner()


def _res(kind: str, rid: str, pid: str | None, **body: Any) -> dict[str, Any]:
    out = {"resourceType": kind, "id": rid, **body}
    if pid is not None:
        out["patient" if kind == "AllergyIntolerance" else "subject"] = {
            "reference": f"Patient/{pid}"}
    return out


def _active() -> dict[str, Any]:
    return {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                        "code": "active"}]}


RESOURCES = [
    _res("Patient", "pa", None, name=[{"family": "Testa", "given": ["Ann"]}], gender="female",
         birthDate="1960-04-02"),
    _res("Patient", "pb", None, name=[{"family": "Testb", "given": ["Bo"]}], gender="male",
         birthDate="1955-01-09"),
    _res("Observation", "a1c", "pa", status="final",
         code={"coding": [{"system": "http://loinc.org", "code": "4548-4",
                           "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}],
               "text": "Hemoglobin A1c"},
         effectiveDateTime="2024-03-05",
         valueQuantity={"value": 7.2, "unit": "%", "system": "http://unitsofmeasure.org",
                        "code": "%"}),
    _res("Condition", "dm", "pa", clinicalStatus=_active(),
         code={"coding": [{"system": "http://snomed.info/sct", "code": "44054006",
                           "display": "Diabetes mellitus type 2"}], "text": "Type 2 diabetes"},
         onsetDateTime="2015-06-01"),
    _res("Condition", "asthma-b", "pb", clinicalStatus=_active(),
         code={"coding": [{"system": "http://snomed.info/sct", "code": "195967001",
                           "display": "Asthma"}], "text": "Asthma"},
         onsetDateTime="2001-02-01"),
]

# The normalizer renders the A1c as "Hemoglobin A1c: 7.2 %, on 2024-03-05": said back verbatim.
STATEMENTS = [
    {"id": "s1", "text": "Hemoglobin A1c: 7.2 %, on 2024-03-05.", "citations": ["Observation/a1c"],
     "expected": "pass", "category": "lab"},
    {"id": "s2", "text": "Hemoglobin A1c was 9.8 % on 2024-03-05.",
     "citations": ["Observation/a1c"], "expected": "flag", "category": "lab",
     "why": "the chart says 7.2 %"},
    {"id": "s3", "text": "Your metformin dose was raised to 1000 mg twice daily.",
     "citations": [], "expected": "flag", "category": "uncited"},
    {"id": "s4", "text": "Asthma, active, since 2001-02-01.", "citations": ["Condition/asthma-b"],
     "expected": "flag", "category": "foreign"},
    # Labelled wrongly on purpose: a correct statement marked as a defect is a "miss".
    {"id": "s5", "text": "Hemoglobin A1c: 7.2 %, on 2024-03-05.",
     "citations": ["Observation/a1c"], "expected": "flag", "category": "mislabelled",
     "why": "MISLABEL-MARKER"},
]


def _bundle() -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection",
            "entry": [{"resource": r} for r in RESOURCES]}


def _labels(chart: str, statements: list[dict[str, Any]] | None = None,
            **case: Any) -> dict[str, Any]:
    return {"format": "chartdraft-checker-labels/1", "name": "unit",
            "cases": [{"id": "c1", "chart": chart, "patient": "Patient/pa",
                       "doc_type": "summary", "statements": statements or STATEMENTS, **case}]}


@pytest.fixture
def labelled(tmp_path: Path) -> Path:
    (tmp_path / "charts").mkdir()
    (tmp_path / "charts" / "two.json").write_text(json.dumps(_bundle()))
    path = tmp_path / "labels.json"
    path.write_text(json.dumps(_labels("charts/two.json")))
    return path


def _run(*args: str) -> Any:
    return runner.invoke(app, ["checker", *args])


def test_json_report_counts_and_intervals(labelled: Path) -> None:
    res = _run(str(labelled), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    rules = report["rules"]
    per = rules["per_category"]
    assert (per["lab"]["tp"], per["lab"]["tn"], per["lab"]["fp"], per["lab"]["fn"]) == (1, 1, 0, 0)
    assert per["uncited"]["tp"] == 1 and per["foreign"]["tp"] == 1
    assert per["mislabelled"]["fn"] == 1 and per["mislabelled"]["recall"]["value"] == 0.0
    o = rules["overall"]
    assert (o["n"], o["pass_rows"], o["flag_rows"]) == (5, 1, 4)
    assert (o["tp"], o["fn"], o["fp"], o["tn"]) == (3, 1, 0, 1)
    assert o["recall"]["value"] == pytest.approx(3 / 4)
    assert (o["recall"]["lo"], o["recall"]["hi"]) == pytest.approx(wilson(3, 4))
    assert o["precision"]["value"] == 1.0
    assert o["false_flag_rate"]["value"] == 0.0
    assert (o["false_flag_rate"]["lo"], o["false_flag_rate"]["hi"]) == pytest.approx(wilson(0, 1))
    assert rules["min_category_recall"] == 0.0
    by_flag = report["by_verdict"]["flag"]
    assert by_flag.get("uncited") == 1 and by_flag.get("supported") == 1
    assert report["by_verdict"]["pass"] == {"supported": 1}
    [miss] = report["errors"]
    assert miss["id"] == "s5" and miss["kind"] == "miss" and miss["why"] == "MISLABEL-MARKER"


def test_table_and_errors_listing(labelled: Path) -> None:
    res = _run(str(labelled), "--errors", "5")
    assert res.exit_code == 0, res.output
    for word in ("OVERALL", "lab", "uncited", "foreign", "precision", "recall", "false-flag"):
        assert word in res.output
    assert "MISLABEL-MARKER" in res.output and "[miss]" in res.output
    assert "MISLABEL-MARKER" not in _run(str(labelled)).output  # only with --errors


def test_gates(labelled: Path) -> None:
    # recall 3/4 and pass rate 1/1
    assert _run(str(labelled), "--fail-under-flag", "0.7").exit_code == 0
    res = _run(str(labelled), "--fail-under-flag", "0.8")
    assert res.exit_code == 1 and "recall on defects 0.750" in res.output
    assert _run(str(labelled), "--fail-under-pass", "1.0").exit_code == 0


def test_several_files_and_charts_dir(labelled: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / "more.json"
    other.parent.mkdir()
    doc = _labels("two.json", [{**STATEMENTS[1], "id": "x1"}])
    doc["name"] = "more"
    other.write_text(json.dumps(doc))
    # Without --charts-dir the chart is looked for next to the labels file: a clear error.
    res = _run(str(other))
    assert res.exit_code == 2 and "does not exist" in res.output and "--charts-dir" in res.output
    res = _run(str(labelled), str(other), "--charts-dir", str(tmp_path / "charts"), "--json")
    assert res.exit_code == 2  # --charts-dir applies to both: labels.json says charts/two.json
    (tmp_path / "charts" / "charts").mkdir()
    (tmp_path / "charts" / "charts" / "two.json").write_text(json.dumps(_bundle()))
    res = _run(str(labelled), str(other), "--charts-dir", str(tmp_path / "charts"), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["rules"]["overall"]["n"] == 6
    assert set(report["per_set"]) == {"unit", "more"}


def test_bulk_folder_keeps_one_patient(tmp_path: Path) -> None:
    bulk = tmp_path / "bulk"
    bulk.mkdir()
    by_type: dict[str, list[str]] = {}
    for r in RESOURCES:
        by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
    for kind, lines in by_type.items():
        (bulk / f"{kind}.000.ndjson").write_text("\n".join(lines) + "\n")
    labels = tmp_path / "l.json"
    labels.write_text(json.dumps(_labels("bulk", STATEMENTS[:4])))
    res = _run(str(labels), "--json")
    assert res.exit_code == 0, res.output
    o = json.loads(res.output)["rules"]["overall"]
    assert (o["tp"], o["tn"], o["fp"], o["fn"]) == (3, 1, 0, 0)


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda d, p: None, "no labels file"),
        (lambda d, p: p.write_text('{"format": "chartdraft-checker-labels/1", "cases": ['),
         "not valid JSON"),
        (lambda d, p: p.write_text(json.dumps({**d, "format": "other/2"})), "unknown format"),
        (lambda d, p: p.write_text(json.dumps(_labels(
            "charts/two.json", [{**STATEMENTS[0], "category": {"kind": "lab"}}]))),
         "field 'category' must be a non-empty str"),
        (lambda d, p: p.write_text(json.dumps(_labels(
            "charts/two.json", [{k: v for k, v in STATEMENTS[0].items() if k != "expected"}]))),
         "missing field 'expected'"),
        (lambda d, p: p.write_text(json.dumps(_labels(
            "charts/two.json", [{**STATEMENTS[0], "expected": "maybe"}]))),
         "expected must be 'pass' or 'flag'"),
        (lambda d, p: p.write_text(json.dumps(_labels(
            "charts/two.json", [{**STATEMENTS[0], "citations": "Observation/a1c"}]))),
         "citations must be a list"),
        (lambda d, p: p.write_text(json.dumps(_labels("charts/two.json", doc_type="letter"))),
         "unknown doc_type 'letter'"),
        (lambda d, p: p.write_text(json.dumps(_labels("charts/two.json", patient="nobody"))),
         "patient 'nobody' is not in chart two.json"),
        (lambda d, p: p.write_text(json.dumps(_labels("charts/none.json"))), "does not exist"),
    ],
)
def test_bad_input_is_a_clear_error(labelled: Path, make: Any, needle: str) -> None:
    bad = labelled.parent / "bad.json"
    make(json.loads(labelled.read_text()), bad)
    res = _run(str(bad))
    assert res.exit_code == 2, res.output
    assert needle in res.output and "Traceback" not in res.output
    assert str(bad) in res.output  # where


def test_corpus_runs_through_the_same_report() -> None:
    from chartdraft_guardrails.corpus import load

    rows = load().rows
    res = _run("corpus", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    assert report["rules"]["overall"]["n"] == len(rows)
    assert set(report["rules"]["per_category"]) == {r["type"] for r in rows}
    flags = sum(1 for r in rows if r["label"] == "flag")
    assert report["rules"]["overall"]["flag_rows"] == flags


def _nli_model(folder: Path, bias: list[float]) -> Path:
    """A 1-layer BERT NLI model with a zeroed head: every pair gets exactly these logits."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    folder.mkdir(parents=True)
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                                 "hemoglobin"]) + "\n")
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(str(folder))
    config = BertConfig(vocab_size=6, hidden_size=16, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=17, id2label=labels,
                        label2id={v: k for k, v in labels.items()})
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.copy_(torch.tensor(bias))
    model.save_pretrained(str(folder))
    return folder


def test_judge_nli_is_reported_next_to_the_rules(labelled: Path, tmp_path: Path) -> None:
    # A judge that finds everything contradicted: it flags every cited row it is asked about.
    model = _nli_model(tmp_path / "nli", [5.0, 0.0, 0.0])
    res = _run(str(labelled), "--judge", f"nli:{model}", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    j = report["judge"]
    assert j["ran"] == 4 and j["not_run"] == {"skipped": 1}  # s3 cites nothing
    assert j["by_verdict"] == {"pass": {"unsupported": 1}, "flag": {"unsupported": 3}}
    alone = j["alone"]["overall"]
    assert (alone["tp"], alone["fp"], alone["fn"], alone["tn"]) == (3, 1, 0, 0)
    assert j["agreement"]["value"] == pytest.approx(3 / 4)
    combined = report["combined"]["overall"]
    # rules: TP 3, FN 1 (the mislabelled row), TN 1; the judge flags both remaining rows
    assert (combined["tp"], combined["fn"], combined["fp"], combined["tn"]) == (4, 0, 1, 0)
    assert report["rules"]["overall"]["tp"] == 3  # the rules-only numbers are kept as they were
    # The gate reads the combined numbers when a judge ran: pass rate 0 now.
    assert _run(str(labelled), "--judge", f"nli:{model}", "--fail-under-pass",
                "0.5").exit_code == 1
    table = _run(str(labelled), "--judge", f"nli:{model}").output
    assert "judge alone" in table and "rules + judge" in table


def test_unknown_judge_is_a_clear_error(labelled: Path, tmp_path: Path) -> None:
    res = _run(str(labelled), "--judge", "oracle")
    assert res.exit_code == 2 and "unknown judge 'oracle'" in res.output
    res = _run(str(labelled), "--judge", f"nli:{tmp_path / 'none'}")
    assert res.exit_code == 2 and "no model config.json" in res.output
