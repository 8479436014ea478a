"""The scheduled retention work: each workspace with policies is purged once per interval (a finished run
records when); an interrupted run is resumed on the next turn."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from obhut.kit.clock import now
from obhut.retention.models import PurgeRun, RetentionPolicy
from obhut.retention.purge import Purge

# Beside a running service the purge takes smaller batches than `obhut retention purge` (5,000): a batch is one
# transaction, and on SQLite it holds the write lock throughout; a thousand keeps that near a second here.
BACKGROUND_BATCH = 1000


def purge_due(sessions: sessionmaker[Session], purge: Purge, every_hours: float) -> int:
    """Purges the workspaces whose last purge finished more than `every_hours` ago (or never did); how many
    customers were erased or cleared."""
    with sessions() as session:
        workspaces = session.scalars(select(RetentionPolicy.workspace_id).distinct()).all()
        last = dict(
            session.execute(
                select(PurgeRun.workspace_id, func.max(PurgeRun.finished_at)).group_by(PurgeRun.workspace_id)
            ).all()
        )
        unfinished = set(session.scalars(select(PurgeRun.workspace_id).where(PurgeRun.finished_at.is_(None))))
    cutoff, done = now() - timedelta(hours=every_hours), 0
    for workspace_id in workspaces:
        finished = last.get(workspace_id)
        if workspace_id in unfinished or finished is None or finished <= cutoff:
            run = purge.run(workspace_id, BACKGROUND_BATCH)
            done += run.erased + run.cleared
    return done
