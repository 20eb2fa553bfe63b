"""Alembic environment: runs migrations on the URL the caller put in the config."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

import core.domains.schema  # noqa: F401  (puts the domain tables on the metadata)
import core.returns.schema  # noqa: F401  (the inbound reports table)
import core.webhooks.schema  # noqa: F401  (puts the webhook tables on the metadata)
from core.storage import stats_tables  # noqa: F401 (its tables on the metadata)
from core.storage.db import metadata, sync_url

config = context.config
url = sync_url(config.get_main_option("sqlalchemy.url") or "")
render_as_batch = url.startswith("sqlite")  # SQLite cannot ALTER most things in place

if context.is_offline_mode():
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=render_as_batch)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=metadata, render_as_batch=render_as_batch)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
