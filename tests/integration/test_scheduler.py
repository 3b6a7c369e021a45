"""Scheduled jobs: one run per due slot across workers, no overlap, errors recorded."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from pacioli.ledger.storage.database import make_engine
from pacioli.workers.scheduler import ScheduledJob, Scheduler, next_slot
from pacioli.workers.tables import scheduled_jobs

START = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


class Clock:
    """A clock the test moves by hand, shared by every scheduler of the test."""

    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


class Runs:
    """A job body that records the `now` of every run."""

    def __init__(self) -> None:
        self.at: list[datetime] = []
        self._lock = threading.Lock()

    def __call__(self, now: datetime) -> None:
        with self._lock:
            self.at.append(now)


@pytest.fixture
def jobs_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url, pool_size=8)
    yield engine
    engine.dispose()


def job_row(engine: Engine, name: str):
    with engine.connect() as connection:
        return connection.execute(
            select(scheduled_jobs).where(scheduled_jobs.c.name == name)).one()


def test_a_job_runs_when_due_and_not_again_before_its_next_slot(jobs_engine):
    clock, runs = Clock(), Runs()
    scheduler = Scheduler(jobs_engine, [ScheduledJob("sweep", MINUTE, runs)], clock=clock)

    assert len(scheduler.run_due()) == 1  # a new job's first slot is now
    clock.advance(timedelta(seconds=59))
    assert scheduler.run_due() == []
    clock.advance(timedelta(seconds=1))
    assert len(scheduler.run_due()) == 1

    assert runs.at == [START, START + MINUTE]
    row = job_row(jobs_engine, "sweep")
    assert (row.next_run_at, row.last_started_at, row.last_error) == (
        START + 2 * MINUTE, START + MINUTE, None)
    assert row.last_finished_at >= row.last_started_at


def test_two_workers_run_each_due_slot_once(jobs_engine):
    clock, runs = Clock(), Runs()
    schedulers = [Scheduler(jobs_engine, [ScheduledJob("sweep", MINUTE, runs)], clock=clock)
                  for _ in range(2)]
    for scheduler in schedulers:
        scheduler.register()
    slots = 20

    for _ in range(slots):
        start = threading.Barrier(len(schedulers))

        def tick(scheduler: Scheduler, start: threading.Barrier = start) -> None:
            start.wait()
            scheduler.run_due()

        threads = [threading.Thread(target=tick, args=(s,)) for s in schedulers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        clock.advance(MINUTE)

    assert runs.at == [START + i * MINUTE for i in range(slots)]


def test_missed_slots_collapse_into_one_run_and_the_grid_is_kept(jobs_engine):
    clock, runs = Clock(), Runs()
    scheduler = Scheduler(jobs_engine, [ScheduledJob("sweep", MINUTE, runs)], clock=clock)
    scheduler.run_due()

    clock.advance(10 * MINUTE + timedelta(seconds=30))  # every worker was down meanwhile
    assert len(scheduler.run_due()) == 1
    assert scheduler.run_due() == []
    assert job_row(jobs_engine, "sweep").next_run_at == START + 11 * MINUTE


def test_a_run_in_progress_is_not_overlapped_by_another_worker_until_its_lease_ends(
    jobs_engine,
):
    clock, runs = Clock(), Runs()
    job = ScheduledJob("slow", MINUTE, runs, lease=timedelta(minutes=5))
    first, second = (Scheduler(jobs_engine, [job], clock=clock) for _ in range(2))
    first.register()

    claimed = first.claim(job, clock())  # started, and its worker is still running it
    assert claimed is not None
    clock.advance(2 * MINUTE)
    assert second.run_due() == []  # the next slot is due, but the run is not finished

    clock.advance(4 * MINUTE)  # past the lease: the first worker is presumed dead
    assert [run.started_at for run in second.run_due()] == [clock.now]

    first.execute(claimed)  # the presumed-dead run ends late: it does not clobber
    row = job_row(jobs_engine, "slow")
    assert row.last_started_at == clock.now


def test_a_failing_run_records_its_error_and_a_later_success_clears_it(jobs_engine):
    clock = Clock()
    failures = iter([ValueError("biller down"), None])

    def flaky(now: datetime) -> None:
        failure = next(failures)
        if failure:
            raise failure

    scheduler = Scheduler(jobs_engine, [ScheduledJob("flaky", MINUTE, flaky)], clock=clock)
    [run] = scheduler.run_due()
    assert run.error == "ValueError: biller down"
    assert job_row(jobs_engine, "flaky").last_error == "ValueError: biller down"

    clock.advance(MINUTE)
    [run] = scheduler.run_due()
    assert run.error is None
    assert job_row(jobs_engine, "flaky").last_error is None


def test_the_scheduler_thread_runs_jobs_on_their_interval_until_stopped(jobs_engine):
    runs = Runs()
    job = ScheduledJob("frequent", timedelta(milliseconds=100), runs)
    scheduler = Scheduler(jobs_engine, [job], tick_seconds=0.02)
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,))
    thread.start()
    time.sleep(0.75)
    stop.set()
    thread.join(5)

    assert not thread.is_alive()
    assert 4 <= len(runs.at) <= 9
    # Runs keep to the job's grid of 100 ms slots (where next_run_at lies): one per slot.
    grid = job_row(jobs_engine, "frequent").next_run_at
    slots = [(at - grid) // job.interval for at in runs.at]
    assert slots == sorted(set(slots))


def test_job_names_must_be_unique_and_intervals_positive(jobs_engine):
    with pytest.raises(ValueError, match="unique"):
        Scheduler(jobs_engine, [ScheduledJob("x", MINUTE, print), ScheduledJob("x", MINUTE, print)])
    with pytest.raises(ValueError, match="positive"):
        ScheduledJob("x", timedelta(0), print)


@pytest.mark.parametrize(("now", "expected"), [
    (START, START + MINUTE),
    (START + timedelta(seconds=59), START + MINUTE),
    (START + MINUTE, START + 2 * MINUTE),
    (START + 3 * MINUTE + timedelta(seconds=1), START + 4 * MINUTE),
    (START - timedelta(seconds=5), START + MINUTE),  # a clock behind the slot
])
def test_the_next_slot_is_the_first_on_the_grid_after_now(now, expected):
    assert next_slot(START, MINUTE, now) == expected
