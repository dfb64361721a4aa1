"""Prometheus metrics for the service's operators (``GET /metrics``).

Everything lives in one per-app ``CollectorRegistry`` (several apps in one test process must not
collide). Label values come only from small fixed sets — route *templates*, methods, status codes,
doc types, backends, modes, verdicts, check names, CDS service ids — and anything outside its set
becomes ``other``: no patient id, draft id, name or chart text can ever reach a label.

The service calls a few small functions here (the HTTP middleware, ``Jobs``, the outbox loop);
the outbox and the model backends' circuit breakers are read when scraped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select

from assistant.auth import Authenticator
from assistant.draft import DOC_TYPES
from assistant.settings import Settings
from retrieval.errors import Forbidden

if TYPE_CHECKING:
    from assistant.draft import Draft
    from assistant.runtime import Runtime
    from assistant.store import Store

log = logging.getLogger("chartdraft.metrics")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

OTHER = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
BACKENDS = frozenset({"embedded", "openai", "extractive"})
MODES = frozenset({"free", "constrained", "extractive", "none"})
DRAFT_STATUSES = frozenset({"pending", "generating", "draft", "signed", "rejected", "failed"})
VERDICTS = frozenset(
    {"supported", "not_verified", "unsupported", "contradicted", "uncited", "invalid_citation"}
)
# The checks that attach results to statements (chartdraft_guardrails and assistant.verify).
CHECKS = frozenset({"citation", "completeness", "contradiction", "injection", "phi", "support",
                    "links", "interpretation", "judge"})
OUTBOX_STATUSES = frozenset({"pending", "sent"})
CIRCUIT_STATES = ("closed", "open", "half-open")
UNMATCHED = "<unmatched>"

# Drafts take seconds to minutes (a CPU model), requests milliseconds to seconds.
GENERATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


def _one_of(value: object, allowed: Iterable[str]) -> str:
    return value if isinstance(value, str) and value in allowed else OTHER


class Metrics:
    """The service's metrics; one per app (``create_app``), shared with its ``Jobs``."""

    def __init__(self, cds_services: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry()
        self.cds_services = frozenset(cds_services)
        r = self.registry
        # --- HTTP ---------------------------------------------------------------------------
        self.http_requests = Counter(
            "chartdraft_http_requests", "HTTP requests by route template, method and status.",
            ["route", "method", "status"], registry=r)
        self.http_seconds = Histogram(
            "chartdraft_http_request_duration_seconds",
            "Time to answer a request (an event stream counts until it closes).",
            ["route", "method"], buckets=HTTP_BUCKETS, registry=r)
        self.cds_calls = Counter(
            "chartdraft_cds_calls", "CDS Hooks calls by service id, endpoint and status.",
            ["service", "endpoint", "status"], registry=r)
        # --- draft jobs ---------------------------------------------------------------------
        self.jobs = Gauge("chartdraft_draft_jobs", "Draft jobs in this process by state.",
                          ["state"], registry=r)
        for state in ("queued", "running"):
            self.jobs.labels(state=state)
        self.submitted = Counter("chartdraft_drafts_submitted", "Drafts accepted for generation.",
                                 ["doc_type"], registry=r)
        self.refused = Counter("chartdraft_drafts_refused",
                               "Draft requests refused because the queue was full.", registry=r)
        self.finished = Counter(
            "chartdraft_drafts_finished", "Draft jobs finished, by final status.",
            ["doc_type", "backend", "mode", "status"], registry=r)
        self.fallbacks = Counter(
            "chartdraft_draft_fallbacks",
            "Drafts where the extractive fallback replaced an unavailable model.",
            ["doc_type", "requested_backend"], registry=r)
        self.generation_seconds = Histogram(
            "chartdraft_draft_generation_seconds", "Pipeline time of a finished draft.",
            ["backend", "doc_type"], buckets=GENERATION_BUCKETS, registry=r)
        self.tokens = Counter("chartdraft_llm_tokens", "Model tokens by backend and direction.",
                              ["backend", "direction"], registry=r)
        # --- guardrails ---------------------------------------------------------------------
        self.statements = Counter(
            "chartdraft_guardrail_statements", "Statements of finished drafts by worst verdict.",
            ["doc_type", "verdict"], registry=r)
        self.flags = Counter(
            "chartdraft_guardrail_flags", "Check results other than supported, by check.",
            ["check", "verdict"], registry=r)
        # --- write-back ---------------------------------------------------------------------
        self.writeback = Counter("chartdraft_writeback_attempts",
                                 "Write-back attempts by the outbox loop.", ["result"], registry=r)
        for result in ("sent", "failed"):
            self.writeback.labels(result=result)

    # --- wiring --------------------------------------------------------------------------------
    def watch(self, store: Store, rt: Runtime) -> None:
        """Read the outbox and the backends' circuit breakers when scraped."""
        self.registry.register(_ScrapeCollector(store, rt))

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # --- HTTP ----------------------------------------------------------------------------------
    def observe_request(self, scope: MutableMapping[str, Any], status: int,
                        seconds: float) -> None:
        route = route_template(scope)
        method = _one_of(scope.get("method"), METHODS)
        code = str(status) if 100 <= status <= 599 else OTHER
        self.http_requests.labels(route=route, method=method, status=code).inc()
        self.http_seconds.labels(route=route, method=method).observe(seconds)
        if route.startswith("/cds-services/{service_id}"):
            service = _one_of((scope.get("path_params") or {}).get("service_id"),
                              self.cds_services)
            endpoint = "feedback" if route.endswith("/feedback") else "call"
            self.cds_calls.labels(service=service, endpoint=endpoint, status=code).inc()

    # --- draft jobs ----------------------------------------------------------------------------
    def job_refused(self) -> None:
        self.refused.inc()

    def job_queued(self, doc_type: str) -> None:
        self.submitted.labels(doc_type=_one_of(doc_type, DOC_TYPES)).inc()
        self.jobs.labels(state="queued").inc()

    def job_started(self) -> None:
        self.jobs.labels(state="queued").dec()
        self.jobs.labels(state="running").inc()

    def job_ended(self) -> None:
        self.jobs.labels(state="running").dec()

    def draft_finished(self, draft: Draft, requested_backend: str) -> None:
        """Counters for a draft that reached a final state; never raises (a job must finish)."""
        try:
            self._draft_finished(draft, requested_backend)
        except Exception as exc:  # metrics must not fail a draft
            log.error("draft metrics: %s", type(exc).__name__)

    def _draft_finished(self, draft: Draft, requested_backend: str) -> None:
        doc_type = _one_of(draft.doc_type, DOC_TYPES)
        backend = _one_of(draft.backend or requested_backend, BACKENDS)
        mode = _one_of(draft.mode or "none", MODES)
        self.finished.labels(doc_type=doc_type, backend=backend, mode=mode,
                             status=_one_of(draft.status, DRAFT_STATUSES)).inc()
        if draft.status == "failed":
            return
        if draft.fallback_reason:
            self.fallbacks.labels(doc_type=doc_type,
                                  requested_backend=_one_of(requested_backend, BACKENDS)).inc()
        total = draft.timings.get("total")
        if total is not None:
            self.generation_seconds.labels(backend=backend, doc_type=doc_type).observe(total)
        if draft.tokens_in:
            self.tokens.labels(backend=backend, direction="in").inc(draft.tokens_in)
        if draft.tokens_out:
            self.tokens.labels(backend=backend, direction="out").inc(draft.tokens_out)
        for st in draft.statements():
            self.statements.labels(doc_type=doc_type, verdict=_one_of(st.verdict, VERDICTS)).inc()
            for res in st.results:
                if res.verdict != "supported":
                    self.flags.labels(check=_one_of(res.check, CHECKS),
                                      verdict=_one_of(res.verdict, VERDICTS)).inc()

    # --- write-back ----------------------------------------------------------------------------
    def writeback_done(self, sent: int, failed: int) -> None:
        self.writeback.labels(result="sent").inc(sent)
        self.writeback.labels(result="failed").inc(failed)


def route_template(scope: MutableMapping[str, Any]) -> str:
    """The matched route's path template (``/v1/drafts/{draft_id}``), never the concrete path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return UNMATCHED
    if type(route).__name__ == "Mount":  # static files: one series for the whole mount
        return path.rstrip("/") + "/{path}"
    return path


ASGIApp = Callable[[MutableMapping[str, Any], Any, Any], Awaitable[None]]


class HttpMetrics:
    """Pure ASGI middleware: counts every request under its route template, with its latency."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # an exception before the response started becomes a 500 further out
        start = time.perf_counter()

        async def send_status(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            # The router writes the matched route into this same scope dict.
            self.metrics.observe_request(scope, status, time.perf_counter() - start)


class _ScrapeCollector(Collector):
    """Outbox counts and circuit-breaker states, read at scrape time (one small SQL query)."""

    def __init__(self, store: Store, rt: Runtime) -> None:
        self.store, self.rt = store, rt

    def describe(self) -> list[Any]:
        return []  # values are only known at scrape time

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._outbox()
        yield from self._circuits()

    def _outbox(self) -> Iterator[GaugeMetricFamily]:
        from assistant.store import schema as t

        ob = t.outbox
        q = select(ob.c.status, func.count(), func.coalesce(func.sum(ob.c.attempts), 0),
                   func.count(case((ob.c.attempts > 0, 1)))).group_by(ob.c.status)
        try:
            with self.store.engine.connect() as c:
                rows = c.execute(q).all()
        except Exception as exc:  # a scrape must still answer; the store's own errors show
            log.warning("outbox metrics: %s", type(exc).__name__)
            return
        items = GaugeMetricFamily("chartdraft_outbox_items",
                                  "Write-back outbox items by status.", labels=["status"])
        retrying = GaugeMetricFamily(
            "chartdraft_outbox_pending_retrying",
            "Pending outbox items that have failed at least one attempt.")
        failed = GaugeMetricFamily(
            "chartdraft_outbox_pending_failed_attempts",
            "Failed write-back attempts of the items still pending.")
        counts = {s: 0 for s in OUTBOX_STATUSES}
        pending_attempts = pending_retrying = 0
        for status, n, attempts, with_attempts in rows:
            key = _one_of(status, OUTBOX_STATUSES)
            counts[key] = counts.get(key, 0) + int(n)
            if status == "pending":
                pending_attempts += int(attempts)
                pending_retrying += int(with_attempts)
        for key, n in sorted(counts.items()):
            items.add_metric([key], n)
        retrying.add_metric([], pending_retrying)
        failed.add_metric([], pending_attempts)
        yield from (items, retrying, failed)

    def _circuits(self) -> Iterator[GaugeMetricFamily]:
        fam = GaugeMetricFamily(
            "chartdraft_llm_circuit_state",
            "1 for each model replica's current circuit-breaker state (replica = its index in "
            "CHARTDRAFT_OPENAI_BASE_URLS); only backends already built are shown.",
            labels=["backend", "replica", "state"])
        # Read the runtime's built backends only: a scrape must never load a model.
        built: dict[str, Any] = dict(getattr(self.rt, "_backends", {}) or {})
        for name, backend in sorted(built.items()):
            inner = getattr(backend, "inner", backend)  # the de-identifying wrapper
            for i, rep in enumerate(getattr(inner, "replicas", []) or []):
                breaker = getattr(rep, "breaker", None)
                if breaker is None:
                    continue
                now = breaker.state
                for state in CIRCUIT_STATES:
                    fam.add_metric([_one_of(name, BACKENDS), str(i), state],
                                   1.0 if now == state else 0.0)
        yield fam


def check_scrape_access(settings: Settings, auth: Authenticator, authorization: str | None,
                        api_key: str | None) -> None:
    """Admins only, unless CHARTDRAFT_METRICS_PUBLIC opens it to a trusted network."""
    if settings.metrics_public:
        return
    p = auth.authenticate(authorization, api_key)
    if p.role != "admin":
        raise Forbidden(f"role {p.role!r} may not read metrics", where="role",
                        fix="use an admin token, or set CHARTDRAFT_METRICS_PUBLIC=true on a "
                            "trusted scrape network")
