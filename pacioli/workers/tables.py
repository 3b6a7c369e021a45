"""The workers' own table: when each scheduled job runs next (migration 0010).

One row per job name. The scheduler of every worker process claims a due run with a
conditional UPDATE of the row (`pacioli.workers.scheduler`), so the row is both the
schedule and the lock that keeps two workers from running the same slot.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, MetaData, Table, Text

metadata = MetaData()

INSTANT = DateTime(timezone=True)

scheduled_jobs = Table(
    "scheduled_jobs",
    metadata,
    Column("name", Text, primary_key=True),
    # The start of the next slot; a worker whose clock has reached it may claim the run.
    Column("next_run_at", INSTANT, nullable=False),
    # Set by the claim; a run is in progress while last_finished_at < last_started_at.
    Column("last_started_at", INSTANT, nullable=True),
    Column("last_finished_at", INSTANT, nullable=True),
    # The exception of the last run that failed (type and message), cleared by a success.
    Column("last_error", Text, nullable=True),
)
