"""Meta-evaluation of the checks on a labelled corpus: precision and recall of flagging per
defect type (also used by the evals harness).

A row is a dict: ``text``, ``citations``, ``chart`` (list[Evidence], the patient's chart),
``patient_id``, ``type`` (the defect type the row exercises), ``label`` ("flag" or "pass"), and
optionally ``cited`` (Evidence objects to resolve citations that are not in the chart, e.g. another
patient's), ``shown_ids`` (default: the whole chart), ``doc_type``, ``why``.

Per type: TP = a "flag" row flagged by the check that owns the type; FN = a "flag" row not
flagged by it; FP = a "pass" row flagged by any check.
"""

from __future__ import annotations

from typing import Any

from chartdraft_guardrails.api import check_statement
from chartdraft_guardrails.statement import Statement

EXPECTED_CHECK: dict[str, str] = {
    "wrong_dose": "support",
    "wrong_value": "support",
    "wrong_date": "support",
    "wrong_drug": "support",
    "wrong_procedure": "support",
    "wrong_frequency": "support",
    "unbacked_status": "support",
    "wrong_code": "support",  # an ICD-10 / CPT / RxNorm / SNOMED / LOINC code not on the evidence
    "unbacked_criterion": "support",  # a payer criterion "documented" by evidence lacking its fact
    "uncited": "citation",
    "invalid_citation": "citation",
    "contradiction_allergy": "contradiction",
    "contradiction_drug_allergy": "contradiction",
    "contradiction_dose": "contradiction",
    "contradiction_status": "contradiction",
    "injection_obeyed": "injection",
    "foreign_phi": "phi",
}


def run_row(row: dict[str, Any]) -> list[Any]:
    chart = row["chart"]
    by_id = {e.id: e for e in chart}
    by_id.update({e.id: e for e in row.get("cited", [])})
    st = Statement(text=row["text"], citations=list(row.get("citations", [])))
    shown = (
        set(row["shown_ids"])
        if row.get("shown_ids") is not None
        else set(by_id) - {e.id for e in row.get("cited", []) if e.patient_id != row["patient_id"]}
    )
    return check_statement(
        st,
        cited=[by_id[c] for c in st.citations if c in by_id],
        chart=chart,
        shown_ids=shown,
        patient_id=row["patient_id"],
        doc_type=row.get("doc_type", "summary"),
    )


def meta_evaluate(corpus_rows: list[dict[str, Any]]) -> dict[str, Any]:
    """{"per_type": {type: {tp, fp, fn, tn, precision, recall, n}}, "errors": [...]}"""
    per: dict[str, dict[str, Any]] = {}
    errors: list[dict[str, Any]] = []
    for row in corpus_rows:
        t = row["type"]
        stats = per.setdefault(t, {"tp": 0, "fp": 0, "fn": 0, "tn": 0})
        results = run_row(row)
        fails = [r for r in results if r.verdict != "supported"]
        want = EXPECTED_CHECK.get(t)
        if row["label"] == "flag":
            if any(r.check == want for r in fails):
                stats["tp"] += 1
            else:
                stats["fn"] += 1
                errors.append(
                    {
                        "kind": "missed",
                        "type": t,
                        "text": row["text"],
                        "why": row.get("why", ""),
                        "got": [r.reason for r in fails],
                    }
                )
        elif fails:
            stats["fp"] += 1
            errors.append(
                {
                    "kind": "false flag",
                    "type": t,
                    "text": row["text"],
                    "why": row.get("why", ""),
                    "got": [f"{r.check}: {r.reason}" for r in fails],
                }
            )
        else:
            stats["tn"] += 1
    for s in per.values():
        flagged = s["tp"] + s["fp"]
        pos = s["tp"] + s["fn"]
        s["precision"] = s["tp"] / flagged if flagged else 1.0
        s["recall"] = s["tp"] / pos if pos else 1.0
        s["n"] = s["tp"] + s["fp"] + s["fn"] + s["tn"]
    return {"per_type": per, "errors": errors, "rows": len(corpus_rows)}
