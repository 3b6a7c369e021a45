"""Full checkouts through the HTTP API (a cart to a paid order), from concurrent clients.

    python bench/checkout_bench.py [--clients 32] [--seconds 20] [--products 200]
                                   [--hot-stock 40] [--client-processes 2]
                                   [--database-url postgresql://...] [--smoke]

Starts `pacioli serve` (one process) on a throwaway database (the embedded PostgreSQL, or
the server of `--database-url`), lists `--products` products of one supplier (plenty of
stock each) and one "hot" product with only `--hot-stock` units, signs up one shopper per
client through the API and funds their wallets (through the ledger's Python API, as a
bank deposit would). Then each client, for `--seconds`, adds one unit of a random product
(one time in ten the hot one) to its cart (`POST /v1/carts/{id}/items`) and checks the
cart out from its wallet (`POST /v1/checkout` with the total the add showed), again and
again. A checkout of the hot product after its stock ran out is answered `out_of_stock`
(expected; counted apart, the unit is removed from the cart).

It prints paid checkouts/s, the checkout request's p50/p99 latency and that of the whole
add-then-checkout cycle, the refusals, the CPU the server, the database server (when it
runs on this machine) and the clients used, per second and per paid checkout, and checks
afterwards that no unit was oversold (for every variant: sold = units of its paid orders,
and the hot product sold at most its stock, none reserved) and the ledger's invariants.
As a reference measured in the same run on the same server, it first runs P2P payments
(`POST /v1/p2p/payments`, the simplest money write) with the same clients for 5 s.

The last line is `{"bench": "checkout", "checkouts_per_s": …, "p99_ms": …, "oversold": …}`.
Target (issue 7, Myntra): p99 ≤ 350 ms while sustaining ≥ 200 checkouts/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import sys
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import api_bench  # noqa: E402
import bench_server  # noqa: E402
from sqlalchemy import text  # noqa: E402

from pacioli.commerce import catalog  # noqa: E402
from pacioli.ledger.service.reconcile import check_ledger  # noqa: E402
from pacioli.ledger.storage.database import make_engine  # noqa: E402
from pacioli.ledger.storage.migrate import upgrade  # noqa: E402

TARGET_CHECKOUTS_PER_S = 200
TARGET_P99_MS = 350
PRICE = "19.99"
STOCK = 10**9
HOT_SHARE = 0.1
REFERENCE_SECONDS = 5
ADDRESS = {"name": "Bench Shopper", "line1": "1 Load Street", "city": "Bengaluru",
           "postal_code": "560001", "country": "IN"}
SMOKE = {"seconds": 3, "clients": 8, "products": 10, "hot_stock": 5}


def parse_options(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--hot-stock", type=int, default=40)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--smoke", action="store_true",
                        help="a few seconds with few clients: does it run, is nothing broken?")
    options = parser.parse_args(argv)
    if options.smoke:
        for name, value in SMOKE.items():
            setattr(options, name, value)
    return options


def main(argv=None) -> int:
    options = parse_options(argv)
    with bench_server.open_server(options.database_url) as server:
        name = f"pacioli_checkout_bench_{uuid.uuid4().hex[:8]}"
        url = bench_server.create_database(server.admin_url, name)
        try:
            summary = run(options, url)
        finally:
            if not server.embedded:
                bench_server.drop_database(server.admin_url, name)
    print(json.dumps(summary))
    return 1 if summary["oversold"] or summary["invariant_breaks"] else 0


def run(options: argparse.Namespace, url: str) -> dict:
    upgrade(url)
    port = api_bench._free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = _start_server(url, port)
    try:
        api_bench._wait_until_up(base_url)
        variants, hot = _list_products(url, options.products, options.hot_stock)
        _progress(f"signing up {options.clients} shoppers")
        users = api_bench._sign_up_users(base_url, options.clients)
        api_bench._fund(url, [u["id"] for u in users])
        for user in users:
            user["cart_id"] = httpx.get(f"{base_url}/v1/carts/current", headers=_auth(user),
                                        timeout=30).json()["id"]
        _progress(f"reference: P2P payments, {options.clients} clients, {REFERENCE_SECONDS} s")
        reference = _reference(base_url, users, options)
        postmaster = _postmaster_pid(url)
        server_cpu_before = api_bench._cpu_seconds(server.pid)
        db_cpu_before = _db_cpu_seconds(postmaster)
        _progress(f"checkouts: {options.clients} clients for {options.seconds} s")
        results = _load(base_url, users, variants, hot, options)
        server_cpu = api_bench._cpu_seconds(server.pid) - server_cpu_before
        db_cpu = _db_cpu_seconds(postmaster) - db_cpu_before
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    return _summary(options, url, results, reference, hot, server_cpu, db_cpu)


def _summary(options, url, results, reference, hot, server_cpu, db_cpu) -> dict:
    checkout_ms = sorted(ms for r in results for ms in r["checkout_ms"])
    cycle_ms = sorted(ms for r in results for ms in r["cycle_ms"])
    counts = {key: sum(r[key] for r in results) for key in ("out_of_stock", "errors")}
    kinds: dict[str, int] = {}
    for r in results:
        for kind, n in r["error_kinds"].items():
            kinds[kind] = kinds.get(kind, 0) + n
    oversold, breaks = _check(url, hot, options.hot_stock)
    rate = len(checkout_ms) / options.seconds
    p50, p99 = api_bench._percentile(checkout_ms, 50), api_bench._percentile(checkout_ms, 99)
    cycle_p99 = api_bench._percentile(cycle_ms, 99)
    client_cpu = sum(r["cpu_seconds"] for r in results)
    paid = max(1, len(checkout_ms))
    print(f"\nCheckouts through HTTP: {options.clients} clients, {options.products} products"
          f" (+1 with {options.hot_stock} units), {options.seconds} s")
    print(f"  paid checkouts/s   {rate:9.1f}   (target {TARGET_CHECKOUTS_PER_S})")
    print(f"  checkout p50 / p99 {p50:9.1f} / {p99:.1f} ms   (target p99 <= {TARGET_P99_MS})")
    print(f"  add + checkout p99 {cycle_p99:9.1f} ms")
    print(f"  out_of_stock       {counts['out_of_stock']:9d}   (the hot product ran out)")
    print(f"  errors             {counts['errors']:9d}   {kinds}")
    print(f"  server cpu         {server_cpu / options.seconds:9.2f} cores")
    print(f"  server cpu / paid  {1000 * server_cpu / paid:9.1f} ms   (add + checkout)")
    if db_cpu is not None:
        print(f"  database cpu       {db_cpu / options.seconds:9.2f} cores,"
              f" {1000 * db_cpu / paid:.1f} ms per paid checkout")
    print(f"  client cpu         {client_cpu / options.seconds:9.2f} cores")
    print(f"  reference: P2P payments/s {reference['rps']:.1f}, p99 {reference['p99_ms']:.1f} ms"
          " (same clients, same server)")
    print(f"  oversold units {oversold}, ledger invariant breaks {breaks}")
    return {
        "bench": "checkout", "checkouts_per_s": round(rate, 1), "p99_ms": round(p99, 1),
        "oversold": oversold, "p50_ms": round(p50, 1), "cycle_p99_ms": round(cycle_p99, 1),
        "out_of_stock": counts["out_of_stock"], "errors": counts["errors"],
        "clients": options.clients, "seconds": options.seconds,
        "server_cpu_cores": round(server_cpu / options.seconds, 2),
        "server_cpu_ms_per_checkout": round(1000 * server_cpu / paid, 1),
        "db_cpu_ms_per_checkout": None if db_cpu is None else round(1000 * db_cpu / paid, 1),
        "client_cpu_cores": round(client_cpu / options.seconds, 2),
        "reference_p2p_rps": round(reference["rps"], 1),
        "reference_p2p_p99_ms": round(reference["p99_ms"], 1),
        "invariant_breaks": breaks, "error_kinds": kinds,
    }


# Set-up.


def _start_server(url: str, port: int):
    # Cheap password hashing: signing the shoppers up is set-up, not what is measured.
    os.environ.update(PACIOLI_PASSWORD_HASH_TIME_COST="1",
                      PACIOLI_PASSWORD_HASH_MEMORY_KIB="1024",
                      PACIOLI_PASSWORD_HASH_PARALLELISM="1")
    return api_bench._start_server(url, port)


def _list_products(url: str, count: int, hot_stock: int) -> tuple[list[str], str]:
    """One supplier's products (as the catalog service lists them); (variant ids, hot)."""
    engine = make_engine(url)
    try:
        supplier_id = uuid.uuid4()
        catalog.register_supplier(engine, supplier_id, low_stock_threshold=0)
        variants = []
        for index in range(count + 1):
            stock = hot_stock if index == count else STOCK
            made, _ = catalog.create_product(engine, supplier_id, catalog.ProductDraft(
                name=f"Kurta {index}", currency="USD",
                variants=(catalog.VariantDraft(sku=f"K-{index}", price_minor=1999,
                                               stock_available=stock),),
            ), idempotency_key=f"bench-{index}")
            variants.append(str(made.variants[0].id))
    finally:
        engine.dispose()
    return variants[:-1], variants[-1]


