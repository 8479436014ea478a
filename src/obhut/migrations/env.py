from __future__ import annotations

from alembic import context

from obhut.access import models as _access  # noqa: F401 - registers tables
from obhut.access import sso_models as _sso  # noqa: F401
from obhut.audit import models as _audit  # noqa: F401
from obhut.consent import models as _consent  # noqa: F401
from obhut.customers import models as _customers  # noqa: F401
from obhut.kit.db import Base, KeystoreBase, SensitiveBase, build_engine
from obhut.outbox import models as _outbox  # noqa: F401
from obhut.retention import models as _retention  # noqa: F401
from obhut.rights import models as _rights  # noqa: F401
from obhut.vault import models as _vault  # noqa: F401
from obhut.workspaces import models as _workspaces  # noqa: F401

config = context.config
metadata = {"keystore": KeystoreBase.metadata, "sensitive": SensitiveBase.metadata}.get(
    config.attributes.get("target", "main"), Base.metadata
)
engine = build_engine(config.get_main_option("sqlalchemy.url") or "", checkpointer=False)

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    if connection.dialect.name == "sqlite":  # the file alone holds the schema now: a copy of it is whole
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
engine.dispose()
