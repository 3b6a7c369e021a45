"""Running `pacioli worker` as a real process in tests (and for fault tests built on it).

    process = start_worker(database_url, tmp_path / "worker.log", queue_prefix=prefix)
    wait_for_log(process, "Pacioli worker running")
    ...                              # write events; wait for their effects
    assert stop_worker(process) == 0 # SIGTERM, then wait
    drop_broker_schema(database_url, prefix)

The worker runs with this module's `wire` added (`--with`), which brings the
`EffectRecorder` consumer ("recorder"): its effects are rows of `relay_test_effects` in
the worker's database, one per event however often the event is delivered.
`start_worker(..., wiring=[...])` adds other MODULE:FUNCTION wirings. The PostgreSQL
broker's tables go in a schema named after the queue prefix, so tests stay apart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import Engine, create_engine, text

from pacioli.config import Settings
from pacioli.ledger import Ledger
from pacioli.ledger.storage.database import sqlalchemy_url
from pacioli.workers.wiring import Workload
from tests.integration.relay_support import EffectRecorder, create_effects_table

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
PACIOLI = str(Path(sys.executable).with_name("pacioli"))
RECORDER_WIRING = "tests.integration.worker_harness:wire"
RECORDER_DELAY_VARIABLE = "PACIOLI_TEST_RECORDER_DELAY_SECONDS"


def wire(engine: Engine, ledger: Ledger, settings: Settings, resources: ExitStack) -> Workload:
    """The extra wiring the harness's workers run: one recording consumer.

    PACIOLI_TEST_RECORDER_DELAY_SECONDS slows it down (per event), so that a test can
    kill the worker while it is in the middle of a message.
    """
    create_effects_table(engine)
    delay_seconds = float(os.environ.get(RECORDER_DELAY_VARIABLE, "0"))
    return Workload(consumers=[EffectRecorder(engine, "recorder", delay_seconds=delay_seconds)])


def broker_schema(queue_prefix: str) -> str:
    return f"dramatiq_{queue_prefix}"


def start_worker(
    database_url: str, log_path: Path, *, queue_prefix: str,
    wiring: Sequence[str] = (RECORDER_WIRING,), arguments: Sequence[str] = ("--threads", "2"),
    environment: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start `pacioli worker` on `database_url`; its output goes to `log_path`."""
    # The PostgreSQL broker unless `environment` names another (an inherited URL is dropped).
    inherited = {k: v for k, v in os.environ.items() if k != "PACIOLI_BROKER_URL"}
    env = {
        **inherited,
        "PACIOLI_DATABASE_URL": database_url,
        "PACIOLI_BROKER_QUEUE_PREFIX": queue_prefix,
        "PACIOLI_BROKER_SCHEMA": broker_schema(queue_prefix),
        "PACIOLI_RELAY_POLL_INTERVAL_SECONDS": "0.05",
        "PACIOLI_SCHEDULER_TICK_SECONDS": "0.2",
        # A killed worker's unacknowledged messages come back within seconds, not a minute.
        "PACIOLI_BROKER_DEAD_WORKER_TIMEOUT_SECONDS": "4",
        "PACIOLI_LOG_FORMAT": "text",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPOSITORY_ROOT),
                                                    os.environ.get("PYTHONPATH")])),
        **(environment or {}),
    }
    command = [PACIOLI, "worker", *arguments]
    for path in wiring:
        command += ["--with", path]
    with open(log_path, "ab") as log:
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                cwd=REPOSITORY_ROOT)


def wait_for_log(process: subprocess.Popen, log_path: Path, line: str,
                 timeout_seconds: float = 60) -> None:
    """Wait until the worker's output contains `line` (fail if it exits first)."""
    wait_until(lambda: line in log_path.read_text(errors="replace"), timeout_seconds,
               process=process, log_path=log_path)


def wait_until(condition: Callable[[], bool], timeout_seconds: float, *,
               process: subprocess.Popen | None = None, log_path: Path | None = None) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the worker exited with {process.returncode}:\n"
                                 + _tail(log_path))
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the worker:\n" + _tail(log_path))
        time.sleep(0.1)


def stop_worker(process: subprocess.Popen, timeout_seconds: float = 60) -> int:
    """SIGTERM the worker and wait for it to exit; return its exit status."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    return process.wait(timeout_seconds)


def kill_worker(process: subprocess.Popen) -> None:
    """SIGKILL the worker: no shutdown code runs, as in a crash."""
    if process.poll() is None:
        process.kill()
    process.wait(30)


def drop_broker_schema(database_url: str, queue_prefix: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url), isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(text(f'DROP SCHEMA IF EXISTS "{broker_schema(queue_prefix)}" CASCADE'))
    engine.dispose()


def _tail(log_path: Path | None, lines: int = 40) -> str:
    if log_path is None or not log_path.exists():
        return ""
    return "\n".join(log_path.read_text(errors="replace").splitlines()[-lines:])
