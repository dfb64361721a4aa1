"""The audit log: append-only, hash-chained records of every chart access and draft action.

Each record holds (time, actor, role, action, patient, purpose, target, evidence ids, model, prompt
version, output hash) plus ``prev_hash`` — the hash of the record before it — and its own ``hash``
over all of that. A separate head row remembers the last sequence number and hash. So:

- an **edited** record no longer matches its own hash;
- a **removed** record leaves a gap in the sequence, or (for the last one) disagrees with the head;
- **reordered** records each still match their own hash but point to the wrong predecessor.

``verify_chain`` names the first record that breaks and how. Clinical text never goes in here: ids,
hashes and counts only (the output hash lets anyone prove which text was signed without storing it
twice).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

GENESIS = "0" * 64

ACTIONS = (
    "chart.read", "chart.ingest", "chart.list", "evidence.read", "draft.create", "draft.read",
    "draft.edit", "draft.acknowledge", "draft.sign", "draft.reject", "draft.feedback",
    "draft.export", "writeback.sent", "writeback.failed", "cds.call", "cds.feedback",
    "audit.read",
)


class AuditEvent(BaseModel):
    """What the caller knows; the store adds sequence, time and hashes."""

    actor: str
    role: str
    action: str
    patient_id: str | None = None
    purpose: str | None = None
    target: str | None = None  # e.g. a draft id or evidence id
    evidence_ids: list[str] = Field(default_factory=list)
    model: str | None = None
    prompt_version: str | None = None
    output_hash: str | None = None


class AuditRecord(AuditEvent):
    seq: int
    at: str
    prev_hash: str
    hash: str


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def output_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def record_hash(event: AuditEvent, *, at: str, prev_hash: str) -> str:
    """Hash of a record's content and its predecessor's hash (not its seq, so reordering shows)."""
    body = event.model_dump(include=set(AuditEvent.model_fields))
    body.update(at=at, prev_hash=prev_hash)
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class ChainReport:
    ok: bool
    records: int
    problems: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "records": self.records, "problems": self.problems}


def verify_chain(records: Sequence[AuditRecord], head: tuple[int, str] | None) -> ChainReport:
    """Check records (in seq order) against each other and the head; say which one broke and how."""
    problems: list[dict[str, Any]] = []
    by_hash = {r.hash: r for r in records}
    prev_hash, prev_seq = GENESIS, 0
    for r in records:
        own_ok = record_hash(r, at=r.at, prev_hash=r.prev_hash) == r.hash
        if not own_ok:
            problems.append({"seq": r.seq, "problem": "edited",
                             "detail": "content does not match its hash"})
        elif r.prev_hash != prev_hash:
            if r.seq != prev_seq + 1 or (r.prev_hash not in by_hash and r.prev_hash != GENESIS):
                problems.append({"seq": r.seq, "problem": "removed",
                                 "detail": f"record(s) before seq {r.seq} are missing"})
            else:
                problems.append({"seq": r.seq, "problem": "reordered",
                                 "detail": f"points to seq {by_hash[r.prev_hash].seq}"
                                 if r.prev_hash in by_hash else "points to the start"})
        elif r.seq != prev_seq + 1:
            problems.append({"seq": r.seq, "problem": "renumbered",
                             "detail": f"expected seq {prev_seq + 1}"})
        prev_hash, prev_seq = r.hash, r.seq
    if head is not None and records and (head[0] != prev_seq or head[1] != prev_hash):
        problems.append({"seq": head[0], "problem": "removed",
                         "detail": f"the chain ends at seq {prev_seq} but the head says {head[0]}"})
    elif head is not None and not records and head[0] != 0:
        problems.append({"seq": head[0], "problem": "removed", "detail": "every record is gone"})
    return ChainReport(ok=not problems, records=len(records), problems=problems)


def verify_store(store: Any) -> ChainReport:
    """Verify the whole chain held by an ``assistant.store.Store``."""
    return verify_chain(store.audit_records(), store.audit_head())
