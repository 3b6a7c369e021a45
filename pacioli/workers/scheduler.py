"""Periodic jobs, run by every worker process's scheduler, each due run by one worker only.

A job's schedule is one row of `scheduled_jobs`: the start of its next slot
(`next_run_at`). Every worker ticks (`tick_seconds`) and, for each job whose slot has
come, claims the run with a compare-and-set UPDATE: it moves `next_run_at` from the
value it read to the next slot after now, and sets `last_started_at`. Of two workers
that read the same slot, the second one's UPDATE waits for the first's row lock, then
finds `next_run_at` changed and updates nothing: one run per slot. Slots missed while
no worker ran collapse into one run (jobs are sweeps of whatever is due, so one run
catches up).

A run in progress blocks the next one, everywhere: the claim also requires the last run
to have finished (`last_finished_at >= last_started_at`) or to be older than the job's
`lease`, after which its worker is presumed dead. A run's outcome is recorded only if
no later run started meanwhile.

Runs happen in this process, on a small thread pool, not as dramatiq messages: the
claim already picks one worker, and a message would add a second at-least-once hop
(re-running a job with a stale `now` on retry) without adding anything. A worker that
dies mid-run loses nothing either: jobs keep their work in tables and claim rows with
`FOR UPDATE SKIP LOCKED` or conditional updates, so the next run (after the lease)
finishes it. Times come from the process clock; workers' clocks must be NTP-synchronised.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from pacioli.workers.tables import scheduled_jobs

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
# Jobs that may run at the same time in one process.
RUN_THREADS_MAX = 8
ERROR_TEXT_MAX = 2000


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScheduledJob:
    """A named callable run every `interval`; `run(now)` must be safe to run twice at once.

    `lease` is how long a started run keeps the next one from starting (if its worker
    died, the job waits at most this long).
    """

    name: str
    interval: timedelta
    run: Callable[[datetime], object]
    lease: timedelta = timedelta(minutes=10)

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0):
            raise ValueError(f"job {self.name!r}: the interval must be positive")


@dataclass(frozen=True)
class JobRun:
    """One run this scheduler claimed (and, once finished, its error if it failed)."""

    job: ScheduledJob
    started_at: datetime
    error: str | None = None


def next_slot(slot: datetime, interval: timedelta, now: datetime) -> datetime:
    """The first slot after `now` on the grid `slot + k * interval`."""
    elapsed = (now - slot) / interval
    return slot + interval * (math.floor(elapsed) + 1 if elapsed >= 0 else 1)


class Scheduler:
    """Claims and runs due scheduled jobs; one per worker process, any number of workers."""

    def __init__(
        self, engine: Engine, jobs: Sequence[ScheduledJob], *, clock: Clock = _utc_now,
        tick_seconds: float = 1.0,
    ) -> None:
        names = [job.name for job in jobs]
        if len(set(names)) != len(names):
            raise ValueError(f"scheduled job names must be unique: {names}")
        self._engine = engine
        self._jobs = list(jobs)
        self._clock = clock
        self.tick_seconds = tick_seconds
        self._registered = False

    def register(self) -> None:
        """Give every job a row (first slot: now) unless another worker already did."""
        now = self._clock()
        if self._jobs:
            with self._engine.begin() as connection:
                connection.execute(
                    pg_insert(scheduled_jobs)
                    .values([{"name": job.name, "next_run_at": now} for job in self._jobs])
                    .on_conflict_do_nothing(index_elements=["name"])
                )
        self._registered = True

    def claim(self, job: ScheduledJob, now: datetime) -> JobRun | None:
        """Claim `job`'s due run at `now`, or None if it is not due or another has it."""
        t = scheduled_jobs
        with self._engine.begin() as connection:
            slot = connection.execute(
                select(t.c.next_run_at).where(t.c.name == job.name)
            ).scalar_one_or_none()
            if slot is None or slot > now:
                return None
            claimed = connection.execute(
                update(t)
                .where(
                    t.c.name == job.name,
                    t.c.next_run_at == slot,
                    or_(
                        t.c.last_started_at.is_(None),
                        t.c.last_finished_at >= t.c.last_started_at,
                        t.c.last_started_at < now - job.lease,
                    ),
                )
                .values(next_run_at=next_slot(slot, job.interval, now), last_started_at=now)
            ).rowcount
        return JobRun(job, now) if claimed == 1 else None

    def execute(self, run: JobRun) -> JobRun:
        """Run a claimed job and record how it ended; never raises."""
        error = None
        try:
            run.job.run(run.started_at)
        except Exception as failure:
            error = f"{type(failure).__name__}: {failure}"[:ERROR_TEXT_MAX]
            log.exception("scheduled job failed", extra={"job": run.job.name})
        t = scheduled_jobs
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    update(t)
                    .where(and_(t.c.name == run.job.name,
                                t.c.last_started_at == run.started_at))
                    .values(last_finished_at=max(self._clock(), run.started_at),
                            last_error=error)
                )
        except Exception:  # the run is done; its lease runs out and nothing is lost
            log.exception("could not record a job's end", extra={"job": run.job.name})
        return JobRun(run.job, run.started_at, error)

    def run_due(self) -> list[JobRun]:
        """Claim and run, one after another in this thread, every job due now."""
        if not self._registered:
            self.register()
        now = self._clock()
        claimed = [run for job in self._jobs if (run := self.claim(job, now)) is not None]
        return [self.execute(run) for run in claimed]

    def run(self, stop: threading.Event) -> None:
        """Tick until `stop` is set, running due jobs on a pool; wait for them at the end."""
        running: dict[str, Future[JobRun]] = {}
        with ThreadPoolExecutor(
            max_workers=max(1, min(RUN_THREADS_MAX, len(self._jobs))),
            thread_name_prefix="pacioli-job",
        ) as pool:
            while not stop.is_set():
                try:
                    self._tick(pool, running)
                except Exception:  # the database may be away; the next tick tries again
                    log.exception("scheduler tick failed")
                stop.wait(self.tick_seconds)

    def _tick(self, pool: ThreadPoolExecutor, running: dict[str, Future[JobRun]]) -> None:
        if not self._registered:
            self.register()
        now = self._clock()
        for job in self._jobs:
            previous = running.get(job.name)
            if previous is not None and not previous.done():
                continue
            run = self.claim(job, now)
            if run is not None:
                running[job.name] = pool.submit(self.execute, run)
