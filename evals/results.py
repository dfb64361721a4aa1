"""Assemble results.json (manifest, per-backend aggregates, subgroups, cases) and write outputs."""

from __future__ import annotations

import json
import math
import platform
import subprocess
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from evals import metrics as M
from evals.schema import SCHEMA_VERSION, validate
from evals.subgroups import breakdown
from evals.suite import REPO_ROOT, Case, Suite


def git_commit() -> tuple[str | None, bool | None]:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
                                    check=True).stdout.strip())
        return sha, dirty
    except (OSError, subprocess.SubprocessError):
        return None, None


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("chartdraft")
    except PackageNotFoundError:
        return "unknown"


def prompt_versions() -> dict[str, str]:
    try:
        from prompts.registry import get, prompt_ids

        return {pid: str(get(pid).version) for pid in prompt_ids()}
    except ImportError:
        return {}


def run_summary(backend: str, records: list[dict[str, Any]]) -> dict[str, Any]:
    scored = [r for r in records if r.get("status") != "skipped"]
    ok = [r for r in scored if r.get("status") == "ok"]
    return {
        "backend": backend,
        "models": sorted({str(r["model"]) for r in ok if r.get("model")}),
        "cases": len(records),
        "status_counts": dict(Counter(str(r.get("status")) for r in records)),
        "fallbacks": sum(1 for r in ok if r.get("fallback_reason")),
        "aggregate": M.aggregate([r.get("metrics") or {} for r in scored]),
        "subgroups": breakdown(scored),
        "latency": M.latency([r.get("timings") or {} for r in ok]),
        "tokens": M.tokens([(int(r.get("tokens_in") or 0), int(r.get("tokens_out") or 0))
                            for r in ok]),
    }


def build_results(*, suite: Suite, suite_hash: str, suite_path: str, cases: list[Case],
                  records: list[dict[str, Any]], cfg: Any, anchor: date,
                  engine_info: dict[str, Any], wall_seconds: float,
                  with_checker: bool = True) -> dict[str, Any]:
    sha, dirty = git_commit()
    runs = {b: run_summary(b, [r for r in records if r["backend"] == b]) for b in cfg.backends}
    models = {b: run["models"] for b, run in runs.items()}
    manifest = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": sha, "git_dirty": dirty,
        "suite": {"name": suite.name, "version": suite.version, "path": str(suite_path),
                  "sha256": suite_hash, "cases": len(cases)},
        "backends": list(cfg.backends),
        "models": models,
        "prompt_versions": prompt_versions(),
        "settings_fingerprint": engine_info.get("settings_fingerprint"),
        "service": engine_info.get("service"),
        "entailment": engine_info.get("entailment"),  # the NLI judge, or None without one
        "anchor_date": anchor.isoformat(),
        "chartdraft_version": _version(),
        "python": platform.python_version(),
        "wall_seconds": round(wall_seconds, 3),
        "metrics": {m.name: {"kind": m.kind, "better": m.better, "safety": m.safety,
                             "label": m.label} for m in M.METRICS},
    }
    order = {c.id: i for i, c in enumerate(cases)}
    records = sorted(records, key=lambda r: (cfg.backends.index(r["backend"]),
                                             order.get(r["case_id"], 0)))
    return clean({"schema_version": SCHEMA_VERSION, "manifest": manifest, "runs": runs,
                  "checker": checker_meta_eval() if with_checker else None,
                  "cases": records})


