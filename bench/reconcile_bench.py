"""Statement reconciliation at scale: a million-line bank statement against the ledger.

    python bench/reconcile_bench.py [--lines 1000000] [--breaks-per-class 200]
                                    [--database-url postgresql://...] [--keep]

1. A throwaway database (an embedded PostgreSQL unless --database-url) is migrated, and
   a bank account and a counter account are opened through the ledger API.
2. The ledger gets `lines - breaks-per-class` posted transfers on the bank account, each
   with a `bank_ref` in its metadata, written **directly by SQL** (INSERT … SELECT from
   generate_series into `transfers` and `postings`, then the two accounts' balances set
   to the sums), not through `Ledger.transfer`. That is fair because this bench measures
   reconciliation, which only reads: writing a million transfers through the ledger's
   write path (about 2,000/s, see docs/benchmarks.md) would take ten minutes and measure
   the ledger bench again. The rows are what the write path would have written for these
   transfers (both legs, balanced, per-posting balances after, account sequence numbers,
   account totals), so `pacioli reconcile ledger` finds them consistent; what the
   reconciler reads (posted postings of the account in the period, joined to their
   transfers' metadata) is exactly as it would be.
3. A statement CSV of exactly `lines` lines (generic bank layout) is written with breaks
   planted in every class, `breaks-per-class` each: lines for references the ledger does
   not have (missing_in_ledger), ledger transfers left off (missing_in_statement), amounts
   off by one cent (amount_mismatch), lines in EUR (currency_mismatch) and repeated lines
   (duplicate).
4. The real CLI runs in a subprocess — `pacioli reconcile statement FILE --source bench
   --mapping bench.toml --json` — the same code path finance runs. Its wall time is
   measured, and its peak RSS read with getrusage(RUSAGE_CHILDREN) once it exited.

Progress goes to stderr; the last line of stdout is one JSON object. Exit status 1 when
a planted break was not found, something else was reported, or a target was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import bench_server  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402

from pacioli.ledger import Direction, Ledger  # noqa: E402
from pacioli.ledger.storage.database import make_engine  # noqa: E402
from pacioli.ledger.storage.migrate import upgrade  # noqa: E402

TARGET_SECONDS = 30.0
TARGET_PEAK_RSS_MIB = 2048.0
DAY = date(2026, 11, 23)
BREAK_KINDS = ("missing_in_ledger", "missing_in_statement", "amount_mismatch",
               "currency_mismatch", "duplicate")
MAPPING = """
name = "bench"
[columns]
reference = "Reference"
amount = "Amount"
currency = "Currency"
booked_on = "Date"
[amount]
unit = "major"
sign = "signed"
[ledger]
account_id = "{account_id}"
reference = "metadata:bank_ref"
sign = "debit_positive"
"""


def amount_of(i: int) -> int:
    """Transfer i's amount in cents: deterministic, 0.01 to 999.99 (SQL computes the same)."""
    return (i * 7919) % 99_999 + 1


def reference_of(i: int) -> str:
    return f"BR{i:09d}"


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    with bench_server.open_server(options.database_url) as server:
        name = f"pacioli_reconcile_bench_{uuid.uuid4().hex[:8]}"
        url = bench_server.create_database(server.admin_url, name)
        try:
            with tempfile.TemporaryDirectory(prefix="pacioli-reconcile-bench-") as scratch:
                result = run_bench(options, url, Path(scratch))
        finally:
            if not server.embedded and not options.keep:
                bench_server.drop_database(server.admin_url, name)
    passed = (result["breaks_found"] == result["breaks_planted"] and result["exact"]
              and result["seconds"] < TARGET_SECONDS
              and result["peak_rss_mib"] < TARGET_PEAK_RSS_MIB)
    verdict = ("exactly the planted ones" if result["exact"]
               else f"NOT the planted ones: {result['found_by_kind']}")
    print(f"{result['lines']:,} lines in {result['seconds']:.1f} s"
          f" ({result['lines_per_s']:,} lines/s), peak RSS {result['peak_rss_mib']:,.0f} MiB;"
          f" breaks planted {result['breaks_planted']:,}, found {result['breaks_found']:,}"
          f" ({verdict}); {result['ledger_entries']:,} ledger entries,"
          f" {result['matched_lines']:,} lines matched")
    print(json.dumps({key: result[key] for key in (
        "bench", "lines", "seconds", "peak_rss_mib", "breaks_planted", "breaks_found")}))
    return 0 if passed else 1


def parse_options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="statement lines")
    parser.add_argument("--breaks-per-class", type=int, default=200,
                        help="breaks planted of each of the five classes")
    parser.add_argument("--database-url", help="a PostgreSQL server whose role may create "
                        "databases; default: a fresh embedded server")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    options = parser.parse_args(argv)
    if options.lines < 10 * options.breaks_per_class:
        parser.error("--lines must be at least ten times --breaks-per-class")
    return options


