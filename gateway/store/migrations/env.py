"""Alembic environment: the URL comes from the config built in gateway.store.migrations."""

from __future__ import annotations

from alembic import context

from gateway.store.engine import make_engine
from gateway.store.tables import metadata

url = context.config.get_main_option("sqlalchemy.url")
assert url, "sqlalchemy.url is set by gateway.store.migrations.alembic_config"
engine = make_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
