"""P2P payments through the HTTP API, from concurrent clients, with latencies.

    python bench/api_bench.py [--clients 64] [--seconds 10] [--users 100]
                              [--client-processes 2] [--server-workers 1]
                              [--database-url postgresql://...] [--smoke]

Starts `pacioli serve` (one process: uvicorn, the app's Ledger batching concurrent
requests) on a throwaway database, or with `--server-workers N` (N > 1) N server
processes (`uvicorn --factory --workers N pacioli.api.app:app_from_environment`, each
with its own Ledger writer), signs up and logs in `--users` users through the API,
credits each wallet from the platform's bank account (through the ledger's Python API,
as a bank deposit would), then runs `--clients` concurrent clients, split over
`--client-processes` processes (asyncio, one keep-alive HTTP/1.1 connection each), each
posting P2P payments of 0.01 USD between random users with a fresh Idempotency-Key, for
`--seconds`. It prints requests/s,
p50/p99 latency, errors, the CPU the server and the clients used, and checks the ledger's
invariants and that every acknowledged payment is in the database once. The last line is
`{"bench": "api_p2p", "rps": …, "p50_ms": …, "p99_ms": …, "errors": …}`.

Target (issue 3): Google Pay's average write rate, 2,315 transfers/s, with p99 < 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server  # noqa: E402
from sqlalchemy import text  # noqa: E402

from pacioli.ledger import Ledger, credit, debit  # noqa: E402
from pacioli.ledger.service.reconcile import check_ledger  # noqa: E402
from pacioli.ledger.storage.database import make_engine  # noqa: E402
from pacioli.ledger.storage.migrate import upgrade  # noqa: E402
from pacioli.payments.chart import Chart, Purpose  # noqa: E402

TARGET_RPS = 2315
TARGET_P99_MS = 100
PASSWORD = "bench password 1234"
FUNDS_MINOR = 10**12
SMOKE = {"seconds": 2, "users": 20, "clients": 16}


def parse_options(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--server-workers", type=int, default=1,
                        help="server processes; above 1, uvicorn --workers with the app factory")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds with few users: does it run, is nothing broken?")
    options = parser.parse_args(argv)
    if options.smoke:
        for name, value in SMOKE.items():
            setattr(options, name, value)
    return options


def main(argv=None) -> int:
    options = parse_options(argv)
    run_id = uuid.uuid4().hex[:8]
    with bench_server.open_server(options.database_url) as server:
        name = f"pacioli_api_bench_{run_id}"
        url = bench_server.create_database(server.admin_url, name)
        try:
            summary = run(options, url)
        finally:
            if not server.embedded:
                bench_server.drop_database(server.admin_url, name)
    print(json.dumps(summary))
    return 1 if summary["invariant_breaks"] or summary["unacknowledged"] else 0


def run(options: argparse.Namespace, url: str) -> dict:
    upgrade(url)
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = _start_server(url, port, options.server_workers)
    try:
        _wait_until_up(base_url)
        _progress(f"signing up {options.users} users")
        users = _sign_up_users(base_url, options.users)
        _fund(url, [u["id"] for u in users])
        server_cpu_before = _cpu_seconds(server.pid)
        database_cpu_before = _database_cpu_seconds(url)
        _progress(f"{options.clients} clients in {options.client_processes} processes "
                  f"for {options.seconds} s")
        results = _load(base_url, users, options)
        server_cpu = _cpu_seconds(server.pid) - server_cpu_before
        database_cpu = _database_cpu(url, database_cpu_before)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    latencies = sorted(ms for r in results for ms in r["latencies_ms"])
    acknowledged = [pid for r in results for pid in r["acknowledged"]]
    errors = sum(r["errors"] for r in results)
    client_cpu = sum(r["cpu_seconds"] for r in results)
    breaks, unacknowledged = _check(url, acknowledged)
    rps = len(latencies) / options.seconds
    p50 = _percentile(latencies, 50)
    p99 = _percentile(latencies, 99)
    print(f"\nP2P payments through HTTP: {options.clients} clients, {options.users} users, "
          f"{options.seconds} s, {options.server_workers} server process(es)")
    print(f"  requests/s     {rps:10.1f}   (target {TARGET_RPS})")
    print(f"  p50 / p99 ms   {p50:10.2f} / {p99:.2f}   (target p99 < {TARGET_P99_MS})")
    print(f"  errors         {errors:10d}   {_error_kinds(results)}")
    print(f"  server cpu     {server_cpu / options.seconds:10.2f} cores")
    print(f"  client cpu     {client_cpu / options.seconds:10.2f} cores")
    if database_cpu is not None:
        print(f"  database cpu   {database_cpu / options.seconds:10.2f} cores   "
              "(the bench database's backends)")
    if rps:
        per_request = (server_cpu + (database_cpu or 0)) / (rps * options.seconds) * 1000
        print(f"  cpu / request  {per_request:10.2f} ms   (server + database)")
    print(f"  invariant breaks {sum(breaks.values())}, acknowledged but missing "
          f"{unacknowledged}")
    return {
        "bench": "api_p2p", "rps": round(rps, 1), "p50_ms": round(p50, 2),
        "p99_ms": round(p99, 2), "errors": errors, "clients": options.clients,
        "users": options.users, "seconds": options.seconds,
        "server_workers": options.server_workers,
        "server_cpu_cores": round(server_cpu / options.seconds, 2),
        "client_cpu_cores": round(client_cpu / options.seconds, 2),
        "database_cpu_cores": (None if database_cpu is None
                               else round(database_cpu / options.seconds, 2)),
        "invariant_breaks": sum(breaks.values()), "unacknowledged": unacknowledged,
    }


# The server.


def _start_server(url: str, port: int, workers: int = 1) -> subprocess.Popen:
    env = {**os.environ, "PACIOLI_DATABASE_URL": url, "PACIOLI_PORT": str(port),
           "PACIOLI_LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-c", "from pacioli.cli.main import app; app()", "serve"]
    if workers > 1:
        command = [sys.executable, "-m", "uvicorn", "--factory",
                   "pacioli.api.app:app_from_environment", "--host", "127.0.0.1",
                   "--port", str(port), "--workers", str(workers), "--no-access-log",
                   "--log-level", "warning"]
    return subprocess.Popen(command, env=env,
                            stdout=subprocess.DEVNULL)


def _wait_until_up(base_url: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not come up")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Set-up.


def _sign_up_users(base_url: str, count: int) -> list[dict]:
    users = []
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for index in range(count):
            email = f"bench-{index}-{uuid.uuid4().hex[:6]}@example.com"
            created = client.post("/v1/users", json={"email": email, "password": PASSWORD},
                                  headers={"Idempotency-Key": uuid.uuid4().hex})
            created.raise_for_status()
            session = client.post("/v1/sessions", json={"email": email, "password": PASSWORD})
            session.raise_for_status()
            users.append({"id": created.json()["id"], "token": session.json()["token"]})
    return users


def _fund(url: str, user_ids: list[str]) -> None:
    """Credit every wallet from the platform's bank account (a deposit, as the demo does)."""
    engine = make_engine(url)
    try:
        with Ledger(engine, client_id="api-bench") as ledger:
            chart = Chart(engine, ledger)
            bank = chart.platform(Purpose.BANK_SETTLEMENT, "USD")
            for user_id in user_ids:
                ledger.transfer(
                    [debit(bank, FUNDS_MINOR), credit(chart.wallet(uuid.UUID(user_id), "USD"),
                                                      FUNDS_MINOR)],
                    idempotency_key=f"fund:{user_id}",
                )
    finally:
        engine.dispose()


