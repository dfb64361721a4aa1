"""The service store: drafts, reviews, feedback, CDS feedback, write-back outbox and audit in SQL.

SQLite file by default (WAL, so the CLI and the service can share it), PostgreSQL by URL. Tables are
created on start. Methods take and return our models (``Draft``, ``AuditRecord``) or plain dicts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from assistant.audit import GENESIS, AuditEvent, AuditRecord, now_iso, record_hash
from assistant.draft import Draft
from assistant.store import schema as t
from retrieval.chart_store import sqlite_pragmas
from retrieval.errors import Conflict, NotFound, StoreError


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(d: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything we write is UTC.
    return d.replace(tzinfo=UTC) if d is not None and d.tzinfo is None else d


# Statements run on every API call, built once (see append_audit).
_AUDIT_HEAD = select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1) \
    .with_for_update()
_AUDIT_INSERT = insert(t.audit)
_AUDIT_MOVE_HEAD = update(t.audit_head).where(t.audit_head.c.id == 1)
_LATEST_REF = (
    select(t.drafts.c.id, t.drafts.c.status, t.drafts.c.chart_version, t.drafts.c.updated_at)
    .where(t.drafts.c.patient_id == bindparam("patient_id"),
           t.drafts.c.doc_type == bindparam("doc_type"),
           t.drafts.c.status.in_(bindparam("statuses", expanding=True)))
    .order_by(t.drafts.c.created_at.desc()).limit(1))


class DraftRef(NamedTuple):
    """A draft's filter columns, read without its JSON (which can be large to parse)."""

    id: str
    status: str
    chart_version: str | None
    updated_at: datetime  # every write sets it: (id, updated_at) names one version of a draft


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self._jti_claims = 0
        sqlite = url.startswith("sqlite")
        # A pre-ping is a round trip per checkout: worth it for a server that may drop idle
        # connections, pointless for a local SQLite file.
        self.engine: Engine = create_engine(url, pool_pre_ping=not sqlite, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", sqlite_pragmas)
        self._audit_lock = threading.Lock()  # SQLite has no row locks; serialize appends here
        try:
            t.metadata.create_all(self.engine)
            with self.engine.begin() as c:
                if c.execute(select(t.audit_head.c.id)).first() is None:
                    c.execute(insert(t.audit_head).values(id=1, seq=0, hash=GENESIS))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open the service database: {type(exc).__name__}",
                             where="database_url",
                             fix="check CHARTDRAFT_DATABASE_URL and that the server is up") from exc

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as c:
                yield c
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {type(exc).__name__}",
                             fix="retry; if it persists check the database") from exc

    def close(self) -> None:
        self.engine.dispose()

    # --- CDS client JWT ids -------------------------------------------------------------------
    def claim_jti(self, key: str, expires: float) -> bool:
        """Record a CDS JWT id until ``expires``; False when it is already recorded and unexpired
        (a replay). The primary key makes two workers racing on one id see one winner."""
        now = time.time()
        try:
            with self.engine.begin() as c:
                c.execute(delete(t.cds_jti).where(t.cds_jti.c.key == key,
                                                  t.cds_jti.c.expires <= now))
                c.execute(insert(t.cds_jti).values(key=key, expires=expires))
                self._jti_claims += 1
                if self._jti_claims % 1000 == 0:  # keep the table to live tokens
                    c.execute(delete(t.cds_jti).where(t.cds_jti.c.expires <= now))
            return True
        except IntegrityError:
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"database error: {type(exc).__name__}", where="cds jti",
                             fix="retry; if it persists check the database") from exc

    # --- drafts -------------------------------------------------------------------------------
    def save_draft(self, draft: Draft, *, chart_version: str | None = None,
                   created_by: str | None = None, error: str | None = None) -> None:
        data = draft.model_dump(mode="json")
        now = _now()
        with self._tx() as c:
            row = c.execute(select(t.drafts.c.id).where(t.drafts.c.id == draft.id)).first()
            values: dict[str, Any] = {"status": draft.status, "data": data, "updated_at": now,
                                      "error": error}
            if chart_version is not None:
                values["chart_version"] = chart_version
            if row is None:
                c.execute(insert(t.drafts).values(
                    id=draft.id, patient_id=draft.patient_id, doc_type=draft.doc_type,
                    created_by=created_by, created_at=now, **values))
            else:
                c.execute(update(t.drafts).where(t.drafts.c.id == draft.id).values(**values))

    def get_draft(self, draft_id: str) -> Draft:
        row = self._draft_row(draft_id)
        return Draft.model_validate(row["data"])

    def get_draft_stamped(self, draft_id: str) -> tuple[Draft, datetime]:
        """The draft and the ``updated_at`` of the version read (a cache key, see DraftRef)."""
        row = self._draft_row(draft_id)
        return Draft.model_validate(row["data"]), row["updated_at"]

    def draft_meta(self, draft_id: str) -> dict[str, Any]:
        row = self._draft_row(draft_id)
        return {k: v for k, v in row.items() if k != "data"}

    def _draft_row(self, draft_id: str) -> dict[str, Any]:
        with self._tx() as c:
            row = c.execute(select(t.drafts).where(t.drafts.c.id == draft_id)).mappings().first()
        if row is None:
            raise NotFound(f"no draft {draft_id!r}", where="draft id",
                           fix="use an id returned by POST /v1/drafts")
        return dict(row)

    def latest_draft(self, patient_id: str, doc_type: str,
                     statuses: tuple[str, ...] = ("pending", "generating", "draft", "signed"),
                     ) -> tuple[Draft, str | None] | None:
        with self._tx() as c:
            row = c.execute(
                select(t.drafts.c.data, t.drafts.c.chart_version)
                .where(t.drafts.c.patient_id == patient_id, t.drafts.c.doc_type == doc_type,
                       t.drafts.c.status.in_(statuses))
                .order_by(t.drafts.c.created_at.desc()).limit(1)
            ).first()
        return None if row is None else (Draft.model_validate(row[0]), row[1])

    def draft_ref(self, draft_id: str) -> DraftRef:
        d = t.drafts.c
        with self._tx() as c:
            row = c.execute(select(d.id, d.status, d.chart_version, d.updated_at)
                            .where(d.id == draft_id)).first()
        if row is None:
            raise NotFound(f"no draft {draft_id!r}", where="draft id",
                           fix="use an id returned by POST /v1/drafts")
        return DraftRef(*row)

    def latest_draft_ref(self, patient_id: str, doc_type: str,
                         statuses: tuple[str, ...] = ("pending", "generating", "draft", "signed"),
                         ) -> DraftRef | None:
        """What ``latest_draft`` finds, without reading the draft itself."""
        with self._tx() as c:
            row = c.execute(_LATEST_REF, {"patient_id": patient_id, "doc_type": doc_type,
                                          "statuses": list(statuses)}).first()
        return None if row is None else DraftRef(*row)

    def list_drafts(self, patient_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        q = select(t.drafts.c.id, t.drafts.c.patient_id, t.drafts.c.doc_type, t.drafts.c.status,
                   t.drafts.c.created_at).order_by(t.drafts.c.created_at.desc()).limit(limit)
        if patient_id:
            q = q.where(t.drafts.c.patient_id == patient_id)
        with self._tx() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    def mark_unfinished_failed(self, reason: str) -> int:
        """At start-up: drafts a previous process was generating will never finish; say so."""
        with self._tx() as c:
            rows = c.execute(select(t.drafts.c.id, t.drafts.c.data).where(
                t.drafts.c.status.in_(("pending", "generating")))).all()
            for draft_id, data in rows:
                data = dict(data, status="failed")
                c.execute(update(t.drafts).where(t.drafts.c.id == draft_id).values(
                    status="failed", data=data, error=reason, updated_at=_now()))
        return len(rows)

    # --- reviews and feedback -------------------------------------------------------------------
    def add_review(self, draft_id: str, actor: str, action: str, *,
                   statement_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
        with self._tx() as c:
            c.execute(insert(t.reviews).values(draft_id=draft_id, actor=actor, action=action,
                                               statement_id=statement_id, detail=detail,
                                               at=_now()))

    def reviews(self, draft_id: str) -> list[dict[str, Any]]:
        with self._tx() as c:
            rows = c.execute(select(t.reviews).where(t.reviews.c.draft_id == draft_id)
                             .order_by(t.reviews.c.id)).mappings()
            return [dict(r) for r in rows]

    def add_feedback(self, draft_id: str, actor: str, rating: str, comment: str | None) -> int:
        with self._tx() as c:
            res = c.execute(insert(t.feedback).values(draft_id=draft_id, actor=actor,
                                                      rating=rating, comment=comment, at=_now()))
            return int(res.inserted_primary_key[0])  # type: ignore[index]

    def feedback_for(self, draft_id: str) -> list[dict[str, Any]]:
        with self._tx() as c:
            rows = c.execute(select(t.feedback).where(t.feedback.c.draft_id == draft_id)
                             .order_by(t.feedback.c.id)).mappings()
            return [dict(r) for r in rows]

    def add_cds_feedback(self, service_id: str, card: str, outcome: str, *,
                         override_reason: dict[str, Any] | None = None,
                         accepted_suggestions: list[Any] | None = None,
                         outcome_timestamp: str | None = None, actor: str | None = None) -> None:
        with self._tx() as c:
            c.execute(insert(t.cds_feedback).values(
                service_id=service_id, card=card, outcome=outcome,
                override_reason=override_reason, accepted_suggestions=accepted_suggestions,
                outcome_timestamp=outcome_timestamp, actor=actor, at=_now()))

    def cds_feedback(self, service_id: str | None = None) -> list[dict[str, Any]]:
        q = select(t.cds_feedback).order_by(t.cds_feedback.c.id)
        if service_id:
            q = q.where(t.cds_feedback.c.service_id == service_id)
        with self._tx() as c:
            return [dict(r) for r in c.execute(q).mappings()]

    # --- write-back outbox ----------------------------------------------------------------------
    def enqueue_outbox(self, draft_id: str, bundle: dict[str, Any]) -> None:
        now = _now()
        with self._tx() as c:
            queued = select(t.outbox.c.draft_id).where(t.outbox.c.draft_id == draft_id)
            if c.execute(queued).first():
                raise Conflict(f"draft {draft_id} is already queued for write-back")
            c.execute(insert(t.outbox).values(draft_id=draft_id, bundle=bundle, status="pending",
                                              attempts=0, next_attempt_at=now, created_at=now))

    def due_outbox(self, now: datetime | None = None, limit: int = 20) -> list[dict[str, Any]]:
        now = now or _now()
        with self._tx() as c:
            rows = c.execute(select(t.outbox).where(t.outbox.c.status == "pending",
                                                    t.outbox.c.next_attempt_at <= now)
                             .order_by(t.outbox.c.created_at).limit(limit)).mappings()
            return [dict(r) for r in rows]

    def outbox_item(self, draft_id: str) -> dict[str, Any] | None:
        with self._tx() as c:
            row = c.execute(select(t.outbox).where(t.outbox.c.draft_id == draft_id)).mappings()
            first = row.first()
        if first is None:
            return None
        out = dict(first)
        for k in ("next_attempt_at", "created_at", "sent_at"):
            out[k] = _aware(out[k])
        return out

    def outbox_result(self, draft_id: str, *, ok: bool, error: str | None = None,
                      retry_in: float = 0.0) -> None:
        now = _now()
        with self._tx() as c:
            if ok:
                c.execute(update(t.outbox).where(t.outbox.c.draft_id == draft_id).values(
                    status="sent", sent_at=now, last_error=None,
                    attempts=t.outbox.c.attempts + 1))
            else:
                c.execute(update(t.outbox).where(t.outbox.c.draft_id == draft_id).values(
                    last_error=error, attempts=t.outbox.c.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=retry_in)))

    # --- audit ---------------------------------------------------------------------------------
    def append_audit(self, ev: AuditEvent) -> AuditRecord:
        # Every request appends one record, one at a time: the statements are built once and
        # take plain parameters, to keep the time under the lock short.
        with self._audit_lock, self._tx() as c:
            seq, prev = c.execute(_AUDIT_HEAD).one()
            at = now_iso()
            rec = AuditRecord(**ev.model_dump(), seq=seq + 1, at=at, prev_hash=prev,
                              hash=record_hash(ev, at=at, prev_hash=prev))
            c.execute(_AUDIT_INSERT, rec.model_dump())
            c.execute(_AUDIT_MOVE_HEAD, {"seq": rec.seq, "hash": rec.hash})
        return rec

    def audit_records(self, *, patient_id: str | None = None, after: int = 0,
                      limit: int | None = None) -> list[AuditRecord]:
        q = select(t.audit).where(t.audit.c.seq > after).order_by(t.audit.c.seq)
        if patient_id:
            q = q.where(t.audit.c.patient_id == patient_id)
        if limit:
            q = q.limit(limit)
        with self._tx() as c:
            return [AuditRecord.model_validate(dict(r)) for r in c.execute(q).mappings()]

    def audit_head(self) -> tuple[int, str]:
        with self._tx() as c:
            seq, h = c.execute(select(t.audit_head.c.seq, t.audit_head.c.hash)).one()
        return int(seq), str(h)

    def audit_count(self) -> int:
        with self._tx() as c:
            return int(c.execute(select(func.count()).select_from(t.audit)).scalar_one())