def clean(obj: Any) -> Any:
    """NaN/inf are not JSON: write them as null."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [clean(v) for v in obj]
    return obj


def checker_meta_eval() -> dict[str, Any] | None:
    """Precision/recall of the checks on the labelled corpus, when the guardrails provide it."""
    try:
        from chartdraft_guardrails.meta_eval import meta_evaluate
    except ImportError:
        return {"available": False, "reason": "chartdraft_guardrails.meta_eval not installed"}
    # The Synthea sample bundles sit beside a checkout; elsewhere their rows are skipped (and said).
    synthea = REPO_ROOT.parent / "shared" / "data" / "synthea-r4-bundles"
    try:
        rows, skipped = load_corpus(synthea)
        result = meta_evaluate(rows)
    except Exception as exc:  # a corpus being edited must not lose the run: report it
        return {"available": False, "reason": f"{type(exc).__name__}: {str(exc)[:300]}"}
    if hasattr(result, "model_dump"):
        result = result.model_dump(mode="json")
    return {"available": True, "rows": len(rows), "skipped": skipped,
            "result": json.loads(json.dumps(result, default=str))}


def load_corpus(synthea_dir: Path | None) -> tuple[list[Any], dict[str, str]]:
    """Labelled rows from the corpus shipped in chartdraft_guardrails (charts resolved into
    Evidence), and the row files skipped with why (the Synthea rows need the bundles, which only a
    checkout beside ../shared/data has)."""
    from chartdraft_guardrails.corpus import load

    corpus = load(synthea_dir)
    return corpus.rows, corpus.skipped


def write_outputs(results: dict[str, Any], out: Path) -> None:
    from evals.report import render

    validate(results, where=str(out / "results.json"))
    (out / "results.json").write_text(json.dumps(results, indent=1, default=str),
                                      encoding="utf-8")
    (out / "report.html").write_text(render(results), encoding="utf-8")


def log_mlflow(results: dict[str, Any], uri: str, out: Path) -> dict[str, str]:
    """Log each backend's run to MLflow: params, headline metrics, results.json and report.html.

    Returns the MLflow run id per backend. MLflow is optional: without it, or when the tracking
    store fails, this raises (what/where/fix) after the results are already written to ``out``.
    """
    import os

    from retrieval.errors import BadInput, StoreError

    # MLflow 3 sends usage telemetry from the moment it is imported: drafts and their metrics stay
    # on this machine, so it is switched off first (forced: a site's env must not turn it back on).
    os.environ["MLFLOW_DISABLE_TELEMETRY"] = "true"
    try:
        import mlflow
    except ImportError as exc:
        raise BadInput(
            f"MLflow is not installed, so the run was not logged ({exc}); the results are in "
            f"{out / 'results.json'}",
            where="--mlflow-uri", fix="pip install mlflow-skinny, or leave out --mlflow-uri",
        ) from exc
    try:
        from mlflow.telemetry import get_telemetry_client, set_telemetry_client
    except ImportError:  # MLflow before 3.2 has no telemetry
        pass
    else:
        if get_telemetry_client() is not None:  # imported before us: drop the client it made
            set_telemetry_client()
    if uri.startswith("file:") or "://" not in uri:
        # MLflow 3.17 refuses its file store unless opted in; with mlflow-skinny (no alembic, so
        # no sqlite store) a folder is the local store there is. An explicit "false" still wins.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    man = results["manifest"]
    ids: dict[str, str] = {}
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(f"chartdraft-{man['suite']['name']}")
        for backend, run in results["runs"].items():
            with mlflow.start_run(run_name=backend) as active:
                mlflow.log_params({"backend": backend, "git_commit": man["git_commit"],
                                   "suite_sha256": man["suite"]["sha256"],
                                   "settings": man["settings_fingerprint"]})
                mlflow.log_metrics({k: v["value"] for k, v in run["aggregate"].items()
                                    if v.get("value") is not None})
                mlflow.log_artifact(str(out / "results.json"))
                mlflow.log_artifact(str(out / "report.html"))
                ids[backend] = active.info.run_id
    except Exception as exc:  # MlflowException, OSError, HTTP errors: say which store and why
        raise StoreError(
            f"MLflow logging failed ({type(exc).__name__}: {str(exc)[:600]}); the results are in "
            f"{out / 'results.json'}",
            where=f"--mlflow-uri {uri}",
            fix="check the tracking URI (a local folder as file:///path, or a tracking server as "
                "http://host:5000) and that its server is up",
        ) from exc
    return ids
