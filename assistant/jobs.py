"""Background draft generation: a bounded worker pool, persisted status, per-draft event fan-out.

``Jobs.submit`` saves the draft as ``pending`` and returns at once; a worker thread runs the
pipeline (after an optional ``prepare`` step such as ingesting a CDS prefetch) and saves the result.
A slow model only keeps its worker busy: the request that asked for the draft has long returned,
and the draft's status says where it is. Each draft has a channel: subscribers (SSE) get every
event produced so far, then the live ones, then ``done`` — never a gap, never a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from assistant.audit import AuditEvent, output_hash
from assistant.draft import Draft
from assistant.metrics import Metrics
from assistant.pipeline import DraftRequest, run_draft
from assistant.runtime import Runtime
from assistant.store import Store
from retrieval.errors import ChartdraftError, StoreError

log = logging.getLogger("chartdraft.jobs")
Event = dict[str, Any]
TERMINAL = ("draft", "signed", "rejected", "failed")


@dataclass
class Channel:
    events: list[Event] = field(default_factory=list)
    subscribers: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[Event]]] = field(
        default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def publish(self, ev: Event) -> None:
        with self.lock:
            self.events.append(ev)
            subs = list(self.subscribers)
        for loop, q in subs:
            with contextlib.suppress(RuntimeError):  # that subscriber's loop is gone
                loop.call_soon_threadsafe(q.put_nowait, ev)

    def subscribe(self, loop: asyncio.AbstractEventLoop
                  ) -> tuple[list[Event], asyncio.Queue[Event]]:
        q: asyncio.Queue[Event] = asyncio.Queue()
        with self.lock:
            self.subscribers.append((loop, q))
            return list(self.events), q

    def unsubscribe(self, q: asyncio.Queue[Event]) -> None:
        with self.lock:
            self.subscribers = [(lp, x) for lp, x in self.subscribers if x is not q]


def statement_event(section: str, st: Any, evidence: list[Any] | None = None) -> Event:
    """One checked statement, with the title and date of each source it cites, so a client can
    name its citations from the first event on (the draft's evidence list comes only at the end)."""
    by_id = {e.id: e for e in evidence or []}
    sources = {c: {"title": by_id[c].title, "date": by_id[c].date, "kind": by_id[c].kind}
               for c in st.citations if c in by_id}
    return {"type": "statement", "section": section, "statement": st.model_dump(mode="json"),
            "sources": sources}


class DraftCancelled(Exception):
    """Raised inside a worker when a clinician cancelled the draft it is generating."""


def failure_reason(exc: BaseException, draft_id: str) -> str:
    """Log a failed draft and say why it failed, without chart text.

    Only the exception type, the draft id and an incident id reach the log: exception text and
    tracebacks can quote the chart (PHI never goes to logs). The returned reason is shown to the
    draft's readers: our errors' detail/fix (written to be safe), else the type and incident id.
    """
    incident = uuid.uuid4().hex[:12]
    log.warning("draft %s failed: %s (incident %s)", draft_id, type(exc).__name__, incident)
    if isinstance(exc, ChartdraftError):
        return f"{exc.detail}; fix: {exc.fix}" if exc.fix else exc.detail
    return (f"an unexpected error ({type(exc).__name__}) stopped generation (incident "
            f"{incident}); retry, and report the incident id if it persists")


def draft_output_hash(draft: Draft) -> str:
    return output_hash("\n".join(f"{s.id}\t{s.text}\t{','.join(s.citations)}"
                                 for s in draft.statements()))


class Jobs:
    def __init__(self, rt: Runtime, store: Store, *, workers: int = 2, max_pending: int = 64,
                 keep_channels: int = 256, metrics: Metrics | None = None) -> None:
        self.rt, self.store = rt, store
        self.metrics = metrics or Metrics()
        self.max_pending = max_pending
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="draft")
        self._channels: OrderedDict[str, Channel] = OrderedDict()
        self._lock = threading.Lock()
        self._pending = 0
        self._keep = keep_channels
        self._inflight: dict[tuple[str | None, ...], str] = {}
        self._stripes = [threading.Lock() for _ in range(64)]
        self._running: set[str] = set()  # queued or generating in this process
        self._cancelled: dict[str, str] = {}  # draft id -> who cancelled it

    def cancel(self, draft_id: str, actor: str) -> bool:
        """Ask the worker to stop this draft at its next statement (or before it starts). False
        when this process is not generating it (finished, or started by another process)."""
        with self._lock:
            if draft_id not in self._running:
                return False
            self._cancelled[draft_id] = actor
            return True

    def _check_cancelled(self, draft_id: str) -> None:
        with self._lock:
            who = self._cancelled.get(draft_id)
        if who is not None:
            raise DraftCancelled(who)

    def channel(self, draft_id: str) -> Channel | None:
        with self._lock:
            return self._channels.get(draft_id)

    def submit(self, req: DraftRequest, *, actor: str, role: str,
               prepare: Callable[[], None] | None = None, purpose: str | None = None,
               reuse_inflight: bool = False) -> Draft:
        """Start a draft; with ``reuse_inflight``, the same request already running is returned
        instead (a burst of CDS calls for one patient makes one draft, not fifty)."""
        key = (req.patient_id, req.doc_type, req.encounter_id, req.order_id, req.backend)
        if not reuse_inflight:
            return self._start(req, key, actor, role, prepare, purpose)
        # Same-request callers take turns from the check to the registration, so two CDS calls
        # arriving together make one draft (striped locks: bounded, whatever the patient count).
        with self._stripes[hash(key) % len(self._stripes)]:
            with self._lock:
                running = self._inflight.get(key)
            if running is not None:
                try:
                    return self.store.get_draft(running)
                except ChartdraftError:
                    pass
            return self._start(req, key, actor, role, prepare, purpose)

    def _start(self, req: DraftRequest, key: tuple[str | None, ...], actor: str, role: str,
               prepare: Callable[[], None] | None, purpose: str | None) -> Draft:
        with self._lock:
            if self._pending >= self.max_pending:
                self.metrics.job_refused()
                raise StoreError("too many drafts are being generated right now",
                                 where="draft queue", fix="retry in a minute")
            self._pending += 1
        draft = Draft(patient_id=req.patient_id, doc_type=req.doc_type,  # type: ignore[arg-type]
                      encounter_id=req.encounter_id, order_id=req.order_id, status="pending")
        try:
            version = self._chart_version(req.patient_id)
            self.store.save_draft(draft, chart_version=version, created_by=actor)
        except BaseException:
            with self._lock:
                self._pending -= 1
            raise
        ch = Channel()
        with self._lock:
            self._inflight[key] = draft.id
            self._running.add(draft.id)
            self._channels[draft.id] = ch
            while len(self._channels) > self._keep:
                old_id, old = next(iter(self._channels.items()))
                if not old.done.is_set():
                    break
                self._channels.pop(old_id)
        snapshot = draft.model_copy(deep=True)  # the worker mutates its own copy
        self.metrics.job_queued(req.doc_type)
        self._pool.submit(self._run, draft, req, ch, actor, role, prepare, purpose, key)
        return snapshot

    def _chart_version(self, patient_id: str) -> str | None:
        try:
            return self.rt.store.chart_version(patient_id)
        except ChartdraftError:
            return None

    def _run(self, draft: Draft, req: DraftRequest, ch: Channel, actor: str, role: str,
             prepare: Callable[[], None] | None, purpose: str | None,
             key: tuple[str | None, ...]) -> None:
        self.metrics.job_started()
        requested = req.backend or self.rt.settings.backend
        try:
            self._check_cancelled(draft.id)
            if prepare is not None:
                prepare()
                self.store.save_draft(draft, chart_version=self._chart_version(draft.patient_id))
            draft.status = "generating"
            self.store.save_draft(draft)

            def on_event(ev: Event) -> None:
                self._check_cancelled(draft.id)  # stops the pipeline between statements
                if ev.get("type") == "statement":
                    ch.publish(statement_event(ev["section"], ev["statement"], draft.evidence))
                elif ev.get("type") == "fallback":
                    ch.publish({"type": "fallback", "reason": ev.get("reason")})

            result = run_draft(self.rt, req, on_event=on_event, draft=draft)
            with self._lock:  # from here on the draft is finished: a cancel comes too late
                self._running.discard(draft.id)
                late = self._cancelled.pop(draft.id, None)
            if late is not None:
                raise DraftCancelled(late)
            self.store.save_draft(result)
            self.store.append_audit(AuditEvent(
                actor=actor, role=role, action="draft.create", patient_id=result.patient_id,
                target=result.id, purpose=purpose, evidence_ids=[e.id for e in result.evidence],
                model=result.model, prompt_version=result.prompt_version or None,
                output_hash=draft_output_hash(result)))
            log.info("draft %s done: %d statements, %d open flags, %.2fs", result.id,
                     len(result.statements()), len(result.open_flags()),
                     result.timings.get("total", 0.0))
            self.metrics.draft_finished(result, requested)
            ch.publish({"type": "done", "draft_id": result.id, "status": result.status})
        except Exception as exc:  # the draft must end in a state, whatever happened
            if isinstance(exc, DraftCancelled):
                reason = f"cancelled by {exc.args[0]} before it was finished"
                draft.extras["cancelled_by"] = exc.args[0]
            else:
                reason = failure_reason(exc, draft.id)
            draft.status = "failed"
            try:
                self.store.save_draft(draft, error=reason)
                self.store.append_audit(AuditEvent(
                    actor=actor, role=role, action="draft.create", patient_id=draft.patient_id,
                    target=draft.id, purpose="cancelled" if isinstance(exc, DraftCancelled)
                    else f"failed: {type(exc).__name__}"))
            except ChartdraftError:
                log.error("could not record failure of draft %s", draft.id)
            self.metrics.draft_finished(draft, requested)
            ch.publish({"type": "done", "draft_id": draft.id, "status": "failed",
                        "error": reason})
        finally:
            self.metrics.job_ended()
            ch.done.set()
            with self._lock:
                self._running.discard(draft.id)
                self._cancelled.pop(draft.id, None)
                self._pending -= 1
                if self._inflight.get(key) == draft.id:
                    del self._inflight[key]

    async def wait(self, draft_id: str, timeout: float) -> bool:
        """True when the draft is finished (or was not being generated here)."""
        ch = self.channel(draft_id)
        if ch is None or ch.done.is_set():
            return True
        return await asyncio.to_thread(ch.done.wait, timeout)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
