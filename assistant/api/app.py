"""The service: ``uvicorn --factory assistant.api.app:create_app``.

Built once at start-up: the runtime (chart store, index, models — lazily), the SQL store, the job
pool, the authenticator and the CDS JWT verifier; a background thread drains the write-back outbox.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response

from assistant.api import audit, cds, charts, drafts, evidence, patients, problems
from assistant.api.deps import Services, Svc
from assistant.auth import Authenticator, dev_private_key
from assistant.cds_jwt import CdsJwtVerifier, ReplayCache, parse_issuers
from assistant.jobs import Jobs
from assistant.metrics import CONTENT_TYPE, HttpMetrics, Metrics, check_scrape_access
from assistant.runtime import Runtime
from assistant.settings import Settings, get_settings
from assistant.store import Store
from assistant.writeback import process_outbox

log = logging.getLogger("chartdraft.api")
OUTBOX_POLL_S = 10.0


def build_services(settings: Settings) -> Services:
    settings.ensure_dirs()
    rt = Runtime(settings)
    store = Store(settings.sql_url)
    dev_key = dev_private_key(settings).public_key() if settings.dev_auth else None
    metrics = Metrics(cds_services=cds.SERVICES)
    metrics.watch(store, rt)
    return Services(settings=settings, rt=rt, store=store, jobs=Jobs(rt, store, metrics=metrics),
                    auth=Authenticator(settings),
                    cds=CdsJwtVerifier(parse_issuers(settings.cds_issuers), dev_key=dev_key,
                                       replay=ReplayCache(claim=store.claim_jti)))


def _outbox_loop(svc: Services, stop: threading.Event) -> None:
    token = (svc.settings.fhir_server_token.get_secret_value()
             if svc.settings.fhir_server_token else None)
    while not stop.is_set():
        svc.outbox_wake.wait(OUTBOX_POLL_S)
        svc.outbox_wake.clear()
        if stop.is_set():
            return
        try:
            counts = process_outbox(svc.store, base_url=svc.settings.fhir_server_url, token=token)
            svc.jobs.metrics.writeback_done(counts["sent"], counts["failed"])
            if counts["sent"] or counts["failed"]:
                log.info("write-back: %d sent, %d failed (will retry)", counts["sent"],
                         counts["failed"])
        except Exception as exc:  # keep draining later; the outbox keeps every item
            log.error("write-back loop: %s", type(exc).__name__)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    svc = build_services(settings)
    stop = threading.Event()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        n = svc.store.mark_unfinished_failed("the service restarted during generation")
        if n:
            log.warning("%d drafts left unfinished by a previous run marked failed", n)
        worker = threading.Thread(target=_outbox_loop, args=(svc, stop), daemon=True,
                                  name="outbox")
        worker.start()
        svc.outbox_wake.set()  # drain anything left from a previous run
        try:
            yield
        finally:
            stop.set()
            svc.outbox_wake.set()
            svc.jobs.shutdown()
            worker.join(timeout=5)
            svc.rt.close()
            svc.store.close()

    app = FastAPI(
        title="chartdraft",
        version="0.1.0",
        summary="Cited clinical drafts from a FHIR chart, checked before a clinician signs.",
        lifespan=lifespan,
    )
    app.state.services = svc
    app.add_middleware(HttpMetrics, metrics=svc.jobs.metrics)
    problems.install(app)
    for r in (drafts.router, patients.router, charts.router, evidence.router, audit.router,
              cds.router):
        app.include_router(r)

    @app.get("/healthz", tags=["ops"], summary="Liveness and the stores' reachability")
    def healthz(svc: Svc) -> dict[str, Any]:
        svc.store.audit_head()
        return {"status": "ok", "backend": svc.settings.backend,
                "writeback": "configured" if svc.settings.fhir_server_url else "off"}

    # Sync: checking a JWT may fetch the issuer's JWKS, and the scrape reads the outbox table.
    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics (admin, or public by setting)",
             response_class=Response)
    def metrics(request: Request, svc: Svc) -> Response:
        check_scrape_access(svc.settings, svc.auth, request.headers.get("authorization"),
                            request.headers.get("x-api-key"))
        return Response(svc.jobs.metrics.render(), media_type=CONTENT_TYPE)

    _mount_ui(app)
    return app


def _mount_ui(app: FastAPI) -> None:
    """The web UI lives in assistant.ui (another part of the project); mount it when present."""
    import importlib
    import importlib.util

    if importlib.util.find_spec("assistant.ui") is None:
        return
    ui = importlib.import_module("assistant.ui")
    mount = getattr(ui, "mount", None)
    if callable(mount):
        mount(app)
