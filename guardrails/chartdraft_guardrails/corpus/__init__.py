"""The labelled statement corpus of the checks, shipped with the package, and its loader.

``charts.yaml`` holds small synthetic charts; ``synthetic.yaml`` labelled statements over them;
``synthea.yaml`` labelled statements over the third-party Synthea sample bundles (written by
``make_synthea_rows.py``). The bundles are not shipped: the caller passes their folder, and without
it the Synthea rows are skipped and ``LoadedCorpus.skipped`` says so.

    from chartdraft_guardrails.corpus import load
    from chartdraft_guardrails.meta_eval import meta_evaluate

    corpus = load(synthea_dir=Path("../shared/data/synthea-r4-bundles"))
    report = meta_evaluate(corpus.rows)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from retrieval.evidence import Evidence

CORPUS_DIR = Path(__file__).resolve().parent
SYNTHETIC_ROWS = "synthetic.yaml"
SYNTHEA_ROWS = "synthea.yaml"
SYNTHEA_PREFIX = "synthea:"


@dataclass
class LoadedCorpus:
    rows: list[dict[str, Any]]
    files: list[str]  # the row files that were loaded
    skipped: dict[str, str] = field(default_factory=dict)  # row file -> why it was not


@cache
def synthetic_charts() -> dict[str, list[Evidence]]:
    """The corpus's own synthetic charts (charts.yaml), by key, as Evidence."""
    raw = yaml.safe_load((CORPUS_DIR / "charts.yaml").read_text(encoding="utf-8"))["charts"]
    out: dict[str, list[Evidence]] = {}
    for key, chart in raw.items():
        pid = chart["patient_id"]
        out[key] = [
            Evidence(**{"patient_id": None if e.get("kind") == "knowledge" else pid, **e})
            for e in chart["evidence"]
        ]
    return out


@cache
def synthea_chart(path: Path) -> list[Evidence]:
    """One Synthea bundle, normalized (cached: many rows share a chart)."""
    from retrieval.fhir_load import load_path
    from retrieval.normalize import normalize_all

    evidence, _ = normalize_all(load_path(path).resources)
    return evidence


def _patient_id(chart: list[Evidence]) -> str:
    return next(e.patient_id for e in chart if e.resource_type == "Patient" and e.patient_id)


def rows_from(path: Path, synthea_dir: Path | None = None) -> list[dict[str, Any]]:
    """The rows of one row file, each with its chart resolved into Evidence."""

    def chart_of(ref: str) -> list[Evidence]:
        if not ref.startswith(SYNTHEA_PREFIX):
            return synthetic_charts()[ref]
        if synthea_dir is None:
            raise ValueError(f"{path.name} cites {ref} but no Synthea bundle folder was given")
        return synthea_chart(synthea_dir.resolve() / ref[len(SYNTHEA_PREFIX) :])

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    rows = []
    for i, r in enumerate(data["rows"]):
        chart = chart_of(r["chart"])
        cited: list[Evidence] = []
        for other in r.get("other", []):
            cited += chart_of(other)
        rows.append(
            {
                "id": f"{path.name}#{i}",
                "text": r["text"],
                "citations": r.get("cite", []),
                "chart": chart,
                "patient_id": _patient_id(chart),
                "cited": cited,
                "shown_ids": r.get("shown"),
                "doc_type": r.get("doc_type", "summary"),
                "type": r["type"],
                "label": r["label"],
                "why": r["why"],
            }
        )
    return rows


def load(synthea_dir: Path | None = None) -> LoadedCorpus:
    """Every row: the synthetic ones always, the Synthea ones when their bundles are at hand."""
    rows = rows_from(CORPUS_DIR / SYNTHETIC_ROWS)
    files = [SYNTHETIC_ROWS]
    skipped: dict[str, str] = {}
    if synthea_dir is None:
        skipped[SYNTHEA_ROWS] = "no Synthea bundle folder given"
    elif not synthea_dir.is_dir():
        skipped[SYNTHEA_ROWS] = f"no Synthea bundle folder at {synthea_dir}"
    else:
        rows += rows_from(CORPUS_DIR / SYNTHEA_ROWS, synthea_dir)
        files.append(SYNTHEA_ROWS)
    return LoadedCorpus(rows=rows, files=files, skipped=skipped)


def all_rows(synthea_dir: Path | None = None) -> list[dict[str, Any]]:
    return load(synthea_dir).rows