def _postmaster_pid(url: str) -> int | None:
    """The PostgreSQL server's process id, when it runs on this machine (else None)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            data_directory = connection.execute(text("SHOW data_directory")).scalar_one()
        return int(Path(data_directory, "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None  # Another machine's server, or not readable: no database CPU figure.
    finally:
        engine.dispose()


def _db_cpu_seconds(postmaster: int | None) -> float | None:
    """CPU time of the database server: the postmaster, its live backends and the ones
    it has reaped (cutime, cstime). On a server other databases share it counts theirs too;
    the embedded server the bench starts serves only the bench."""
    if postmaster is None:
        return None
    fields = _stat_fields(postmaster)
    if fields is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = sum(int(field) for field in fields[11:15]) / tick
    try:
        children = Path(f"/proc/{postmaster}/task/{postmaster}/children").read_text().split()
    except OSError:
        children = []
    for child in children:
        # A backend that exits meanwhile is counted in the postmaster's cutime next time.
        child_fields = _stat_fields(int(child))
        if child_fields is not None:
            total += (int(child_fields[11]) + int(child_fields[12])) / tick
    return total


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (utime is [11], cutime [13]); None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None


def _auth(user: dict, key: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {user['token']}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


# The reference: P2P payments with the same clients.


def _reference(base_url: str, users: list[dict], options) -> dict:
    reference = argparse.Namespace(clients=options.clients, seconds=REFERENCE_SECONDS,
                                   client_processes=options.client_processes)
    results = api_bench._load(base_url, users, reference)
    latencies = sorted(ms for r in results for ms in r["latencies_ms"])
    return {"rps": len(latencies) / REFERENCE_SECONDS,
            "p99_ms": api_bench._percentile(latencies, 99)}


# The load.


def _load(base_url, users, variants, hot, options) -> list[dict]:
    processes = max(1, min(options.client_processes, len(users)))
    shares = [users[i::processes] for i in range(processes)]
    start_at = time.time() + 1.0
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        return pool.starmap(_client_process, [
            (base_url, share, variants, hot, start_at, options.seconds, seed)
            for seed, share in enumerate(shares)
        ])


def _client_process(base_url, users, variants, hot, start_at, seconds, seed) -> dict:
    cpu_before = time.process_time()
    result = asyncio.run(_clients(base_url, users, variants, hot, start_at, seconds, seed))
    result["cpu_seconds"] = time.process_time() - cpu_before
    return result


async def _clients(base_url, users, variants, hot, start_at, seconds, seed) -> dict:
    result = {"checkout_ms": [], "cycle_ms": [], "out_of_stock": 0, "errors": 0,
              "error_kinds": {}}
    limits = httpx.Limits(max_connections=len(users), max_keepalive_connections=len(users))
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as client:
        await asyncio.sleep(max(0.0, start_at - time.time()))
        ends_at = time.perf_counter() + seconds
        rng = random.Random(seed)
        await asyncio.gather(*(
            _one_shopper(client, user, variants, hot, rng, ends_at, result) for user in users
        ))
    return result


async def _one_shopper(client, user, variants, hot, rng, ends_at, result) -> None:
    cart_path = f"/v1/carts/{user['cart_id']}"
    while time.perf_counter() < ends_at:
        variant = hot if rng.random() < HOT_SHARE else rng.choice(variants)
        started = time.perf_counter()
        added = await client.post(f"{cart_path}/items", headers=_auth(user),
                                  json={"variant_id": variant, "quantity": 1})
        if added.status_code != 201:
            if not await _cleared(client, user, cart_path, added, result):
                _error(result, f"add {added.status_code} {_code(added)}")
            continue
        cart = added.json()
        if cart["unavailable_line_ids"]:
            # The hot product's last units went to another shopper between the add's
            # stock check and its view (a total of 0.00 cannot be checked out): as if
            # the checkout had said out_of_stock.
            await _clear(client, user, cart_path, result)
            continue
        body = {"cart_id": cart["id"], "cart_version": cart["version"],
                "expected_total": {"amount": cart["totals"]["total"], "currency": "USD"},
                "payment": {"method": "wallet"}, "shipping_address": ADDRESS}
        checkout_started = time.perf_counter()
        response = await client.post("/v1/checkout", json=body,
                                     headers=_auth(user, uuid.uuid4().hex))
        finished = time.perf_counter()
        if response.status_code == 201 and response.json()["status"] == "paid":
            if finished <= ends_at:
                result["checkout_ms"].append((finished - checkout_started) * 1000)
                result["cycle_ms"].append((finished - started) * 1000)
            continue
        if not await _cleared(client, user, cart_path, response, result):
            _error(result, f"checkout {response.status_code} {_code(response)}")


async def _cleared(client, user, cart_path, response, result) -> bool:
    """An out-of-stock answer: count it and empty the cart of what cannot be bought."""
    if _code(response) != "out_of_stock":
        return False
    await _clear(client, user, cart_path, result)
    return True


async def _clear(client, user, cart_path, result) -> None:
    """Count an out_of_stock and empty the cart of what cannot be bought."""
    result["out_of_stock"] += 1
    cart = (await client.get(cart_path, headers=_auth(user))).json()
    for line in cart["items"]:
        # A removal names the version seen (an unversioned one is refused, 422, and
        # left the shopper stuck with a line that can no longer be bought).
        removed = await client.delete(f"{cart_path}/items/{line['id']}",
                                      params={"version": cart["version"]}, headers=_auth(user))
        if removed.status_code != 200:
            _error(result, f"remove {removed.status_code} {_code(removed)}")
            return
        cart = removed.json()


def _code(response: httpx.Response) -> str | None:
    try:
        return response.json().get("code")
    except ValueError:
        return None


def _error(result: dict, kind: str) -> None:
    result["errors"] += 1
    result["error_kinds"][kind] = result["error_kinds"].get(kind, 0) + 1


# Afterwards.


def _check(url: str, hot: str, hot_stock: int) -> tuple[int, int]:
    """(units oversold, ledger invariant breaks)."""
    engine = make_engine(url)
    try:
        report = check_ledger(engine)
        with engine.connect() as connection:
            mismatched = connection.execute(text("""
                SELECT coalesce(sum(abs(v.stock_sold - coalesce(p.units, 0))), 0)
                FROM commerce_variants v
                LEFT JOIN (SELECT l.variant_id, sum(l.quantity) AS units
                           FROM commerce_order_lines l JOIN commerce_orders o
                             ON o.id = l.order_id
                           WHERE o.status NOT IN ('payment_failed', 'cancelled')
                           GROUP BY l.variant_id) p ON p.variant_id = v.id
            """)).scalar_one()
            hot_row = connection.execute(
                text("SELECT stock_available, stock_reserved, stock_sold FROM commerce_variants"
                     " WHERE id = CAST(:id AS uuid)"), {"id": hot},
            ).one()
    finally:
        engine.dispose()
    beyond = max(0, int(hot_row.stock_sold) - hot_stock)
    lost = hot_stock - int(hot_row.stock_available + hot_row.stock_reserved + hot_row.stock_sold)
    breaks = sum(c.break_count for c in report.checks)
    return int(mismatched) + beyond + abs(lost), breaks


def _progress(message: str) -> None:
    print(f"[checkout_bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr,
          flush=True)


if __name__ == "__main__":
    sys.exit(main())
