"""Ledger throughput against pgbench on the same PostgreSQL, with invariants checked after.

    python bench/ledger_bench.py [--workers 32] [--seconds 10] [--accounts 10000]
                                 [--database-url postgresql://...] [--smoke]

Three workloads post two-leg transfers through the `pacioli.ledger` Python API from N
threads: uniform (random pairs of wallets), hot (every transfer credits one merchant) and
replay (acknowledged requests sent again with their idempotency keys). pgbench's
tpcb-like script, with the same client count on the same server, is the reference.
Progress goes to stderr; stdout is a table whose last line is one JSON object.
The exit status is 1 when an invariant broke or a call raised something other than a
domain error, else 0 (throughput targets never fail it).
See docs/benchmarks.md for how to read the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

# Run as `python bench/ledger_bench.py`, so the bench's own modules sit next to this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server  # noqa: E402
import ledger_invariants  # noqa: E402
import ledger_workloads as workloads  # noqa: E402
import pgbench_reference  # noqa: E402
from sqlalchemy import Engine  # noqa: E402

from pacioli.gc_settings import apply_service_gc_settings  # noqa: E402
from pacioli.ledger import Ledger  # noqa: E402
from pacioli.ledger.storage.database import make_engine  # noqa: E402
from pacioli.ledger.storage.migrate import upgrade  # noqa: E402

TARGET_UNIFORM_TO_PGBENCH = 1.0
TARGET_HOT_TO_UNIFORM = 0.5
WARMUP_SECONDS_MAX = 1.0
WARMUP_FRACTION = 0.1
SMOKE = {"seconds": 1, "accounts": 200, "pgbench_scale": 1}


@dataclass(frozen=True)
class BenchOptions:
    workers: int
    seconds: int
    accounts: int
    database_url: str | None
    pgbench: str | None
    pgbench_scale: int
    keep_databases: bool

    @property
    def warmup_seconds(self) -> float:
        return min(WARMUP_SECONDS_MAX, self.seconds * WARMUP_FRACTION)


@dataclass(frozen=True)
class BenchReport:
    options: BenchOptions
    server_description: str
    setup_seconds: float
    pgbench: pgbench_reference.PgbenchResult
    results: dict[str, workloads.WorkloadResult]
    checker: str  # what checked the ledger's invariants
    breaks: dict[str, int]  # rows breaking each invariant, by check name

    @property
    def invariant_breaks(self) -> int:
        return sum(self.breaks.values())


def parse_options(argv: list[str] | None = None) -> BenchOptions:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=_positive, default=32,
                        help="concurrent ledger threads and pgbench clients (default 32)")
    parser.add_argument("--seconds", type=_positive, default=10,
                        help="measured seconds per workload and for pgbench (default 10)")
    parser.add_argument("--accounts", type=_positive, default=10_000,
                        help="user accounts for the uniform workload (default 10000)")
    parser.add_argument("--database-url",
                        help="a PostgreSQL server to use (its role must be able to create "
                             "databases); default: a fresh embedded server in a temp dir")
    parser.add_argument("--pgbench", help="the pgbench executable (default: the server's own)")
    parser.add_argument("--pgbench-scale", type=_positive, default=10,
                        help="pgbench -i scale factor (default 10)")
    parser.add_argument("--keep-databases", action="store_true",
                        help="keep the bench's databases on an external server")
    parser.add_argument("--smoke", action="store_true",
                        help="a quick check: --seconds 1 --accounts 200 --pgbench-scale 1")
    arguments = parser.parse_args(argv)
    if arguments.accounts < 2:
        parser.error("--accounts must be at least 2 (a transfer needs two wallets)")
    if arguments.smoke:
        for name, value in SMOKE.items():
            setattr(arguments, name, value)
    return BenchOptions(
        workers=arguments.workers,
        seconds=arguments.seconds,
        accounts=arguments.accounts,
        database_url=arguments.database_url,
        pgbench=arguments.pgbench,
        pgbench_scale=arguments.pgbench_scale,
        keep_databases=arguments.keep_databases,
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    run_id = uuid.uuid4().hex[:8]
    with bench_server.open_server(options.database_url) as server:
        names = (f"pacioli_bench_{run_id}", f"pacioli_pgbench_{run_id}")
        try:
            ledger_url, pgbench_url = (
                bench_server.create_database(server.admin_url, name) for name in names
            )
            report = run_bench(options, server, ledger_url, pgbench_url, run_id)
        finally:
            if not server.embedded and not options.keep_databases:
                for name in names:
                    bench_server.drop_database(server.admin_url, name)
    print(render_table(report))
    print(json.dumps(summary(report)))
    errors = sum(r.tally.errors.total() for r in report.results.values())
    return 1 if report.invariant_breaks or errors else 0


def run_bench(
    options: BenchOptions,
    server: bench_server.Server,
    ledger_url: str,
    pgbench_url: str,
    run_id: str,
) -> BenchReport:
    major = bench_server.server_version_major(server.admin_url)
    pgbench = pgbench_reference.find_pgbench(major, server.bin_dir, options.pgbench)
    kind = "embedded" if server.embedded else "external"
    _progress(f"PostgreSQL {major} ({kind}); pgbench at {pgbench}")
    _progress(f"pgbench -i -s {options.pgbench_scale}")
    pgbench_reference.initialise(pgbench, pgbench_url, scale=options.pgbench_scale)
    upgrade(ledger_url)
    engine = make_engine(ledger_url, pool_size=options.workers + 4)
    try:
        with Ledger(engine, client_id="bench") as ledger:
            setup_started = time.perf_counter()
            accounts, setup_transfers = _set_up(ledger, options, run_id)
            # pgbench -i vacuums and analyzes the tables it loaded; the ledger's set-up gets
            # the same, so autovacuum does not catch up on it during the measured window.
            bench_server.vacuum_analyze(ledger_url)
            setup_seconds = time.perf_counter() - setup_started
            # As `pacioli serve` and `pacioli worker` run: see pacioli/gc_settings.py.
            apply_service_gc_settings()
            _progress(f"pgbench tpcb-like -c {options.workers} -T {options.seconds}")
            reference = pgbench_reference.run_tpcb_like(
                pgbench, pgbench_url, clients=options.workers, seconds=options.seconds
            )
            results = _run_workloads(ledger, accounts, options, run_id)
        checker, breaks = _check(engine, results, expected_total=setup_transfers)
    finally:
        engine.dispose()
    return BenchReport(
        options, f"PostgreSQL {major} ({kind})", setup_seconds, reference, results,
        checker, breaks,
    )


def _set_up(
    ledger: Ledger, options: BenchOptions, run_id: str
) -> tuple[workloads.BenchAccounts, int]:
    """Open and fund the accounts; return them and the number of funding transfers."""
    _progress(f"opening {options.accounts} accounts")
    accounts = workloads.open_accounts(
        ledger, user_count=options.accounts, workers=options.workers, key_prefix=run_id
    )
    _progress(f"funding {options.accounts} accounts")
    funded = workloads.fund_accounts(
        ledger, accounts, workers=options.workers, key_prefix=run_id
    )
    return accounts, funded


def _run_workloads(
    ledger: Ledger, accounts: workloads.BenchAccounts, options: BenchOptions, run_id: str
) -> dict[str, workloads.WorkloadResult]:
    results: dict[str, workloads.WorkloadResult] = {}
    plan = {
        "uniform": lambda: workloads.uniform_requests(accounts),
        "hot": lambda: workloads.hot_requests(accounts),
        "replay": lambda: workloads.replay_requests(
            results["uniform"].tally.acknowledged + results["hot"].tally.acknowledged
        ),
    }
    for name, make_requests in plan.items():
        _progress(f"{name}: {options.workers} workers for {options.seconds} s")
        results[name] = workloads.run_workload(
            ledger, name, make_requests(),
            workers=options.workers, seconds=options.seconds,
            warmup_seconds=options.warmup_seconds, key_prefix=run_id,
        )
    return results


def _check(
    engine: Engine, results: dict[str, workloads.WorkloadResult], *, expected_total: int
) -> tuple[str, dict[str, int]]:
    """The ledger's invariants, plus the bench's own: acknowledged means stored, once."""
    _progress("checking invariants")
    acknowledged = [a.transfer_id for r in results.values() for a in r.tally.acknowledged]
    checker, breaks = ledger_invariants.count_breaks(engine)
    breaks.update(ledger_invariants.count_acknowledgement_breaks(
        engine, acknowledged,
        expected_total=expected_total + len(acknowledged),
        # An unanswered request, or one that raised, may or may not have been stored.
        unresolved=sum(r.tally.unresolved + r.tally.errors.total() for r in results.values()),
    ))
    breaks["replays_with_wrong_result"] = sum(r.tally.replay_mismatches for r in results.values())
    return checker, breaks


# Reporting.


def render_table(report: BenchReport) -> str:
    options, reference = report.options, report.pgbench
    lines = [
        "",
        f"Pacioli ledger bench: {report.server_description}, {options.workers} workers,"
        f" {options.seconds} s per workload, {options.accounts} accounts"
        f" (set up in {report.setup_seconds:.1f} s)",
        "",
        f"{'workload':<10}{'transfers/s':>13}{'vs pgbench':>12}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'cmds/txn':>10}{'txn ms':>8}{'db retries':>12}{'unavailable':>13}{'refused':>9}"
        f"{'unanswered':>12}{'errors':>8}",
        f"{'pgbench':<10}{reference.tps:>13.1f}{1.0:>11.2f}x"
        f"   (tpcb-like, latency avg {_ms(reference.latency_avg_ms)} ms, scale"
        f" {options.pgbench_scale})",
    ]
    for name, result in report.results.items():
        tally, writer = result.tally, result.writer
        lines.append(
            f"{name:<10}{result.tps:>13.1f}{_ratio(result.tps, reference.tps):>11.2f}x"
            f"{result.latency_ms(0.50):>9.2f}{result.latency_ms(0.99):>9.2f}"
            f"{_figure(writer.commands_per_transaction):>10}{_figure(writer.transaction_ms):>8}"
            f"{_figure(writer.retries, digits=0):>12}{tally.unavailable:>13}"
            f"{tally.rejected.total():>9}{tally.unresolved:>12}{tally.errors.total():>8}"
        )
    for name, result in report.results.items():
        for code, count in (result.tally.rejected + result.tally.errors).most_common():
            lines.append(f"  {name}: {count} x {code}")
    broken = [f"  {name}: {count}" for name, count in report.breaks.items() if count]
    lines += [
        "",
        f"invariant breaks: {report.invariant_breaks} in {len(report.breaks)} checks"
        f" ({report.checker}, plus the bench's acknowledgement and replay checks)",
        *broken,
        "",
    ]
    lines += [f"target {line}" for line in _targets(report)]
    return "\n".join(lines)


def _targets(report: BenchReport) -> list[str]:
    uniform_ratio, hot_to_uniform = _ratios(report)
    return [
        f"uniform >= {TARGET_UNIFORM_TO_PGBENCH:.1f}x pgbench: {uniform_ratio:.2f}x"
        f" {_verdict(uniform_ratio >= TARGET_UNIFORM_TO_PGBENCH)}",
        f"hot >= {TARGET_HOT_TO_UNIFORM:.1f}x uniform: {hot_to_uniform:.2f}x"
        f" {_verdict(hot_to_uniform >= TARGET_HOT_TO_UNIFORM)}",
        f"zero invariant breaks: {report.invariant_breaks}"
        f" {_verdict(report.invariant_breaks == 0)}",
    ]


def summary(report: BenchReport) -> dict:
    """The figures as one JSON-ready object (the required keys first, then details)."""
    uniform_ratio, hot_to_uniform = _ratios(report)
    figures: dict = {
        "bench": "ledger",
        "workers": report.options.workers,
        **{f"{name}_tps": round(r.tps, 1) for name, r in report.results.items()},
        "pgbench_tps": round(report.pgbench.tps, 1),
        "uniform_ratio": round(uniform_ratio, 3),
        "hot_to_uniform": round(hot_to_uniform, 3),
        "invariant_breaks": report.invariant_breaks,
        "seconds": report.options.seconds,
        "accounts": report.options.accounts,
    }
    for name, result in report.results.items():
        figures[f"{name}_p50_ms"] = _finite(result.latency_ms(0.50))
        figures[f"{name}_p99_ms"] = _finite(result.latency_ms(0.99))
        per_transaction = result.writer.commands_per_transaction
        figures[f"{name}_commands_per_transaction"] = (
            None if per_transaction is None else round(per_transaction, 1)
        )
    figures["unanswered"] = sum(r.tally.unresolved for r in report.results.values())
    figures["refused"] = sum(r.tally.rejected.total() for r in report.results.values())
    figures["errors"] = sum(r.tally.errors.total() for r in report.results.values())
    return figures


def _ratios(report: BenchReport) -> tuple[float, float]:
    uniform_tps = report.results["uniform"].tps
    return (
        _ratio(uniform_tps, report.pgbench.tps),
        _ratio(report.results["hot"].tps, uniform_tps),
    )


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 2)


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.2f}"


def _figure(value: float | None, *, digits: int = 1) -> str:
    return "?" if value is None else f"{value:.{digits}f}"


def _verdict(met: bool) -> str:
    return "met" if met else "NOT met"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not {text}")
    return value


def _progress(message: str) -> None:
    print(f"[ledger_bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
