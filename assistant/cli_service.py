"""`chartdraft demo` and `chartdraft serve`: start chartdraft with embedded defaults."""

from __future__ import annotations

import importlib.util
from typing import Annotated

import typer

DEMO_PATIENTS = 6
DEMO_SEED = 2026


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        patients: Annotated[int, typer.Option(help="Synthetic patients.")] = DEMO_PATIENTS,
        serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
    ) -> None:
        """Create synthetic patients, ingest them, and start the service (what `make run` does)."""
        from assistant.runtime import Runtime
        from assistant.settings import get_settings
        from retrieval.ingest import ingest_paths
        from retrieval.synth import write

        settings = get_settings()
        settings.ensure_dirs()
        out = settings.data_dir / "synthetic"
        paths = write(patients, DEMO_SEED, out)
        rt = Runtime(settings)
        typer.echo(f"data dir: {settings.data_dir}")
        typer.echo(f"ingesting {len(paths)} synthetic patients (first run embeds them; ~1 min)...")
        report = ingest_paths(paths, store=rt.store, index=rt.index, embedder=rt.embedder)
        kb = rt.ensure_knowledge_indexed()
        typer.echo(f"ingested: {len(report.patients)} patients, {report.resources} resources, "
                   f"{report.evidence} evidence ({report.embedded} newly embedded), "
                   f"{kb} knowledge passages newly indexed, {len(report.issues)} errors")
        first = rt.store.patients()[0].id if rt.store.patients() else "PATIENT_ID"
        rt.close()
        typer.echo("try:")
        typer.echo("  .venv/bin/chartdraft patients")
        typer.echo(f'  .venv/bin/chartdraft search --patient {first} "blood pressure"')
        typer.echo(f"  .venv/bin/chartdraft draft --patient {first} --type discharge-instructions")
        if serve_after and _service_available():
            _serve(settings.host, settings.port)

    @app.command()
    def serve(
        host: Annotated[str | None, typer.Option(help="Default 127.0.0.1.")] = None,
        port: Annotated[int | None, typer.Option(help="Default 8000.")] = None,
    ) -> None:
        """Start the REST API, CDS Hooks and web UI.  Example: chartdraft serve --port 8000"""
        from assistant.settings import get_settings

        s = get_settings()
        if not _service_available():
            typer.secho("the service is not part of this build yet", err=True)
            raise typer.Exit(2)
        _serve(host or s.host, port or s.port)


def _service_available() -> bool:
    return importlib.util.find_spec("assistant.api") is not None


def _serve(host: str, port: int) -> None:
    import uvicorn

    typer.echo(f"chartdraft on http://{host}:{port}/ui  (API docs: http://{host}:{port}/docs)")
    uvicorn.run("assistant.api.app:create_app", factory=True, host=host, port=port,
                log_level="info")
