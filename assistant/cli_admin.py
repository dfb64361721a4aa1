"""`chartdraft token` and `chartdraft audit ...`: development tokens and the audit chain.

    chartdraft token --role clinician
    chartdraft token --role clinician --patient PATIENT_ID
    chartdraft audit verify            # exit 1 and name the record if the chain was tampered with
    chartdraft audit list --limit 20
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from assistant.store import Store
from retrieval.errors import ChartdraftError

audit_app = typer.Typer(help="The audit log.  Example: chartdraft audit verify",
                        no_args_is_help=True)


def register(app: typer.Typer) -> None:
    @app.command()
    def token(
        role: Annotated[str, typer.Option(help="clinician | ehr-service | safety | admin")],
        patient: Annotated[str | None, typer.Option(help="Scope the token to one patient.")] = None,
        subject: Annotated[str | None, typer.Option(help="The user id (sub claim).")] = None,
        ttl: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
    ) -> None:
        """Mint a development token with the local dev key (accepted only with dev_auth on).

        Example: chartdraft token --role clinician --patient p-1
        """
        from assistant.auth import mint_dev_token
        from assistant.settings import get_settings

        s = get_settings()
        try:
            tok = mint_dev_token(role, patient, settings=s, subject=subject, ttl_s=ttl)
        except ChartdraftError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        if not s.dev_auth:
            typer.secho("note: this service refuses dev tokens until CHARTDRAFT_DEV_AUTH=true",
                        fg=typer.colors.YELLOW, err=True)
        typer.echo(tok)

    app.add_typer(audit_app, name="audit")


def _store() -> Store:
    from assistant.settings import get_settings

    return Store(get_settings().sql_url)


@audit_app.command("verify")
def verify(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Check the hash chain; names any edited, removed or reordered record (exit 1)."""
    from assistant.audit import verify_store

    report = verify_store(_store())
    if as_json:
        typer.echo(json.dumps(report.as_json(), indent=2))
    elif report.ok:
        typer.echo(f"audit chain intact: {report.records} records")
    else:
        for p in report.problems:
            typer.secho(f"record {p['seq']}: {p['problem']} ({p['detail']})",
                        fg=typer.colors.RED, err=True)
    raise typer.Exit(0 if report.ok else 1)


@audit_app.command("list")
def list_records(
    limit: Annotated[int, typer.Option(help="How many records.")] = 50,
    patient: Annotated[str | None, typer.Option(help="Only this patient.")] = None,
) -> None:
    """Print audit records as JSON lines.  Example: chartdraft audit list --patient p-1"""
    store = _store()
    for r in store.audit_records(patient_id=patient, limit=limit):
        typer.echo(r.model_dump_json())
