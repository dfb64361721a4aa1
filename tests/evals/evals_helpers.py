"""Build small, schema-valid results documents from hand-made case records."""

from __future__ import annotations

from datetime import date
from types import SimpleNamespace
from typing import Any

from evals.results import build_results
from evals.suite import Suite


def record(case_id: str, backend: str = "extractive", *, unsupported: tuple[int, int] = (0, 10),
           groups: dict[str, str] | None = None, status: str = "ok",
           flagged: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "backend": backend, "case_id": case_id, "doc_type": "summary", "patient_id": "p-" + case_id,
        "status": status, "tags": [], "groups": groups or {
            "age_band": "18-44", "sex": "female", "race": "White",
            "ethnicity": "Not Hispanic or Latino", "payer": "Medicare"},
        "metrics": {"unsupported_final": list(unsupported), "citation_coverage": [10, 10],
                    "phi_leak": [0, 1], "case_error": [0, 1], "readability_grade": None},
        "details": {"omitted": []}, "flagged": flagged or [],
        "timings": {"gather": 0.1, "total": 0.5}, "tokens_in": 0, "tokens_out": 0,
        "model": "none (extractive)",
    }


def results(records: list[dict[str, Any]], backends: tuple[str, ...] = ("extractive",),
            suite_hash: str = "0" * 64) -> dict[str, Any]:
    suite = Suite(name="unit", charts={})
    return build_results(suite=suite, suite_hash=suite_hash, suite_path="unit.yaml", cases=[],
                         records=records, cfg=SimpleNamespace(backends=list(backends)),
                         anchor=date(2026, 1, 1), engine_info={}, wall_seconds=1.0,
                         with_checker=False)
