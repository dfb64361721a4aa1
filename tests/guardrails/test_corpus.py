"""Precision and recall of flagging, per defect type, on the labelled corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
from chartdraft_guardrails.corpus import SYNTHEA_ROWS, load
from chartdraft_guardrails.meta_eval import meta_evaluate

SYNTHEA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "synthea-r4-bundles"

RECALL_MIN = 0.95
PRECISION_MIN = 0.90


@pytest.fixture(scope="module")
def report() -> dict:
    return meta_evaluate(load(SYNTHEA).rows)


def test_corpus_size_and_labels(report: dict) -> None:
    if not SYNTHEA.exists():
        pytest.skip("../shared/data is absent: only the synthetic half of the corpus ran")
    assert report["rows"] >= 300


def test_synthea_rows_skipped_and_said_without_bundles(tmp_path: Path) -> None:
    corpus = load(tmp_path / "absent")
    assert corpus.files == ["synthetic.yaml"]
    assert SYNTHEA_ROWS in corpus.skipped and "absent" in corpus.skipped[SYNTHEA_ROWS]
    assert corpus.rows and all(r["id"].startswith("synthetic.yaml#") for r in corpus.rows)


def test_corpus_ships_inside_the_package() -> None:
    from importlib.resources import files

    data = files("chartdraft_guardrails.corpus")
    for name in ("charts.yaml", "synthetic.yaml", "synthea.yaml"):
        assert data.joinpath(name).is_file(), name


def test_precision_recall_per_defect_type(report: dict) -> None:
    print(f"\n{'defect type':28} {'n':>4} {'tp':>4} {'fp':>4} {'fn':>4} {'prec':>6} {'recall':>6}")
    for t, s in sorted(report["per_type"].items()):
        print(
            f"{t:28} {s['n']:>4} {s['tp']:>4} {s['fp']:>4} {s['fn']:>4} "
            f"{s['precision']:>6.2f} {s['recall']:>6.2f}"
        )
    for e in report["errors"]:
        print(f"  {e['kind']:10} [{e['type']}] {e['text']!r} ({e['why']}) -> {e['got']}")
    low = {
        t: (round(s["precision"], 2), round(s["recall"], 2))
        for t, s in report["per_type"].items()
        if s["recall"] < RECALL_MIN or s["precision"] < PRECISION_MIN
    }
    assert not low, f"below recall {RECALL_MIN} / precision {PRECISION_MIN}: {low}"
