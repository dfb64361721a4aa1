"""`chartdraft demo` and `chartdraft serve`: start chartdraft with embedded defaults.

Both take the data folder's server lock first (one server per data folder, see
assistant.server_lock) and bind the port before they print any URL, so a second server or a busy
port is refused at once with what to do, instead of a server that starts and then fails.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import shutil
import socket
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from assistant.settings import Settings
from retrieval.errors import ChartdraftError

DEMO_PATIENTS = 6
DEMO_SEED = 2026

HostOpt = Annotated[str | None, typer.Option(help="Default 127.0.0.1 (CHARTDRAFT_HOST).")]
PortOpt = Annotated[int | None, typer.Option(help="Default 8000 (CHARTDRAFT_PORT).")]


def _fail(exc: ChartdraftError) -> NoReturn:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def register(app: typer.Typer) -> None:
    @app.command()
    def demo(
        patients: Annotated[int, typer.Option(help="Synthetic patients.")] = DEMO_PATIENTS,
        serve_after: Annotated[bool, typer.Option("--serve/--no-serve")] = True,
        host: HostOpt = None,
        port: PortOpt = None,
    ) -> None:
        """Create synthetic patients, ingest them, and start the service (what `make run` does).

        Example: chartdraft demo --patients 3 --port 8001
        """
        from assistant.server_lock import ServerLock, bind_port, url_for
        from assistant.settings import get_settings

        settings = get_settings()
        host, port = host or settings.host, port or settings.port
        serving = serve_after and _service_available()
        try:
            # Refuse before minutes of ingesting, not after: the folder first, then the port.
            lock = ServerLock.acquire(settings.data_dir,
                                      url=url_for(host, port) if serving else None,
                                      dev_auth=settings.dev_auth)
        except ChartdraftError as exc:
            _fail(exc)
        sock = None
        try:
            sock = bind_port(host, port) if serving else None
            first = _ingest_demo(settings, patients)
            typer.echo("try (in another terminal, from this folder):")
            for cmd in try_commands(settings, first, serving=serving):
                typer.echo(f"  {cmd}")
            if serving:
                typer.echo("  (`search` needs the index the server holds: run it after stopping "
                           "the server)")
            if sock is not None:
                _serve(settings, sock, host, port)
        except ChartdraftError as exc:
            _fail(exc)
        finally:
            if sock is not None:
                sock.close()
            lock.release()

    @app.command()
    def serve(host: HostOpt = None, port: PortOpt = None) -> None:
        """Start the REST API, CDS Hooks and web UI.  Example: chartdraft serve --port 8000"""
        from assistant.server_lock import ServerLock, bind_port, url_for
        from assistant.settings import get_settings

        s = get_settings()
        if not _service_available():
            typer.secho("the service is not part of this build yet", err=True)
            raise typer.Exit(2)
        host, port = host or s.host, port or s.port
        try:
            lock = ServerLock.acquire(s.data_dir, url=url_for(host, port), dev_auth=s.dev_auth)
        except ChartdraftError as exc:
            _fail(exc)
        try:
            sock = bind_port(host, port)
        except ChartdraftError as exc:
            lock.release()
            _fail(exc)
        try:
            _serve(s, sock, host, port)
        finally:
            sock.close()
            lock.release()


def _ingest_demo(settings: Settings, patients: int) -> str:
    """Write and ingest the demo's synthetic patients; the first patient's id."""
    from assistant.runtime import Runtime
    from retrieval.ingest import ingest_paths
    from retrieval.synth import write

    settings.ensure_dirs()
    paths = write(patients, DEMO_SEED, settings.data_dir / "synthetic")
    rt = Runtime(settings)
    try:
        typer.echo(f"data dir: {settings.data_dir}")
        typer.echo(f"ingesting {len(paths)} synthetic patients (first run embeds them; ~1 min)...")
        report = ingest_paths(paths, store=rt.store, index=rt.index, embedder=rt.embedder)
        kb = rt.ensure_knowledge_indexed()
        typer.echo(f"ingested: {len(report.patients)} patients, {report.resources} resources, "
                   f"{report.evidence} evidence ({report.embedded} newly embedded), "
                   f"{kb} knowledge passages newly indexed, {len(report.issues)} errors")
        rows = rt.store.patients()
        return rows[0].id if rows else "PATIENT_ID"
    finally:
        rt.close()


def try_commands(settings: Settings, patient_id: str, *, serving: bool) -> list[str]:
    """The commands the demo suggests, each runnable exactly as printed from this folder.

    The data folder is written into each command (when it is not the CLI's own default) rather
    than having the CLI look for a `.data` folder wherever it is run: a CLI whose patients change
    with the current directory would surprise more than one explicit variable, and every other
    user of the per-user default keeps it. While the demo serves, only commands that work
    alongside the server are listed (`draft` goes through its API; `search` has no API route).
    """
    exe = f"{_data_dir_prefix(settings)}{_cli_path()}"
    cmds = [f"{exe} patients"]
    if not serving:
        cmds.append(f'{exe} search --patient {patient_id} "blood pressure"')
    cmds.append(f"{exe} draft --patient {patient_id} --type discharge-instructions")
    return cmds


def _data_dir_prefix(settings: Settings) -> str:
    default = Settings.model_fields["data_dir"].get_default(call_default_factory=True)
    if os.path.abspath(settings.data_dir) == os.path.abspath(default):
        return ""
    return f"CHARTDRAFT_DATA_DIR={shlex.quote(_shown_path(Path(settings.data_dir)))} "


def _cli_path() -> str:
    """How this very `chartdraft` is reached from here: relative inside the current folder
    (`.venv/bin/chartdraft` under `make run`), bare when it is the one on PATH, else absolute."""
    argv0 = Path(sys.argv[0])
    if argv0.name != "chartdraft" or not argv0.is_file():
        return "chartdraft"
    on_path = shutil.which("chartdraft")
    if on_path and os.path.abspath(on_path) == os.path.abspath(argv0) \
            and not os.path.abspath(argv0).startswith(os.getcwd() + os.sep):
        return "chartdraft"
    return shlex.quote(_shown_path(argv0))


def _shown_path(p: Path) -> str:
    full = os.path.abspath(p)
    here = os.getcwd()
    return os.path.relpath(full, here) if full.startswith(here + os.sep) else full


def _service_available() -> bool:
    return importlib.util.find_spec("assistant.api") is not None


def _serve(settings: Settings, sock: socket.socket, host: str, port: int) -> None:
    import uvicorn

    from assistant.server_lock import url_for
    from assistant.settings import get_settings

    url = url_for(host, port)
    if "public_url" not in settings.model_fields_set:
        # Links in API answers (e.g. a draft's `ui` link) must name this server's port, not
        # the default's, which may be another server's.
        os.environ["CHARTDRAFT_PUBLIC_URL"] = url
        get_settings.cache_clear()
    typer.echo(f"chartdraft on {url}/ui  (API docs: {url}/docs)")
    config = uvicorn.Config("assistant.api.app:create_app", factory=True, host=host, port=port,
                            log_level="info")
    uvicorn.Server(config).run(sockets=[sock])
