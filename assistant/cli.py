"""The `chartdraft` command line: nouns with verbs, examples in every help text.

    chartdraft synth --patients 5 --seed 7 --out charts/
    chartdraft ingest charts/ ../shared/data/synthea-r4-bundles --json
    chartdraft patients
    chartdraft search --patient PATIENT_ID "kidney function"
    chartdraft draft --patient PATIENT_ID --type discharge-instructions
    chartdraft check --chart charts/ --draft draft.json --json
    chartdraft serve
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from assistant.settings import get_settings
from retrieval.errors import ChartdraftError

app = typer.Typer(
    help="chartdraft: cited clinical drafts from a FHIR chart, checked before anyone signs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

F = TypeVar("F", bound=Callable[..., Any])
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]


def _fail(exc: ChartdraftError, code: int = 2) -> NoReturn:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


def _print_json(obj: Any) -> None:
    typer.echo(json.dumps(obj, indent=2, default=str))


def _runtime() -> Any:
    from assistant.runtime import Runtime

    return Runtime(get_settings())


def _progress(label: str) -> Callable[[int, int], None] | None:
    """A progress bar on a terminal; nothing when output is piped (so --json stays clean)."""
    if not sys.stderr.isatty():
        return None
    from rich.progress import Progress

    bar = Progress(transient=True)
    bar.start()
    task = bar.add_task(label, total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)
        if done >= total:
            bar.stop()

    return update


@app.command()
def ingest(
    sources: Annotated[
        list[str], typer.Argument(help="Bundle files, NDJSON folders, or FHIR base URLs.")
    ],
    token: Annotated[str | None, typer.Option(help="Bearer token for a FHIR server URL.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Load FHIR charts into the chart store and the search index.

    Example: chartdraft ingest ../shared/data/synthea-r4-bundles ../shared/data/bulk-10-patients
    """
    from assistant.cli_remote import ingest_via_server, server_for
    from retrieval.fhir_load import LoadResult, load_path
    from retrieval.fhir_server import load_server
    from retrieval.ingest import ingest_loaded

    rt = _runtime()
    try:
        loaded = LoadResult(resources=[], issues=[], notices=[])
        for src in sources:
            if src.startswith(("http://", "https://")):
                loaded.extend(load_server(src, token=token))
            elif not Path(src).exists():
                raise ChartdraftError(f"no such file or folder: {src}",
                                      fix="give a FHIR Bundle file, an NDJSON folder or a URL")
            else:
                loaded.extend(load_path(src))
        server = server_for(rt.settings)
        if server is not None:  # it holds the index: send the charts through its API
            out = ingest_via_server(server, rt.settings, loaded)
            out["errors"] = [str(i) for i in loaded.issues] + out["errors"]
        else:
            report = ingest_loaded(loaded, store=rt.store, index=rt.index, embedder=rt.embedder,
                                   progress=_progress("embedding"))
            rt.ensure_knowledge_indexed()
            out = report.as_json()
    except ChartdraftError as exc:
        _fail(exc)
    finally:
        rt.close()
    if as_json:
        _print_json(out)
        return
    via = f"  (through the server at {out['via']})" if out.get("via") else ""
    typer.echo(f"patients: {out['patients']}  resources: {out['resources']}  "
               f"evidence: {out['evidence']}  newly embedded: {out['embedded']}{via}")
    for n in out["notices"]:
        typer.echo(f"notice: {n}")
    for i in out["errors"]:
        typer.secho(f"error: {i}", fg=typer.colors.YELLOW, err=True)
    if out.get("via"):  # search cannot run beside the server that holds the index
        typer.echo("next: chartdraft patients   |   chartdraft draft --patient ID")
    else:
        typer.echo("next: chartdraft patients   |   chartdraft search --patient ID \"QUERY\"")


@app.command()
def patients(as_json: JsonOpt = False) -> None:
    """List the patients in the chart store.  Example: chartdraft patients --json"""
    rt = _runtime()
    rows = rt.store.patients()
    if as_json:
        _print_json([r.__dict__ if hasattr(r, "__dict__") else r for r in rows])
        return
    for r in rows:
        typer.echo(f"{r.id}\t{r.name}\t{r.birth_date}\t{r.gender}\t{r.evidence} evidence")


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for in the patient's chart.")],
    patient: Annotated[str, typer.Option("--patient", help="Patient id (required).")],
    limit: int = 10,
    as_json: JsonOpt = False,
) -> None:
    """Hybrid search over one patient's chart.  Example: chartdraft search --patient P1 "A1c" """
    from assistant.cli_remote import search_refused, server_for

    rt = _runtime()
    try:
        server = server_for(rt.settings)
        if server is not None:
            raise search_refused(server, rt.settings)
        vec = rt.embedder.embed([query])[0]
        hits = rt.index.search(dense=vec, text=query, patient_id=patient, limit=limit)
    except ChartdraftError as exc:
        _fail(exc)
    finally:
        rt.close()
    out = [{"id": h.evidence.id, "patient_id": h.evidence.patient_id, "score": round(h.score, 4),
            "text": h.evidence.text} for h in hits]
    if as_json:
        _print_json(out)
        return
    for h in out:
        typer.echo(f"{h['score']:.3f}  {h['id']}  {h['text'][:100]}")


@app.command()
def synth(
    patients: Annotated[int, typer.Option("--patients", help="How many patients.")] = 5,
    seed: Annotated[int, typer.Option(help="Same seed, same charts.")] = 1,
    out: Annotated[Path, typer.Option(help="Folder for the FHIR bundles.")] = Path("synthetic"),
    attacks: Annotated[bool, typer.Option(help="Plant injections and foreign PHI.")] = False,
) -> None:
    """Write synthetic patients as FHIR R4 bundles.

    Example: chartdraft synth --patients 10 --seed 7 --out charts/
    """
    from retrieval.synth import write

    paths = write(patients, seed, out, attacks=attacks)
    typer.echo(f"wrote {len(paths)} bundles to {out}")


def _load_plugins() -> None:
    """Sub-apps from higher layers (e.g. `chartdraft eval` from evals/) register by entry point."""
    for ep in entry_points(group="chartdraft.commands"):
        try:
            app.add_typer(ep.load(), name=ep.name)
        except Exception as exc:  # a broken plugin must not take the whole CLI down
            typer.secho(f"warning: command group {ep.name!r} unavailable: {exc}", err=True)


def _register_all() -> None:
    from assistant import cli_admin, cli_draft, cli_service

    cli_draft.register(app)
    cli_service.register(app)
    cli_admin.register(app)
    _load_plugins()


_register_all()