# The load.


def _load(base_url: str, users: list[dict], options: argparse.Namespace) -> list[dict]:
    processes = max(1, min(options.client_processes, options.clients))
    shares = [options.clients // processes + (i < options.clients % processes)
              for i in range(processes)]
    start_at = time.time() + 1.0
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return pool.starmap(
            _client_process,
            [(base_url, users, share, start_at, options.seconds, i) for i, share in
             enumerate(shares)],
        )


def _client_process(base_url, users, clients, start_at, seconds, seed) -> dict:
    cpu_before = time.process_time()
    result = asyncio.run(_clients(base_url, users, clients, start_at, seconds, seed))
    result["cpu_seconds"] = time.process_time() - cpu_before
    return result


async def _clients(base_url, users, clients, start_at, seconds, seed) -> dict:
    result = {"latencies_ms": [], "acknowledged": [], "errors": 0, "error_kinds": {}}
    host, port = httpx.URL(base_url).host, httpx.URL(base_url).port
    connections = [await KeepAliveConnection.open(host, port) for _ in range(clients)]
    try:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        ends_at = time.perf_counter() + seconds
        rng = random.Random(seed)
        await asyncio.gather(*(
            _one_client(connection, users, rng, ends_at, result) for connection in connections
        ))
    finally:
        for connection in connections:
            connection.close()
    return result


