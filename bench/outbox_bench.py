"""Outbox events from commit to consumer, at a steady ledger write load.

    python bench/outbox_bench.py [--rate 2000] [--seconds 10] [--workers 64]
                                 [--accounts 2000] [--worker-threads 4]
                                 [--consumer batch|event] [--broker-url redis://...]
                                 [--database-url postgresql://...] [--smoke]

Threads post two-leg transfers between random wallets through `pacioli.ledger` at a
fixed offered rate (default 2,000 transfers/s, the ledger bench's uniform rate on the
reference machine); every transfer commits a `transfer.posted` event to the outbox. A
real `pacioli worker` process (relay, dramatiq worker, the PostgreSQL broker unless
--broker-url) runs a consumer that does what consumers do: it records the event in
`consumed_events` (the dedupe) and, the first time only, writes an effect row with the
time it was handled, both in one transaction. `--consumer event` does that once per
event (`handle`, `first_consumption`), `--consumer batch` (default) once per message
(`handle_batch`). After the load, the bench waits for the backlog to drain.

Figures, over the events committed during the load (set-up events are marked sent
before the worker starts, so they are not measured):
- events_per_s: events handled / (last handled - first committed);
  committed_per_s, the rate the ledger produced them, is the reference it must match;
- lag_p99_ms: handled_at - the event's created_at (the ledger's commit time), 99th pct;
- lost: events never handled within the drain timeout;
- duplicated_effects: effect rows beyond one per event (the dedupe failing).
Progress goes to stderr; the last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import bench_server  # noqa: E402
import ledger_workloads as workloads  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from pacioli.ledger import DomainError, Ledger, LedgerUnavailable  # noqa: E402
from pacioli.ledger.outbox import Event, first_consumption  # noqa: E402
from pacioli.ledger.storage.database import make_engine  # noqa: E402
from pacioli.ledger.storage.migrate import upgrade  # noqa: E402

TARGET_LAG_P99_MS = 1000.0
TARGET_KEEP_UP_RATIO = 0.95
DRAIN_TIMEOUT_SECONDS = 60.0
CONSUMER_VARIABLE = "PACIOLI_OUTBOX_BENCH_CONSUMER"
CONSUMERS = ("batch", "event")
WORKER_READY_LINE = "Pacioli worker running"
SMOKE = {"seconds": 2, "accounts": 200, "rate": 500}
EFFECTS_DDL = (
    "CREATE TABLE IF NOT EXISTS outbox_bench_effects ("
    " event_id uuid NOT NULL, created_at timestamptz NOT NULL,"
    " handled_at timestamptz NOT NULL DEFAULT clock_timestamp())"
)


# The consumer, run inside the `pacioli worker` process (`--with outbox_bench:wire`).


class EffectConsumer:
    """Records each event once, in the transaction of its effect, as real consumers do:
    one database transaction per event."""

    name = "outbox_bench"

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def handle(self, event: Event) -> None:
        with self._engine.begin() as connection:
            if first_consumption(connection, self.name, event.event_id):
                connection.execute(
                    text("INSERT INTO outbox_bench_effects (event_id, created_at)"
                         " VALUES (:event_id, :created_at)"),
                    {"event_id": event.event_id, "created_at": event.created_at},
                )


class BatchEffectConsumer(EffectConsumer):
    """The same effect and dedupe for a whole message in one transaction (`handle_batch`)."""

    def handle_batch(self, events: list[Event]) -> None:
        with self._engine.begin() as connection:
            connection.execute(_RECORD_BATCH, {
                "consumer": self.name,
                "event_ids": [e.event_id for e in events],
                "created_ats": [e.created_at for e in events],
            })


# consumed_events is what `first_consumption` writes; only the events recorded for the
# first time get an effect row.
_RECORD_BATCH = text(
    """
    WITH batch AS (
        SELECT * FROM unnest(CAST(:event_ids AS uuid[]), CAST(:created_ats AS timestamptz[]))
            AS b(event_id, created_at)
    ), first AS (
        INSERT INTO consumed_events (consumer, event_id, consumed_at)
        SELECT :consumer, event_id, now() FROM batch
        ON CONFLICT DO NOTHING
        RETURNING event_id
    )
    INSERT INTO outbox_bench_effects (event_id, created_at)
    SELECT batch.event_id, batch.created_at FROM batch JOIN first USING (event_id)
    """
)


def wire(engine: Engine, ledger: Ledger, settings: object, resources: ExitStack):
    from pacioli.workers.wiring import Workload

    batch = os.environ.get(CONSUMER_VARIABLE, "batch") == "batch"
    return Workload(consumers=[(BatchEffectConsumer if batch else EffectConsumer)(engine)])


# The bench.


@dataclass(frozen=True)
class Options:
    rate: int
    seconds: int
    workers: int
    accounts: int
    worker_threads: int
    consumer: str
    database_url: str | None
    broker_url: str | None


@dataclass(frozen=True)
class Figures:
    committed: int
    committed_per_s: float
    handled: int
    events_per_s: float
    lag_p50_ms: float
    lag_p99_ms: float
    relay_lag_p99_ms: float  # committed -> marked sent (the relay's part of the lag)
    lost: int
    duplicated_effects: int
    acknowledged: int
    refused: int


def parse_options(argv: list[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=2000, help="offered transfers/s")
    parser.add_argument("--seconds", type=int, default=10, help="seconds of load")
    parser.add_argument("--workers", type=int, default=64, help="threads posting transfers")
    parser.add_argument("--accounts", type=int, default=2000, help="wallets")
    parser.add_argument("--worker-threads", type=int, default=4,
                        help="dramatiq threads of the worker process")
    parser.add_argument("--consumer", choices=CONSUMERS, default="batch",
                        help="batch: one transaction per message (handle_batch); event: one "
                             "per event (handle)")
    parser.add_argument("--database-url", help="a PostgreSQL server whose role may create "
                        "databases; default: a fresh embedded server")
    parser.add_argument("--broker-url", help="redis:// or amqp://; default: PostgreSQL")
    parser.add_argument("--smoke", action="store_true", help="a quick check of the bench")
    arguments = parser.parse_args(argv)
    if arguments.smoke:
        for name, value in SMOKE.items():
            setattr(arguments, name, value)
    return Options(arguments.rate, arguments.seconds, arguments.workers, arguments.accounts,
                   arguments.worker_threads, arguments.consumer, arguments.database_url,
                   arguments.broker_url)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    run_id = uuid.uuid4().hex[:8]
    with bench_server.open_server(options.database_url) as server:
        name = f"pacioli_outbox_bench_{run_id}"
        url = bench_server.create_database(server.admin_url, name)
        try:
            figures = run_bench(options, url, run_id)
        finally:
            if not server.embedded:
                bench_server.drop_database(server.admin_url, name)
    print(render(options, figures))
    print(json.dumps(summary(options, figures)))
    return 0 if figures.lost == 0 and figures.duplicated_effects == 0 else 1


def run_bench(options: Options, url: str, run_id: str) -> Figures:
    upgrade(url)
    engine = make_engine(url, pool_size=options.workers + 4)
    try:
        with Ledger(engine, client_id="outbox-bench") as ledger:
            _progress(f"opening and funding {options.accounts} accounts")
            accounts = workloads.open_accounts(ledger, user_count=options.accounts,
                                               workers=options.workers, key_prefix=run_id)
            workloads.fund_accounts(ledger, accounts, workers=options.workers,
                                    key_prefix=run_id)
            first_measured_id = _prepare(engine)
            with tempfile.TemporaryDirectory(prefix="pacioli-outbox-bench-") as scratch:
                log_path = Path(scratch) / "worker.log"
                worker = _start_worker(url, options, log_path)
                try:
                    _wait_for_ready(worker, log_path)
                    _progress(f"{options.rate} transfers/s for {options.seconds} s")
                    acknowledged, refused = _offer_load(ledger, accounts, options, run_id)
                    _progress("draining the outbox")
                    _drain(engine, first_measured_id, worker, log_path)
                finally:
                    _stop_worker(worker, log_path)
        return _figures(engine, first_measured_id, acknowledged, refused)
    finally:
        engine.dispose()


def _prepare(engine: Engine) -> int:
    """Create the effects table, mark the set-up events sent; return the first id measured."""
    with engine.begin() as connection:
        connection.execute(text(EFFECTS_DDL))
        connection.execute(text("UPDATE outbox SET sent_at = now() WHERE sent_at IS NULL"))
        last = connection.execute(text("SELECT coalesce(max(id), 0) FROM outbox")).scalar_one()
    return last + 1


def _start_worker(url: str, options: Options, log_path: Path) -> subprocess.Popen:
    env = {**os.environ, "PACIOLI_DATABASE_URL": url, "PACIOLI_LOG_FORMAT": "text",
           "PYTHONPATH": os.pathsep.join([str(BENCH_DIR), str(BENCH_DIR.parent)])}
    env.pop("PACIOLI_BROKER_URL", None)
    env[CONSUMER_VARIABLE] = options.consumer
    if options.broker_url:
        env["PACIOLI_BROKER_URL"] = options.broker_url
    command = [str(Path(sys.executable).with_name("pacioli")), "worker",
               "--threads", str(options.worker_threads), "--with", "outbox_bench:wire"]
    with open(log_path, "wb") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_for_ready(worker: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while WORKER_READY_LINE not in log_path.read_text(errors="replace"):
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("the worker did not start:\n" + log_path.read_text())
        time.sleep(0.1)


def _stop_worker(worker: subprocess.Popen, log_path: Path) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
    if worker.wait(60) != 0:
        _progress("the worker exited with an error:\n" + log_path.read_text()[-4000:])


def _offer_load(ledger: Ledger, accounts: workloads.BenchAccounts, options: Options,
                run_id: str) -> tuple[int, int]:
    """Post transfers at the offered rate (an open loop: late sends do not slow the pace)."""
    make_request = workloads.uniform_requests(accounts)
    started = time.monotonic() + 0.1
    total = options.rate * options.seconds
    counts = {"acknowledged": 0, "refused": 0}
    lock = threading.Lock()

    def post(worker_index: int) -> None:
        rng = random.Random(f"{run_id}-{worker_index}")
        for sequence in range(worker_index, total, options.workers):
            delay = started + sequence / options.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            request = make_request(rng, f"{run_id}-load-{sequence}")
            outcome = _post(ledger, request)
            with lock:
                counts[outcome] += 1

    threads = [threading.Thread(target=post, args=(i,)) for i in range(options.workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts["acknowledged"], counts["refused"]


def _post(ledger: Ledger, request: workloads.Request) -> str:
    for _ in range(workloads.CLIENT_ATTEMPTS_MAX):
        try:
            ledger.transfer(request.legs, idempotency_key=request.key)
            return "acknowledged"
        except LedgerUnavailable:
            continue
        except DomainError:
            return "refused"
    return "refused"


def _drain(engine: Engine, first_id: int, worker: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            waiting = connection.execute(text(
                "SELECT count(*) FROM outbox o WHERE o.id >= :first AND NOT EXISTS"
                " (SELECT 1 FROM outbox_bench_effects e WHERE e.event_id = o.event_id)"),
                {"first": first_id}).scalar_one()
        if not waiting:
            return
        if worker.poll() is not None:
            raise RuntimeError("the worker died:\n" + log_path.read_text()[-4000:])
        time.sleep(0.2)
    _progress(f"{waiting} events still unhandled after {DRAIN_TIMEOUT_SECONDS:.0f} s")


def _figures(engine: Engine, first_id: int, acknowledged: int, refused: int) -> Figures:
    with engine.connect() as connection:
        events = connection.execute(text(
            "SELECT o.event_id, o.created_at, o.sent_at, min(e.handled_at) AS handled_at,"
            " count(e.event_id) AS effects"
            " FROM outbox o LEFT JOIN outbox_bench_effects e ON e.event_id = o.event_id"
            " WHERE o.id >= :first GROUP BY o.event_id, o.created_at, o.sent_at"),
            {"first": first_id}).all()
    handled = [e for e in events if e.handled_at is not None]
    lags_ms = sorted((e.handled_at - e.created_at).total_seconds() * 1000 for e in handled)
    relay_lags_ms = sorted((e.sent_at - e.created_at).total_seconds() * 1000
                           for e in events if e.sent_at is not None)
    created = [e.created_at for e in events]
    committed_seconds = (max(created) - min(created)).total_seconds() if created else 0
    handled_seconds = ((max(e.handled_at for e in handled) - min(created)).total_seconds()
                       if handled else 0)
    return Figures(
        committed=len(events),
        committed_per_s=_rate(len(events), committed_seconds),
        handled=len(handled),
        events_per_s=_rate(len(handled), handled_seconds),
        lag_p50_ms=_quantile(lags_ms, 0.50),
        lag_p99_ms=_quantile(lags_ms, 0.99),
        relay_lag_p99_ms=_quantile(relay_lags_ms, 0.99),
        lost=len(events) - len(handled),
        duplicated_effects=sum(max(0, e.effects - 1) for e in events),
        acknowledged=acknowledged,
        refused=refused,
    )


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def _quantile(ordered: list[float], quantile: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


def render(options: Options, figures: Figures) -> str:
    keep_up = _rate(figures.events_per_s, figures.committed_per_s)
    broker = options.broker_url.split("://")[0] if options.broker_url else "postgresql"
    return "\n".join([
        "",
        f"Pacioli outbox bench: {options.rate} transfers/s offered for {options.seconds} s,"
        f" {options.workers} posting threads, broker {broker},"
        f" {options.worker_threads} consumer threads, {options.consumer} consumer",
        f"  transfers acknowledged {figures.acknowledged}, refused {figures.refused}",
        f"  events committed {figures.committed} ({figures.committed_per_s:.1f}/s)",
        f"  events handled   {figures.handled} ({figures.events_per_s:.1f}/s,"
        f" {keep_up:.2f}x the commit rate)",
        f"  lag p50 {figures.lag_p50_ms:.1f} ms, p99 {figures.lag_p99_ms:.1f} ms"
        f" (of which committed -> relayed, p99: {figures.relay_lag_p99_ms:.1f} ms)",
        f"  lost {figures.lost}, duplicated effects {figures.duplicated_effects}",
        "",
        f"target keeps up (>= {TARGET_KEEP_UP_RATIO:.2f}x): {keep_up:.2f}x"
        f" {'met' if keep_up >= TARGET_KEEP_UP_RATIO else 'NOT met'}",
        f"target lag p99 < {TARGET_LAG_P99_MS:.0f} ms: {figures.lag_p99_ms:.1f} ms"
        f" {'met' if figures.lag_p99_ms < TARGET_LAG_P99_MS else 'NOT met'}",
        f"target nothing lost or doubled: {figures.lost + figures.duplicated_effects}"
        f" {'met' if figures.lost + figures.duplicated_effects == 0 else 'NOT met'}",
    ])


def summary(options: Options, figures: Figures) -> dict:
    return {
        "bench": "outbox",
        "events_per_s": round(figures.events_per_s, 1),
        "lag_p99_ms": _finite(figures.lag_p99_ms),
        "lost": figures.lost,
        "duplicated_effects": figures.duplicated_effects,
        "committed_per_s": round(figures.committed_per_s, 1),
        "lag_p50_ms": _finite(figures.lag_p50_ms),
        "relay_lag_p99_ms": _finite(figures.relay_lag_p99_ms),
        "events": figures.committed,
        "offered_rate": options.rate,
        "seconds": options.seconds,
        "broker": options.broker_url.split("://")[0] if options.broker_url else "postgresql",
        "consumer": options.consumer,
    }


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 1)


def _progress(message: str) -> None:
    print(f"[outbox_bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
