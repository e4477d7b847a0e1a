"""The relational schema, in SQLAlchemy Core. Alembic migrations create it; a test
checks that the migrations and these tables agree."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    text,
)

# The predicate of the partial unique index on accepted messages. SQLite uses a partial index
# only for a query that repeats this term as written (``messages.c.accepted`` renders
# ``accepted = 1`` and scans the table), so queries take it from here.
ACCEPTED = text("accepted")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("receipt_id", String(36), nullable=False, unique=True),
    Column("agency", String(32), nullable=False),
    Column("sender", String(128), nullable=False),
    Column("transport", String(8), nullable=False),
    Column("format", String(64)),
    Column("schema_version", String(16)),
    Column("mapping_version", String(32)),
    Column("message_id", String(64)),
    Column("message_kind", String(24)),
    Column("unit_code", String(16)),
    Column("procedure_number", String(16)),
    Column("tribunal_code", String(16)),
    Column("status", String(16), nullable=False),
    Column("http_status", Integer, nullable=False),
    # True once accepted, for ever: (sender, message_id) is unique among accepted messages
    Column("accepted", Boolean, nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("size", Integer, nullable=False),
    Column("raw", LargeBinary),
    Column("errors", JSON, nullable=False),
    Column("warnings", JSON, nullable=False),
    Column("numero_parquet", String(32)),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # when its raw bytes and case were purged (gateway.store.retention); hashes and metadata stay
    Column("purged_at", DateTime(timezone=True)),
    Index(
        "uq_messages_accepted_sender_message_id",
        "sender",
        "message_id",
        unique=True,
        sqlite_where=ACCEPTED,
        postgresql_where=ACCEPTED,
    ),
    Index("ix_messages_status_received_at", "status", "received_at"),
    Index("ix_messages_received_at", "received_at"),
    Index("ix_messages_unit_procedure", "unit_code", "procedure_number"),
    # the operators' message list (gateway.store.queries): each selective filter has an index
    # (agency, format and schema version are few: the received_at index, filtered, serves them)
    Index("ix_messages_tribunal_received_at", "tribunal_code", "received_at"),
    Index("ix_messages_procedure_number", "procedure_number"),
    Index("ix_messages_numero_parquet", "numero_parquet"),
)

# The error codes of each message, one row per distinct code: "which messages failed with X"
# is an index search on both databases, where the JSON errors column would need a scan.
# received_at repeats the message's so that the list filtered by a code is read in order.
message_error_codes = Table(
    "message_error_codes",
    metadata,
    Column("message_pk", Integer, ForeignKey("messages.id"), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Index("ix_message_error_codes_code_received_at", "code", "received_at", "message_pk"),
)

cases = Table(
    "cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("schema_version", String(16)),
    Column("mapping_version", String(32), nullable=False),
    Column("affaire", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index("ix_cases_message_pk_revision", "message_pk", "revision", unique=True),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("detail", JSON, nullable=False),
    Index("ix_events_message_pk", "message_pk"),
)

# The outbox: one delivery order per accepted message, created in the same transaction.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False, unique=True),
    # (agency, unit, numéro de procédure): deliveries of one procedure go in order
    Column("procedure_key", String(96), nullable=False),
    Column("kind", String(16), nullable=False),  # initiale | complement
    # delivery order within a procedure: (order_rank, id); the initial procedure (0)
    # goes before its compléments (1), whatever the order they arrived in
    Column("order_rank", Integer, nullable=False),
    Column("status", String(16), nullable=False),  # pending | held | registered | dead_letter
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", DateTime(timezone=True)),
    Column("last_error", String(500)),
    Column("numero_parquet", String(32)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("registered_at", DateTime(timezone=True)),
    Index("ix_deliveries_status_next_attempt_at", "status", "next_attempt_at"),
    Index("ix_deliveries_procedure_key", "procedure_key", "id"),
)

delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, ForeignKey("deliveries.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(16), nullable=False),  # registered | retriable | fatal
    Column("duration_ms", Integer, nullable=False),
    Column("detail", JSON, nullable=False),
    Index("ix_delivery_attempts_delivery_id", "delivery_id"),
)

# Replays (issue "Replay and the operator console"): who asked, when, why, which messages
# (chosen when it starts, in procedure order), and what came of each.
replays = Table(
    "replays",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("mode", String(16), nullable=False),  # redeliver | reprocess
    Column("reason", String(1000), nullable=False),
    Column("requested_by", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # running | paused | cancelled | completed
    Column("selection", JSON, nullable=False),
    Column("rate_per_second", Float, nullable=False),
    Column("total", Integer, nullable=False),
    # control events (paused, resumed, cancelled): by whom and when
    Column("controls", JSON, nullable=False),
    # the runner carrying it out holds a lease, so that two never apply the same items
    Column("runner_owner", String(64)),
    Column("runner_lease_expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_replays_status", "status"),
    Index("ix_replays_created_at", "created_at"),
)

replay_items = Table(
    "replay_items",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("replay_id", String(36), ForeignKey("replays.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("message_pk", Integer, ForeignKey("messages.id"), nullable=False),
    Column("state", String(16), nullable=False),  # pending | done | cancelled
    Column("action", String(16)),  # what was applied (replay.model.Action)
    Column("reason", String(500), nullable=False),
    Column("detail", JSON, nullable=False),  # changes, errors, revision
    Column("at", DateTime(timezone=True)),
    Index("ix_replay_items_replay_id_state_position", "replay_id", "state", "position"),
    Index("ix_replay_items_message_pk", "message_pk"),
)

# The audit record (gateway.audit): a hash chain, numbered from 1 without gaps, written in the
# transaction of what it records; never personal data (subject: a receipt or replay id).
audit_records = Table(
    "audit_records",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("actor", String(128), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("detail", JSON, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # "who did what to this message": a data subject's request, an operator's question
    Index("ix_audit_records_subject", "subject"),
)

# One row (id 1): the last record's seq and hash. Its row lock serializes appends on PostgreSQL.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

# Who may send (issue 6): a credential per sender, bound to an agency and the units it may send
# for; a token (only its hash is kept) and/or a client certificate identity.
senders = Table(
    "senders",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("agency", String(32), nullable=False),
    Column("units", JSON, nullable=False),
    Column("token_hash", String(64), unique=True),
    Column("token_hint", String(32)),
    Column("certificate", String(500), unique=True),  # the subject the proxy passes
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

# Who may see and act: operators with a role, an API token for tools and/or a console password.
operators = Table(
    "operators",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("role", String(16), nullable=False),  # viewer | integrator | administrator
    Column("token_hash", String(64), unique=True),
    Column("token_hint", String(32)),
    Column("password_hash", String(200)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
)

# Console sessions: the cookie carries a random id, the database only its hash.
operator_sessions = Table(
    "operator_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("operator_id", String(36), ForeignKey("operators.id"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
)

# Legal holds (issue 6): a procedure under hold is never purged, whatever its age.
legal_holds = Table(
    "legal_holds",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("agency", String(32), nullable=False),
    Column("unit_code", String(16), nullable=False),
    Column("procedure_number", String(16), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("placed_by", String(128), nullable=False),
    Column("placed_at", DateTime(timezone=True), nullable=False),
    Column("released_by", String(128)),
    Column("released_at", DateTime(timezone=True)),
    Index("ix_legal_holds_procedure", "agency", "unit_code", "procedure_number"),
)