async def _one_client(connection, users, rng, ends_at, result) -> None:
    while time.perf_counter() < ends_at:
        payer, payee = rng.sample(users, 2)
        body = b'{"to":{"user_id":"%s"},"amount":"0.01","currency":"USD"}' % (
            payee["id"].encode())
        started = time.perf_counter()
        try:
            status, response = await connection.post(
                "/v1/p2p/payments", body,
                b"Authorization: Bearer %s\r\nIdempotency-Key: %s\r\n" % (
                    payer["token"].encode(), uuid.uuid4().hex.encode()),
            )
            kind = None if status == 201 else str(status)
        except (OSError, asyncio.IncompleteReadError, ValueError) as error:
            kind = type(error).__name__
            connection = await connection.reopen()
        finished = time.perf_counter()
        if kind is not None:
            result["errors"] += 1
            result["error_kinds"][kind] = result["error_kinds"].get(kind, 0) + 1
            continue
        if finished <= ends_at:
            result["latencies_ms"].append((finished - started) * 1000)
        result["acknowledged"].append(json.loads(response)["id"])


class KeepAliveConnection:
    """One keep-alive HTTP/1.1 connection that sends a request and reads its answer.

    The load generator shares the server's two cores, so it must cost little: httpx spent
    ~1.5 ms of CPU per request here (more than the server's own work), this ~0.05 ms. It
    speaks only what the bench needs: POST with a JSON body, answers with Content-Length.
    """

    def __init__(self, host: str, port: int, reader, writer) -> None:
        self._host, self._port = host, port
        self._reader, self._writer = reader, writer
        self._head = b"Host: %s:%d\r\nContent-Type: application/json\r\n" % (
            host.encode(), port)

    @classmethod
    async def open(cls, host: str, port: int) -> KeepAliveConnection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(host, port, reader, writer)

    async def reopen(self) -> KeepAliveConnection:
        self.close()
        return await KeepAliveConnection.open(self._host, self._port)

    async def post(self, path: str, body: bytes, headers: bytes) -> tuple[int, bytes]:
        """The status and body of the answer. Raises: OSError, IncompleteReadError,
        ValueError (an answer without Content-Length)."""
        self._writer.write(b"POST %s HTTP/1.1\r\n%s%sContent-Length: %d\r\n\r\n%s" % (
            path.encode(), self._head, headers, len(body), body))
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        start = head.lower().find(b"\r\ncontent-length:")
        if start < 0:
            raise ValueError("an answer without Content-Length")
        end = head.index(b"\r\n", start + 2)
        length = int(head[start + 17:end])
        return status, await self._reader.readexactly(length)

    def close(self) -> None:
        self._writer.close()


# Afterwards.


def _check(url: str, acknowledged: list[str]) -> tuple[dict[str, int], int]:
    engine = make_engine(url)
    try:
        report = check_ledger(engine)
        breaks = {c.name: c.break_count for c in report.checks if c.break_count}
        with engine.connect() as connection:
            stored = connection.execute(
                text("SELECT count(*) FROM p2p_payments WHERE status = 'succeeded'"
                     " AND id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": acknowledged},
            ).scalar()
    finally:
        engine.dispose()
    return breaks, len(set(acknowledged)) - stored


def _percentile(values: list[float], percent: int) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[percent - 1]


def _cpu_seconds(pid: int) -> float:
    """CPU time of the process and its live children (the server's worker processes)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    return own + sum(_cpu_seconds(int(child)) for child in children)


def _database_cpu_seconds(url: str) -> dict[int, float] | None:
    """CPU seconds so far of each backend connected to the bench's database, by pid; None
    when the server's processes are not on this machine (or not readable)."""
    engine = make_engine(url, pool_size=1)
    try:
        with engine.connect() as connection:
            pids = connection.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid <> pg_backend_pid()"
            )).scalars().all()
    finally:
        engine.dispose()
    seconds = {}
    for pid in pids:
        with contextlib.suppress(OSError):  # ended meanwhile, or not on this machine
            seconds[pid] = _cpu_seconds(pid)
    return seconds or None


def _database_cpu(url: str, before: dict[int, float] | None) -> float | None:
    """CPU the bench database's backends used since `before` (backends that ended in
    between are not counted: the server's pool keeps its connections)."""
    after = _database_cpu_seconds(url)
    if before is None or after is None:
        return None
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def _error_kinds(results: list[dict]) -> str:
    kinds: dict[str, int] = {}
    for result in results:
        for kind, count in result["error_kinds"].items():
            kinds[kind] = kinds.get(kind, 0) + count
    return ", ".join(f"{kind}: {count}" for kind, count in sorted(kinds.items()))


def _progress(message: str) -> None:
    print(f"[api_bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
