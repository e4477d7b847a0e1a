"""Durable storage of messages, cases and their history (SQLAlchemy 2, Alembic)."""
