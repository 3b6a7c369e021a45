"""One worker process: a dramatiq Worker, the outbox relay and the scheduler, together.

`WorkerProcess.start()` declares an actor per consumer, starts dramatiq's worker threads
on those queues, then the relay thread and the scheduler thread. `stop()` stops them in
the order that loses nothing: the relay first (no new messages), then the scheduler
(waits for the runs in progress), then dramatiq (finishes the messages in hand and
gives the rest back to the broker), then the broker's connections.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import dramatiq
from sqlalchemy import Engine

from pacioli.workers.actors import declare_consumer_actors, queue_name
from pacioli.workers.relay import OutboxRelay, dispatcher
from pacioli.workers.scheduler import Scheduler
from pacioli.workers.wiring import Workload

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True)
class WorkerOptions:
    queue_prefix: str = "pacioli"
    threads: int = 8
    relay: bool = True
    scheduler: bool = True
    relay_batch_size: int = 500
    relay_poll_interval_seconds: float = 0.1
    scheduler_tick_seconds: float = 1.0


class WorkerProcess:
    """Runs a workload's consumers (through `broker`) and jobs until stopped."""

    def __init__(
        self, engine: Engine, broker: dramatiq.Broker, workload: Workload,
        options: WorkerOptions,
    ) -> None:
        self._engine = engine
        self._broker = broker
        self._workload = workload
        self._options = options
        self._stop_relay = threading.Event()
        self._stop_scheduler = threading.Event()
        self._threads: list[tuple[threading.Event, threading.Thread]] = []
        self._worker: dramatiq.Worker | None = None

    def start(self) -> None:
        options, consumers = self._options, self._workload.consumers
        actors = declare_consumer_actors(self._broker, consumers,
                                         queue_prefix=options.queue_prefix)
        self._broker.emit_after("process_boot")
        self._worker = dramatiq.Worker(
            self._broker, worker_threads=options.threads,
            queues={queue_name(options.queue_prefix, c.name) for c in consumers},
        )
        self._worker.start()
        if options.relay:
            relay = OutboxRelay(
                self._engine, dispatcher(consumers, actors),
                batch_size=options.relay_batch_size,
                poll_interval_seconds=options.relay_poll_interval_seconds,
            )
            self._start_thread("pacioli-relay", relay.run, self._stop_relay)
        if options.scheduler:
            scheduler = Scheduler(self._engine, self._workload.jobs,
                                  tick_seconds=options.scheduler_tick_seconds)
            self._start_thread("pacioli-scheduler", scheduler.run, self._stop_scheduler)
        log.info("worker started", extra={
            "consumers": [c.name for c in consumers],
            "jobs": [j.name for j in self._workload.jobs],
            "relay": options.relay, "scheduler": options.scheduler,
        })

    def _start_thread(self, name: str, target, stop: threading.Event) -> None:
        thread = threading.Thread(target=target, args=(stop,), name=name, daemon=True)
        thread.start()
        self._threads.append((stop, thread))

    def stop(self, timeout_seconds: float = STOP_TIMEOUT_SECONDS) -> None:
        """Stop the relay, then the scheduler, then dramatiq, then close the broker."""
        for stop, thread in self._threads:
            stop.set()
            thread.join(timeout_seconds)
            if thread.is_alive():
                log.warning("a worker thread did not stop in time", extra={"thread": thread.name})
        if self._worker is not None:
            self._worker.stop(timeout=int(timeout_seconds * 1000))
        self._broker.close()
        log.info("worker stopped")
