"""The chart store: loaded FHIR resources and their Evidence, in SQL (SQLAlchemy Core).

SQLite file by default (WAL, so the CLI and the service can share it), PostgreSQL by URL. Upserts
are idempotent: a resource whose JSON and evidence hash the same as before is left alone; a changed
one replaces its row and all its old evidence units. ``chart_version`` is a hash over a patient's
resource hashes, so it changes exactly when that patient's chart changes.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from retrieval.errors import BadInput, StoreError
from retrieval.evidence import Evidence
from retrieval.fhir_load import LoadedResource, LoadIssue

_CHUNK = 500  # stay well under SQLite's bound-parameter limit

metadata = MetaData()

resources_table = Table(
    "chart_resources",
    metadata,
    Column("ref", String(200), primary_key=True),  # ResourceType/id
    Column("resource_type", String(64), nullable=False, index=True),
    Column("patient_id", String(128), index=True),
    Column("content_hash", String(64), nullable=False),
    Column("source", Text),
    Column("json", Text, nullable=False),
)

evidence_table = Table(
    "chart_evidence",
    metadata,
    Column("id", String(220), primary_key=True),
    Column("resource_ref", String(200), nullable=False, index=True),
    Column("patient_id", String(128), index=True),
    Column("resource_type", String(64), nullable=False),
    Column("date", String(40)),
    Column("seq", Integer, nullable=False),
    Column("json", Text, nullable=False),
)

# Resources the loader had to skip, per patient: a draft must say that part of the chart is unread.
# resource_type/resource_id are "" when the loader could not tell, so the key stays comparable.
issues_table = Table(
    "chart_unreadable",
    metadata,
    Column("patient_id", String(128), primary_key=True),
    Column("resource_type", String(64), primary_key=True),
    Column("resource_id", String(128), primary_key=True),
    Column("source", Text),
    Column("message", Text, nullable=False),
    Column("time", String(40), nullable=False),
)


@dataclass
class UpsertCounts:
    new: int = 0
    changed: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.new + self.changed + self.unchanged


@dataclass
class PatientRow:
    id: str
    name: str | None
    birth_date: str | None
    gender: str | None
    evidence: int


def _safe_url(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def content_hash(resource: dict[str, Any], units: Iterable[Evidence]) -> str:
    """Hash of the raw resource and its evidence (a normalizer upgrade counts as a change)."""
    h = hashlib.sha256(json.dumps(resource, sort_keys=True, separators=(",", ":")).encode())
    for e in units:
        h.update(e.model_dump_json().encode())
    return h.hexdigest()


class ChartStore:
    """Resources and evidence of many patients; one instance per process, thread-safe via the
    SQLAlchemy pool."""

    def __init__(self, url: str) -> None:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise BadInput(f"not a database URL: {url!r}",
                           fix="use sqlite:///path/charts.db or postgresql+psycopg://...") from exc
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            db = parsed.database
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            else:  # one shared connection, or each would see its own empty database
                kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        self.url = url
        try:
            self.engine: Engine = create_engine(url, **kwargs)
        except (ArgumentError, ImportError) as exc:
            raise BadInput(f"cannot use database URL {_safe_url(url)}: {exc}") from exc
        if parsed.get_backend_name() == "sqlite":
            event.listen(self.engine, "connect", sqlite_pragmas)
        try:
            metadata.create_all(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot open chart store at {_safe_url(url)}: "
                             f"{exc.__class__.__name__}",
                             fix="check the URL and that the database is running") from exc

    def close(self) -> None:
        self.engine.dispose()

    # -- writing ---------------------------------------------------------------------------------

    def upsert(self, resources: list[LoadedResource], evidence: list[Evidence]) -> UpsertCounts:
        """Store resources and their evidence; unchanged resources are not touched."""
        units: dict[str, list[Evidence]] = defaultdict(list)
        for e in evidence:
            units[e.resource_id].append(e)
        latest = {r.ref: r for r in resources}  # the last copy wins, as in loading
        counts = UpsertCounts()
        hashes = {ref: content_hash(r.resource, units.get(ref, [])) for ref, r in latest.items()}
        try:
            with self.engine.begin() as conn:
                known: dict[str, str] = {}
                for chunk in _chunks(list(latest)):
                    rows = conn.execute(
                        select(resources_table.c.ref, resources_table.c.content_hash)
                        .where(resources_table.c.ref.in_(chunk)))
                    known.update({row.ref: row.content_hash for row in rows})
                to_write = [ref for ref in latest if known.get(ref) != hashes[ref]]
                counts.unchanged = len(latest) - len(to_write)
                counts.changed = sum(1 for ref in to_write if ref in known)
                counts.new = len(to_write) - counts.changed
                for chunk in _chunks(to_write):
                    conn.execute(delete(evidence_table).where(evidence_table.c.resource_ref.in_(chunk)))
                    conn.execute(delete(resources_table).where(resources_table.c.ref.in_(chunk)))
                res_rows = [{"ref": ref, "resource_type": latest[ref].resource_type,
                             "patient_id": latest[ref].patient_id, "content_hash": hashes[ref],
                             "source": latest[ref].source,
                             "json": json.dumps(latest[ref].resource, separators=(",", ":"))}
                            for ref in to_write]
                ev_rows = [{"id": e.id, "resource_ref": ref, "patient_id": e.patient_id,
                            "resource_type": e.resource_type, "date": e.date, "seq": i,
                            "json": e.model_dump_json()}
                           for ref in to_write for i, e in enumerate(_unique(units.get(ref, [])))]
                if res_rows:
                    conn.execute(resources_table.insert(), res_rows)
                if ev_rows:
                    conn.execute(evidence_table.insert(), ev_rows)
                # A resource that now loads is readable again: its old issue no longer holds.
                # Only patients with recorded issues need a look (most have none).
                pids = sorted({r.patient_id for r in latest.values() if r.patient_id})
                flagged: set[str] = set()
                for chunk in _chunks(pids):
                    flagged.update(conn.execute(
                        select(issues_table.c.patient_id).distinct()
                        .where(issues_table.c.patient_id.in_(chunk))).scalars())
                for r in latest.values():
                    if r.patient_id in flagged:
                        conn.execute(delete(issues_table).where(and_(
                            issues_table.c.patient_id == r.patient_id,
                            issues_table.c.resource_type == r.resource_type,
                            issues_table.c.resource_id == r.id)))
        except SQLAlchemyError as exc:
            first = str(exc).splitlines()[0][:200]
            raise StoreError(f"could not write to the chart store ({exc.__class__.__name__}: "
                             f"{first})", where=_safe_url(self.url)) from exc
        return counts

    def record_issues(self, issues: list[LoadIssue]) -> int:
        """Remember skipped resources of known patients (others cannot be shown on a draft).

        Idempotent per (patient, type, id): a repeat replaces the message and time. Returns how
        many issues were recorded.
        """
        now = datetime.now(UTC).isoformat(timespec="seconds")
        rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        for i in issues:
            if not i.patient_id:
                continue
            key = (i.patient_id, i.resource_type or "", i.resource_id or "")
            rows[key] = {"patient_id": key[0], "resource_type": key[1], "resource_id": key[2],
                         "source": i.source, "message": i.message, "time": now}
        if not rows:
            return 0
        try:
            with self.engine.begin() as conn:
                # Delete-then-insert is portable across SQLite and PostgreSQL (no dialect upsert).
                for pid, rtype, rid in rows:
                    conn.execute(delete(issues_table).where(and_(
                        issues_table.c.patient_id == pid,
                        issues_table.c.resource_type == rtype,
                        issues_table.c.resource_id == rid)))
                conn.execute(issues_table.insert(), list(rows.values()))
        except SQLAlchemyError as exc:
            raise StoreError(f"could not record load issues ({exc.__class__.__name__})",
                             where=_safe_url(self.url)) from exc
        return len(rows)

    def issues_for(self, patient_id: str) -> list[dict[str, Any]]:
        """Resources of this patient the loader could not read, by type and id."""
        rows = self._query(select(issues_table).where(issues_table.c.patient_id == patient_id)
                           .order_by(issues_table.c.resource_type, issues_table.c.resource_id))
        return [{"patient_id": r.patient_id, "resource_type": r.resource_type or None,
                 "resource_id": r.resource_id or None, "source": r.source,
                 "message": r.message, "time": r.time} for r in rows]

    def delete_patient(self, patient_id: str) -> int:
        """Remove a patient's resources and evidence; returns how many resources went."""
        with self.engine.begin() as conn:
            conn.execute(delete(issues_table).where(issues_table.c.patient_id == patient_id))
            conn.execute(delete(evidence_table).where(evidence_table.c.patient_id == patient_id))
            done = conn.execute(delete(resources_table)
                                .where(resources_table.c.patient_id == patient_id))
        return int(done.rowcount or 0)

    # -- reading ---------------------------------------------------------------------------------

    def patients(self, only: str | None = None) -> list[PatientRow]:
        """Every loaded patient (or just ``only``: indexed reads, not a scan of all patients)."""
        count_q = select(evidence_table.c.patient_id, func.count())
        rows_q = (select(evidence_table.c.patient_id, evidence_table.c.json)
                  .where(evidence_table.c.resource_type == "Patient"))
        if only is not None:
            count_q = count_q.where(evidence_table.c.patient_id == only)
            rows_q = rows_q.where(evidence_table.c.patient_id == only)
        counts = dict(self._query(count_q.group_by(evidence_table.c.patient_id)))
        out = []
        for pid, raw in self._query(rows_q.order_by(evidence_table.c.patient_id)):
            data = json.loads(raw).get("data") or {}
            out.append(PatientRow(id=pid, name=data.get("name"), birth_date=data.get("birth_date"),
                                  gender=data.get("gender"), evidence=int(counts.get(pid, 0))))
        return out

    def patient(self, patient_id: str) -> PatientRow | None:
        found = self.patients(only=patient_id)
        return found[0] if found else None

    def evidence_for(
        self, patient_id: str, resource_types: Iterable[str] | None = None
    ) -> list[Evidence]:
        q = select(evidence_table.c.json).where(evidence_table.c.patient_id == patient_id)
        if resource_types is not None:
            q = q.where(evidence_table.c.resource_type.in_(list(resource_types)))
        q = q.order_by(evidence_table.c.resource_type, evidence_table.c.date,
                       evidence_table.c.resource_ref, evidence_table.c.seq)
        return [Evidence.model_validate_json(raw) for (raw,) in self._query(q)]

    def get_evidence(self, evidence_id: str) -> Evidence | None:
        found = self.get_many([evidence_id])
        return found[0] if found else None

    def get_many(self, ids: Iterable[str]) -> list[Evidence]:
        """The evidence for ``ids`` in the order asked; unknown ids are left out."""
        wanted = list(dict.fromkeys(ids))
        got: dict[str, Evidence] = {}
        for chunk in _chunks(wanted):
            for eid, raw in self._query(select(evidence_table.c.id, evidence_table.c.json)
                                        .where(evidence_table.c.id.in_(chunk))):
                got[eid] = Evidence.model_validate_json(raw)
        return [got[i] for i in wanted if i in got]

    def get_resource(self, ref: str) -> dict[str, Any] | None:
        """Raw FHIR JSON for ``ResourceType/id`` (a ``#N`` section suffix is ignored)."""
        rows = self._query(select(resources_table.c.json)
                           .where(resources_table.c.ref == ref.split("#", 1)[0]))
        return json.loads(rows[0][0]) if rows else None

    def chart_version(self, patient_id: str) -> str:
        """A short hash that changes whenever this patient's stored chart changes."""
        h = hashlib.sha256(patient_id.encode())
        for ref, digest in self._query(select(resources_table.c.ref, resources_table.c.content_hash)
                                       .where(resources_table.c.patient_id == patient_id)
                                       .order_by(resources_table.c.ref)):
            h.update(f"{ref}={digest};".encode())
        return h.hexdigest()[:16]

    def counts(self) -> dict[str, int]:
        """Rows in the store: resources, evidence, patients (for status pages)."""
        res = self._query(select(func.count()).select_from(resources_table))[0][0]
        ev = self._query(select(func.count()).select_from(evidence_table))[0][0]
        pts = self._query(select(func.count()).select_from(resources_table)
                          .where(resources_table.c.resource_type == "Patient"))[0][0]
        return {"resources": int(res), "evidence": int(ev), "patients": int(pts)}

    def _query(self, q: Any) -> list[Any]:
        try:
            with self.engine.connect() as conn:
                return list(conn.execute(q).all())
        except SQLAlchemyError as exc:
            raise StoreError(f"could not read the chart store ({exc.__class__.__name__})",
                             where=_safe_url(self.url)) from exc


def _unique(items: list[Evidence]) -> list[Evidence]:
    """Evidence ids are primary keys: keep the last unit for a repeated id."""
    return list({e.id: e for e in items}.values())


def sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """Connect hook for every SQLite engine of the project (chart store and service store)."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")  # readers do not block the one writer
    cur.execute("PRAGMA busy_timeout=10000")  # CLI and service may write at the same time
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
