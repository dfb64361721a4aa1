"""`chartdraft draft` and `chartdraft check`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.draft import Draft
from assistant.settings import Settings
from retrieval.errors import BadInput, ChartdraftError


def _render_human(draft: Draft) -> str:
    lines = [f"{draft.doc_type} for patient {draft.patient_id}   "
             f"[{draft.backend}/{draft.mode}, model {draft.model}]"]
    if draft.fallback_reason:
        lines.append(f"!! extractive fallback: {draft.fallback_reason}")
    for sec in draft.sections:
        lines.append(f"\n## {sec.title}")
        for st in sec.statements:
            flag = "" if not st.flagged else f"   <-- {st.verdict.upper()}: " + "; ".join(
                r.reason for r in st.results if r.verdict != "supported")
            cites = f" [{', '.join(st.citations)}]" if st.citations else ""
            lines.append(f"- {st.text}{cites}{flag}")
    t = draft.timings
    lines.append(f"\n{len(draft.statements())} statements, {len(draft.open_flags())} flagged; "
                 f"{t.get('total', 0):.1f}s total")
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    @app.command()
    def draft(
        patient: Annotated[str, typer.Option("--patient", help="Patient id.")],
        doc_type: Annotated[str, typer.Option(
            "--type", help="summary | discharge-instructions | prior-auth")] = "summary",
        encounter: Annotated[str | None, typer.Option("--encounter")] = None,
        order: Annotated[str | None, typer.Option("--order", help="Order for prior-auth.")] = None,
        backend: Annotated[str | None, typer.Option(
            help="embedded | openai | extractive (default: settings)")] = None,
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Draft a document for one patient.

        Example: chartdraft draft --patient P1 --type discharge-instructions --backend extractive
        """
        from assistant.cli_remote import draft_via_server, server_for
        from assistant.settings import get_settings

        settings = get_settings()
        try:
            server = server_for(settings)
            if server is not None:  # it holds the index: ask it to draft
                view = draft_via_server(server, settings, {
                    "patient_id": patient, "doc_type": doc_type, "encounter_id": encounter,
                    "order_id": order, "backend": backend})
                d = Draft.model_validate(view)
                if not as_json:
                    typer.echo(f"(drafted by the chartdraft server at {server.url}; review and "
                               f"sign it at {view.get('links', {}).get('ui')})", err=True)
            else:
                d = _draft_here(settings, patient, doc_type, encounter, order, backend)
        except ChartdraftError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        if as_json:
            typer.echo(draft_json(d))
        else:
            typer.echo(_render_human(d))

    @app.command()
    def check(
        chart: Annotated[Path, typer.Option("--chart", help="Bundle file or NDJSON folder.")],
        draft_file: Annotated[Path, typer.Option("--draft", help="Draft JSON file.")],
        as_json: Annotated[bool, typer.Option("--json")] = False,
    ) -> None:
        """Check a draft against a chart. Exit 0 all supported, 1 any flagged, 2 bad input.

        Example: chartdraft check --chart chart.json --draft draft.json --json
        """
        try:
            report = check_file(chart, draft_file)
        except ChartdraftError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        if as_json:
            typer.echo(json.dumps(report, indent=2))
        else:
            for s in report["statements"]:
                mark = "ok " if s["verdict"] == "supported" else "!! "
                typer.echo(f"{mark}[{s['section']}.{s['index']}] {s['verdict']}: {s['text']}")
                for r in s["reasons"]:
                    typer.echo(f"      {r}")
            typer.echo(json.dumps(report["summary"]))
        flagged = any(s["verdict"] != "supported" for s in report["statements"])
        raise typer.Exit(1 if flagged else 0)


def _draft_here(settings: Settings, patient: str, doc_type: str, encounter: str | None,
                order: str | None, backend: str | None) -> Draft:
    from assistant.pipeline import DraftRequest, run_draft
    from assistant.runtime import Runtime

    rt = Runtime(settings)
    try:
        return run_draft(rt, DraftRequest(patient, doc_type, encounter, order, backend))
    finally:
        rt.close()


def draft_json(d: Draft) -> str:
    return d.model_dump_json(indent=2)


def check_file(chart: Path, draft_file: Path) -> dict[str, Any]:
    from chartdraft_guardrails.api import check_draft_json

    from retrieval.fhir_load import load_path
    from retrieval.normalize import normalize_all

    if not chart.exists():
        raise BadInput(f"no such chart: {chart}", where="--chart",
                       fix="give a FHIR Bundle file or an NDJSON folder")
    try:
        body = json.loads(draft_file.read_text())
    except FileNotFoundError:
        raise BadInput(f"no such draft file: {draft_file}", where="--draft") from None
    except ValueError as exc:
        raise BadInput(f"draft is not valid JSON: {exc}", where=str(draft_file),
                       fix="give a JSON object with patient_id, doc_type and sections") from None
    loaded = load_path(chart)
    evidence, _ = normalize_all(loaded.resources)
    return check_draft_json(body, evidence)
