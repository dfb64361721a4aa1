"""Tables of the service store (SQLAlchemy Core): one place to read the whole schema.

Drafts are stored whole as JSON (the ``Draft`` model is the contract); the columns beside it are
the ones we filter on. Every other table is append-only except the outbox, which holds retry state.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

drafts = Table(
    "drafts",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("patient_id", String(128), nullable=False, index=True),
    Column("doc_type", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("chart_version", String(128)),
    Column("error", Text),
    Column("created_by", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("data", JSON, nullable=False),
)

# Every edit, acknowledgement, sign and reject, as it happened (the draft JSON holds the result).
reviews = Table(
    "reviews",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("draft_id", String(64), nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("action", String(20), nullable=False),  # edit | remove | acknowledge | sign | reject
    Column("statement_id", String(64)),
    Column("detail", JSON),
    Column("at", DateTime(timezone=True), nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("draft_id", String(64), nullable=False, index=True),
    Column("actor", String(200), nullable=False),
    Column("rating", String(8), nullable=False),
    Column("comment", Text),
    Column("at", DateTime(timezone=True), nullable=False),
)

cds_feedback = Table(
    "cds_feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service_id", String(100), nullable=False),
    Column("card", String(100), nullable=False),
    Column("outcome", String(20), nullable=False),  # accepted | overridden
    Column("override_reason", JSON),
    Column("accepted_suggestions", JSON),
    Column("outcome_timestamp", String(40)),
    Column("actor", String(200)),
    Column("at", DateTime(timezone=True), nullable=False),
)

# CDS client JWT ids seen, until their token expires: in the database so that every worker and
# replica sharing it refuses a replay, not only the process that saw the token first.
cds_jti = Table(
    "cds_jti",
    metadata,
    Column("key", String(400), primary_key=True),  # "issuer|jti"
    Column("expires", Float, nullable=False),
)

# Signed drafts waiting for (or done with) write-back; nothing leaves this table on failure.
outbox = Table(
    "outbox",
    metadata,
    Column("draft_id", String(64), primary_key=True),
    Column("bundle", JSON, nullable=False),
    Column("status", String(12), nullable=False),  # pending | sent
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
)

audit = Table(
    "audit",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(40), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("action", String(40), nullable=False),
    Column("patient_id", String(128)),
    Column("purpose", String(200)),
    Column("target", String(200)),
    Column("evidence_ids", JSON, nullable=False),
    Column("model", String(200)),
    Column("prompt_version", String(64)),
    Column("output_hash", String(64)),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row: the chain's head. Updated in the same transaction as each append, so a deleted tail
# record is caught, and on PostgreSQL its row lock serializes concurrent appends.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)
