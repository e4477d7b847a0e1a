"""The relational schema, in SQLAlchemy Core. Alembic migrations create it; a test
checks that the migrations and these tables agree."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    text,
)

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
    Index(
        "uq_messages_accepted_sender_message_id",
        "sender",
        "message_id",
        unique=True,
        sqlite_where=text("accepted"),
        postgresql_where=text("accepted"),
    ),
    Index("ix_messages_status_received_at", "status", "received_at"),
    Index("ix_messages_received_at", "received_at"),
    Index("ix_messages_unit_procedure", "unit_code", "procedure_number"),
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
