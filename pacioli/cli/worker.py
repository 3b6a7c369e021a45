"""`pacioli worker`: run the event consumers, the outbox relay and the scheduled jobs.

Like `pacioli serve`, it uses the embedded PostgreSQL when PACIOLI_DATABASE_URL is not
set, and migrates the schema first. It stops cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import importlib
import signal
import threading
from collections.abc import Callable
from contextlib import ExitStack
from urllib.parse import urlsplit

import typer
from dramatiq import Broker
from sqlalchemy import Engine

from pacioli.cli.common import console, displayed_url, fail, open_engine
from pacioli.config import Settings, get_settings
from pacioli.gc_settings import apply_service_gc_settings
from pacioli.ledger import Ledger
from pacioli.workers.broker import UnsupportedBrokerUrl, make_broker
from pacioli.workers.process import WorkerOptions, WorkerProcess
from pacioli.workers.wiring import Workload, wire

WireFunction = Callable[..., Workload]


def worker(
    threads: int | None = typer.Option(
        None, "--threads", min=1, max=256,
        help="dramatiq worker threads for the consumers. (env PACIOLI_WORKER_THREADS)",
    ),
    relay: bool = typer.Option(True, "--relay/--no-relay",
                               help="Relay outbox events to the broker."),
    scheduler: bool = typer.Option(True, "--scheduler/--no-scheduler",
                                   help="Run the scheduled jobs."),
    extra_wiring: list[str] = typer.Option(
        [], "--with", metavar="MODULE:FUNCTION",
        help="Also run the consumers and jobs that FUNCTION(engine, ledger, settings, "
             "resources) returns (a deployment's own; repeatable).",
    ),
) -> None:
    """Run the workers: consumers of outbox events, the relay and the scheduled jobs."""
    settings = get_settings()
    extras = [_import_wiring(path) for path in extra_wiring]
    options = WorkerOptions(
        queue_prefix=settings.broker_queue_prefix,
        threads=threads or settings.worker_threads,
        relay=relay, scheduler=scheduler,
        relay_batch_size=settings.relay_batch_size,
        relay_poll_interval_seconds=settings.relay_poll_interval_seconds,
        scheduler_tick_seconds=settings.scheduler_tick_seconds,
    )
    with open_engine(migrate=True) as engine, Ledger(
        engine, batch_size_max=settings.ledger_batch_size_max, writers=settings.ledger_writers,
    ) as ledger, ExitStack() as resources:
        workload = wire(engine, ledger, settings, resources)
        for extra in extras:
            workload.extend(extra(engine, ledger, settings, resources))
        process = WorkerProcess(engine, _broker(settings, engine), workload, options)
        apply_service_gc_settings()
        process.start()
        console.print(f"Database: {displayed_url(engine)}")
        console.print(f"Pacioli worker running; broker: {_broker_description(settings)}")
        try:
            _wait_for_stop_signal()
        finally:
            process.stop()


def _broker(settings: Settings, engine: Engine) -> Broker:
    """The configured broker (PostgreSQL on the worker's database if no URL)."""
    try:
        return make_broker(
            settings.broker_url, engine.url.render_as_string(hide_password=False),
            schema=settings.broker_schema,
            dead_worker_timeout_seconds=settings.broker_dead_worker_timeout_seconds,
        )
    except UnsupportedBrokerUrl as error:
        fail(str(error))


def _wait_for_stop_signal() -> None:
    """Block until SIGTERM or SIGINT (then return, so everything shuts down in order)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _import_wiring(path: str) -> WireFunction:
    module_name, _, function_name = path.partition(":")
    if not module_name or not function_name:
        raise typer.BadParameter(f"expected MODULE:FUNCTION, not {path!r}", param_hint="--with")
    try:
        return getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise typer.BadParameter(f"cannot load {path}: {error}", param_hint="--with") from None


def _broker_description(settings: Settings) -> str:
    if not settings.broker_url:
        return f"PostgreSQL (schema {settings.broker_schema!r})"
    parts = urlsplit(settings.broker_url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
