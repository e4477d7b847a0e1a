"""message list: filter indexes and the error codes side table

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    op.create_table(
        "message_error_codes",
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["messages.id"], name=op.f("fk_message_error_codes_message_pk_messages")
        ),
        sa.PrimaryKeyConstraint("message_pk", "code", name=op.f("pk_message_error_codes")),
    )
    with op.batch_alter_table("message_error_codes", schema=None) as batch_op:
        batch_op.create_index(
            "ix_message_error_codes_code_received_at", ["code", "received_at", "message_pk"], unique=False
        )
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_tribunal_received_at", ["tribunal_code", "received_at"])
        batch_op.create_index("ix_messages_procedure_number", ["procedure_number"])
        batch_op.create_index("ix_messages_numero_parquet", ["numero_parquet"])
    _backfill_error_codes()


def _backfill_error_codes() -> None:
    """The codes of messages stored before this revision, read from their JSON errors."""
    messages = sa.table(
        "messages", sa.column("id", sa.Integer()), sa.column("errors", sa.JSON()), sa.column("received_at")
    )
    codes = sa.table(
        "message_error_codes", sa.column("message_pk"), sa.column("code"), sa.column("received_at")
    )
    conn = op.get_bind()
    last = 0
    while True:
        rows = conn.execute(
            sa.select(messages.c.id, messages.c.errors, messages.c.received_at)
            .where(messages.c.id > last)
            .order_by(messages.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        found = [
            {"message_pk": row.id, "code": code, "received_at": row.received_at}
            for row in rows
            for code in sorted({str(e["code"]) for e in row.errors or []})
        ]
        if found:
            conn.execute(sa.insert(codes), found)
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_numero_parquet")
        batch_op.drop_index("ix_messages_procedure_number")
        batch_op.drop_index("ix_messages_tribunal_received_at")
    with op.batch_alter_table("message_error_codes", schema=None) as batch_op:
        batch_op.drop_index("ix_message_error_codes_code_received_at")
    op.drop_table("message_error_codes")