def run_bench(options: argparse.Namespace, url: str, scratch: Path) -> dict:
    upgrade(url)
    engine = make_engine(url, pool_size=2)
    try:
        k = options.breaks_per_class
        transfers = options.lines - k
        bank, counter = open_accounts(engine)
        started = time.monotonic()
        _progress(f"writing {transfers:,} transfers into the ledger (SQL, not measured)")
        write_ledger(engine, bank, counter, transfers)
        _progress(f"ledger written in {time.monotonic() - started:.1f} s")
        statement = scratch / "statement.csv"
        planted = write_statement(statement, transfers, k)
        mapping = scratch / "bench.toml"
        mapping.write_text(MAPPING.format(account_id=bank), encoding="utf-8")
        _progress(f"reconciling {options.lines:,} lines through `pacioli reconcile statement`")
        seconds, run = run_cli(url, statement, mapping)
    finally:
        engine.dispose()
    found = run["summary"]["breaks_by_kind"]
    return {
        "bench": "reconcile", "lines": run["statement_lines"], "seconds": round(seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "breaks_planted": sum(planted.values()), "breaks_found": run["break_count"],
        "lines_per_s": round(run["statement_lines"] / seconds),
        "ledger_entries": run["ledger_entries"], "matched_lines": run["matched_lines"],
        "exact": found == planted, "found_by_kind": found,
    }


def open_accounts(engine: Engine) -> tuple[uuid.UUID, uuid.UUID]:
    with Ledger(engine, batching=False) as ledger:
        bank = ledger.open_account(asset_code="USD", normal_side=Direction.DEBIT,
                                   idempotency_key="bench:bank").value.id
        counter = ledger.open_account(asset_code="USD", normal_side=Direction.CREDIT,
                                      idempotency_key="bench:counter").value.id
    return bank, counter


def write_ledger(engine: Engine, bank: uuid.UUID, counter: uuid.UUID, count: int) -> None:
    """`count` transfers counter → bank on DAY, as the write path would store them."""
    day = datetime.combine(DAY, datetime.min.time(), tzinfo=UTC)
    params = {"count": count, "bank": bank, "counter": counter, "day": day,
              "step_us": max(1, int(86_000e6 / count))}
    amount = "((i::bigint * 7919) % 99999 + 1)"
    with engine.begin() as connection:
        connection.execute(text("SET LOCAL synchronous_commit = off"))
        connection.execute(text("""
            INSERT INTO transfers (id, kind, metadata, created_at)
            SELECT lpad(to_hex(i), 32, '0')::uuid, 'posted',
                   jsonb_build_object('bank_ref', 'BR' || lpad(i::text, 9, '0'), 'flow', 'bench'),
                   :day + i::bigint * :step_us * interval '1 microsecond'
            FROM generate_series(1, :count) AS i"""), params)
        for account, direction, leg in ((bank, "debit", 0), (counter, "credit", 1)):
            debits = f"sum({amount}) OVER (ORDER BY i)" if direction == "debit" else "0"
            credits = f"sum({amount}) OVER (ORDER BY i)" if direction == "credit" else "0"
            connection.execute(text(f"""
                INSERT INTO postings (account_id, account_seq, transfer_id, leg_index, asset_code,
                    direction, layer, amount_minor, debits_posted_after, credits_posted_after,
                    debits_pending_after, credits_pending_after, created_at)
                SELECT :account, i, lpad(to_hex(i), 32, '0')::uuid, {leg}, 'USD', '{direction}',
                       'posted', {amount}, {debits}, {credits}, 0, 0,
                       :day + i::bigint * :step_us * interval '1 microsecond'
                FROM generate_series(1, :count) AS i"""), {**params, "account": account})
        total = connection.execute(text(f"SELECT sum({amount}) FROM generate_series(1, :count)"
                                        " AS i"), params).scalar_one()
        connection.execute(text("""
            UPDATE accounts SET debits_posted = CASE WHEN id = :bank THEN :total ELSE 0 END,
                credits_posted = CASE WHEN id = :counter THEN :total ELSE 0 END,
                posting_count = :count WHERE id IN (:bank, :counter)"""),
                           {**params, "total": total})
        connection.execute(text("ANALYZE transfers"))
        connection.execute(text("ANALYZE postings"))


def write_statement(path: Path, transfers: int, k: int) -> dict[str, int]:
    """The statement: every transfer but k, k unknown, k repeated, k off by a cent, k in EUR.

    Rows are shuffled (a statement is rarely in the ledger's order). Returns the planted
    breaks by kind.
    """
    rng = random.Random(5)
    picked = rng.sample(range(1, transfers + 1), 4 * k)
    left_off, wrong_amount, wrong_currency, repeated = (set(picked[n * k:(n + 1) * k])
                                                        for n in range(4))
    day = DAY.isoformat()
    rows = []
    for i in range(1, transfers + 1):
        if i in left_off:
            continue
        cents = amount_of(i) + (1 if i in wrong_amount else 0)
        currency = "EUR" if i in wrong_currency else "USD"
        row = f"{day},TRANSFER,{reference_of(i)},{cents // 100}.{cents % 100:02d},{currency}\n"
        rows.append(row)
        if i in repeated:
            rows.append(row)
    rows.extend(f"{day},UNKNOWN,XX{n:09d},1.00,USD\n" for n in range(k))
    rng.shuffle(rows)
    with open(path, "w", encoding="utf-8") as file:
        file.write("Date,Description,Reference,Amount,Currency\n")
        file.writelines(rows)
    return dict.fromkeys(sorted(BREAK_KINDS), k)


def run_cli(url: str, statement: Path, mapping: Path) -> tuple[float, dict]:
    """Run `pacioli reconcile statement` in a subprocess; its wall time and its run."""
    env = {**os.environ, "PACIOLI_DATABASE_URL": url, "PACIOLI_LOG_FORMAT": "text"}
    command = [sys.executable, "-c", "from pacioli.cli.main import app; app()",
               "reconcile", "statement", str(statement), "--source", "bench",
               "--mapping", str(mapping), "--json", "--fail-on", "1000000000"]
    started = time.monotonic()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"pacioli reconcile statement exited {done.returncode}")
    return seconds, json.loads(done.stdout.strip().splitlines()[-1])["run"]


def _progress(message: str) -> None:
    print(f"[reconcile bench] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())

