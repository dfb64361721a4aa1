"""Load the labelled statement corpus (YAML) into rows for ``meta_evaluate``."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import yaml

from retrieval.evidence import Evidence

CORPUS = Path(__file__).parent / "corpus"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SYNTHEA = SHARED / "synthea-r4-bundles"


@cache
def synthetic_charts() -> dict[str, list[Evidence]]:
    raw = yaml.safe_load((CORPUS / "charts.yaml").read_text())["charts"]
    out: dict[str, list[Evidence]] = {}
    for key, chart in raw.items():
        pid = chart["patient_id"]
        out[key] = [
            Evidence(**{"patient_id": None if e.get("kind") == "knowledge" else pid, **e})
            for e in chart["evidence"]
        ]
    return out


@cache
def synthea_chart(filename: str) -> list[Evidence]:
    from retrieval.fhir_load import load_path
    from retrieval.normalize import normalize_all

    evidence, _ = normalize_all(load_path(SYNTHEA / filename).resources)
    return evidence


def _patient_id(chart: list[Evidence]) -> str:
    return next(e.patient_id for e in chart if e.resource_type == "Patient" and e.patient_id)


def rows_from(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text())
    rows = []
    for i, r in enumerate(data["rows"]):
        ref = r["chart"]
        chart = (
            synthea_chart(ref[len("synthea:") :])
            if ref.startswith("synthea:")
            else synthetic_charts()[ref]
        )
        cited: list[Evidence] = []
        for other in r.get("other", []):
            cited += (
                synthea_chart(other[len("synthea:") :])
                if other.startswith("synthea:")
                else synthetic_charts()[other]
            )
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


def all_rows(include_synthea: bool = True) -> list[dict[str, Any]]:
    rows = rows_from(CORPUS / "synthetic.yaml")
    if include_synthea and SYNTHEA.exists() and (CORPUS / "synthea.yaml").exists():
        rows += rows_from(CORPUS / "synthea.yaml")
    return rows
