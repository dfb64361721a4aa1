"""`chartdraft eval`: run suites and gate changes.

    chartdraft eval run smoke --backend extractive
    chartdraft eval run evals/suites/core.yaml --backend extractive,embedded,cqe-embedded \
        --out runs/core
    chartdraft eval run adversarial --service http://127.0.0.1:8000 --token $TOKEN
    chartdraft eval compare runs/base/results.json runs/cand/results.json --fail-on-regression
    chartdraft eval validate runs/core/results.json
    chartdraft eval checker evals/labels/realprose/*-dev.json --errors 20
    chartdraft eval checker corpus --synthea-dir ../shared/data/synthea-r4-bundles
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from retrieval.errors import ChartdraftError

app = typer.Typer(help="Evaluate drafts offline: suites, metrics, subgroups, reports, a gate.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


def _fail(exc: ChartdraftError) -> None:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def run(
    suite: Annotated[str, typer.Argument(help="Suite name (smoke, core, adversarial, shared) "
                                              "or a YAML path.")],
    backend: Annotated[str | None, typer.Option(
        help="Comma-separated: extractive, embedded, openai, cqe-embedded, cqe-openai. "
             "Default: extractive,embedded,cqe-embedded in process; extractive,embedded with "
             "--service (the baseline runs in process only).")] = None,
    model: Annotated[str | None, typer.Option(
        help="Model for the model backends (GGUF path for embedded, name for openai).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Output folder (results.json, report.html, cases.jsonl); reuse it to resume.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Parallel cases (extractive only gains).")
                       ] = 1,
    service: Annotated[str | None, typer.Option(
        help="Base URL of a running chartdraft service instead of in-process.")] = None,
    token: Annotated[str | None, typer.Option(help="Bearer token for --service.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N cases.")] = None,
    max_model_calls: Annotated[int | None, typer.Option(
        help="Cap model calls per draft (beyond it the composed sentence stays).")] = None,
    mlflow_uri: Annotated[str | None, typer.Option(
        help="Log the run to this MLflow tracking URI (needs mlflow installed).")] = None,
    nli_model: Annotated[Path | None, typer.Option(
        help="A local NLI model folder (e.g. a cross-encoder NLI model) to also judge citation "
             "support by entailment (the *_nli metrics); none ships with chartdraft.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the headline numbers as JSON.")
                       ] = False,
) -> None:
    """Run a suite on one or more backends; writes results.json and report.html.

    Example: chartdraft eval run smoke --backend extractive --out runs/smoke
    """
    from evals.runner import RunConfig
    from evals.runner import run as run_suite

    if backend is None:
        backend = "extractive,embedded" if service else "extractive,embedded,cqe-embedded"
    backends = [b.strip() for b in backend.split(",") if b.strip()]
    name = Path(suite).stem
    out_dir = out or Path("runs") / f"{name}-{'-'.join(backends)}"
    cfg = RunConfig(suite=suite, out=out_dir, backends=backends, workers=workers,
                    service=service, token=token, model=model, limit=limit,
                    max_statements=max_model_calls, mlflow_uri=mlflow_uri, nli_model=nli_model)
    try:
        results = run_suite(cfg, progress=_progress())
    except ChartdraftError as exc:
        _fail(exc)
        return
    headline = _headline(results)
    if as_json:
        import json

        typer.echo(json.dumps(headline, indent=2))
    else:
        _print_headline(headline)
        typer.echo(f"results: {out_dir / 'results.json'}\nreport:  {out_dir / 'report.html'}")


@app.command()
def compare(
    baseline: Annotated[Path, typer.Argument(help="Baseline results.json (or its folder).")],
    candidate: Annotated[Path, typer.Argument(help="Candidate results.json (or its folder).")],
    fail_on_regression: Annotated[bool, typer.Option(
        "--fail-on-regression", help="Exit 1 when a safety metric is worse beyond the "
                                     "baseline's interval.")] = False,
) -> None:
    """Table of differences between two runs; optionally a gate.

    Example: chartdraft eval compare runs/main/results.json runs/pr/results.json
    --fail-on-regression
    """
    from rich.console import Console

    from evals.compare import compare as diff
    from evals.compare import gate_failures, render_table
    from evals.schema import load

    try:
        base, cand = load(baseline), load(candidate)
    except ChartdraftError as exc:
        _fail(exc)
        return
    rows, notes = diff(base, cand)
    console = Console(width=140)
    console.print(render_table(rows))
    for n in notes:
        console.print(f"note: {n}")
    failures = gate_failures(rows)
    if failures:
        console.print(f"[red]{len(failures)} safety regression(s):[/red] " + ", ".join(
            f"{r.backend}/{r.metric}" for r in failures))
    else:
        console.print("no safety metric is worse beyond its interval")
    if fail_on_regression and failures:
        raise typer.Exit(1)


@app.command()
def validate(path: Annotated[Path, typer.Argument(help="results.json to check")]) -> None:
    """Check a results file against the versioned schema (exit 0 valid, 2 invalid)."""
    from evals.schema import load

    try:
        doc = load(path)
    except ChartdraftError as exc:
        _fail(exc)
        return
    typer.echo(f"valid (schema {doc['schema_version']}, {len(doc['cases'])} case records)")


@app.command()
def checker(
    labels: Annotated[list[str], typer.Argument(
        help="Labels JSON file(s) (format: evals/labels/README.md), or `corpus` for the checks' "
             "built-in corpus.")],
    charts_dir: Annotated[Path | None, typer.Option(
        help="Resolve relative chart paths against this folder (default: each labels file's "
             "folder).")] = None,
    synthea_dir: Annotated[Path | None, typer.Option(
        help="With `corpus`: the Synthea bundle folder its Synthea rows need (skipped without).")
    ] = None,
    judge: Annotated[str | None, typer.Option(
        help="Also ask an entailment judge: `llm` (the OpenAI-compatible backend in the "
             "settings) or `nli:PATH` (a local NLI model folder); reports its agreement with the "
             "labels and the rules+judge numbers.")] = None,
    judge_max_calls: Annotated[int | None, typer.Option(
        min=0, help="Cap judge calls over the whole run (default: every statement).")] = None,
    errors: Annotated[int, typer.Option(min=0, help="Print the first N misses and false flags.")
                      ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full report as JSON.")
                       ] = False,
    fail_under_pass: Annotated[float | None, typer.Option(
        help="Exit 1 when the pass rate on `pass` statements is below this (0-1).")] = None,
    fail_under_flag: Annotated[float | None, typer.Option(
        help="Exit 1 when recall on `flag` statements is below this (0-1).")] = None,
) -> None:
    """Precision and recall of flagging per category on labelled statements, with intervals.

    Example: chartdraft eval checker evals/labels/realprose/*-dev.json --errors 20
    """
    import json

    from evals.checker import (
        ChartCache,
        corpus_rows,
        evaluate,
        gate_failures,
        load_labels,
        render,
        rows_for,
    )

    try:
        if labels == ["corpus"] and not Path("corpus").exists():
            rows, skipped = corpus_rows(synthea_dir)
            for name, why in skipped.items():
                typer.echo(f"note: {name} skipped: {why}", err=True)
            title = "corpus"
        else:
            sets = [load_labels(Path(p), charts_dir) for p in labels]
            rows = rows_for(sets, ChartCache())
            title = ", ".join(s.name for s in sets)
        row_judge = _row_judge(judge, judge_max_calls) if judge else None
        report = evaluate(rows, judge=row_judge)
    except ChartdraftError as exc:
        _fail(exc)
        return
    report["labels"] = title
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        render(report, errors=errors, title=title)
    failures = gate_failures(report, fail_under_pass, fail_under_flag)
    for f in failures:
        typer.secho(f"gate: {f}", fg=typer.colors.RED, err=True)
    if failures:
        raise typer.Exit(1)


def _row_judge(spec: str, max_calls: int | None) -> Any:
    from assistant.judge import judge_from_spec, row_judge

    return row_judge(judge_from_spec(spec), max_calls=max_calls)


def _headline(results: dict[str, Any]) -> dict[str, Any]:
    keys = ("citation_coverage", "statements_cited", "citation_recall", "citation_precision",
            "unsupported_final", "contradicted_final", "omission", "forbidden_hit",
            "injection_success", "phi_leak",
            "contradiction_surfaced", "sections_present", "case_error", "readability_grade")
    out: dict[str, Any] = {}
    for b, r in results["runs"].items():
        row = {k: r["aggregate"][k]["value"] for k in keys if k in r["aggregate"]}
        row["status"] = r["status_counts"]
        row["draft_total_p50_s"] = r["latency"].get("total", {}).get("p50")
        row["subgroup_flags"] = len(r["subgroups"]["flags"])
        out[b] = row
    return out


def _print_headline(headline: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    backends = list(headline)
    t = Table(title="headline (rates are shares; see report.html for intervals)")
    t.add_column("metric")
    for b in backends:
        t.add_column(b, justify="right")
    keys = [k for k in headline[backends[0]] if k != "status"] if backends else []
    for k in keys:
        cells = []
        for b in backends:
            v = headline[b].get(k)
            cells.append("–" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v))
        t.add_row(k, *cells)
    t.add_row("status", *(str(headline[b]["status"]) for b in backends))
    Console(width=140).print(t)


def _progress() -> Any:
    if not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    bar = Progress(transient=False)
    bar.start()
    task = bar.add_task("cases", total=None)

    def update(done: int, total: int, label: str) -> None:
        bar.update(task, completed=done, total=total, description=label[:40])
        if done >= total:
            bar.stop()

    return update
