"""replays and their items

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replays",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=1000), nullable=False),
        sa.Column("requested_by", sa.String(length=128), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("selection", sa.JSON(), nullable=False),
        sa.Column("rate_per_second", sa.Float(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("controls", sa.JSON(), nullable=False),
        sa.Column("runner_owner", sa.String(length=64), nullable=True),
        sa.Column("runner_lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replays")),
    )
    with op.batch_alter_table("replays", schema=None) as batch_op:
        batch_op.create_index("ix_replays_status", ["status"], unique=False)
        batch_op.create_index("ix_replays_created_at", ["created_at"], unique=False)
    op.create_table(
        "replay_items",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("replay_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("message_pk", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["message_pk"], ["messages.id"], name=op.f("fk_replay_items_message_pk_messages")
        ),
        sa.ForeignKeyConstraint(
            ["replay_id"], ["replays.id"], name=op.f("fk_replay_items_replay_id_replays")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replay_items")),
    )
    with op.batch_alter_table("replay_items", schema=None) as batch_op:
        batch_op.create_index(
            "ix_replay_items_replay_id_state_position", ["replay_id", "state", "position"], unique=False
        )
        batch_op.create_index("ix_replay_items_message_pk", ["message_pk"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("replay_items", schema=None) as batch_op:
        batch_op.drop_index("ix_replay_items_message_pk")
        batch_op.drop_index("ix_replay_items_replay_id_state_position")
    op.drop_table("replay_items")
    with op.batch_alter_table("replays", schema=None) as batch_op:
        batch_op.drop_index("ix_replays_created_at")
        batch_op.drop_index("ix_replays_status")
    op.drop_table("replays")
