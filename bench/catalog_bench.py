"""The catalog side of commerce: search latency, cart pricing latency and stock
reservations racing for one variant.

    python bench/catalog_bench.py [--products 20000] [--queries 200] [--carts 200]
                                  [--threads 16] [--units 2000]
                                  [--database-url postgresql://...] [--smoke]

Seeds `--products` products (3 variants each, words, brands, sizes, colours and prices
drawn at random) straight into the tables of a throwaway database, then measures:

- search: `--queries` searches of each kind (words; brand; size + colour; price range;
  all four at once), first page of 50, through `catalog_search.search_products`;
- pricing: `price_cart` of `--carts` carts of 10 lines each;
- reservations: `--threads` threads reserving 1 unit each of one variant holding
  `--units` units until none is left, each reservation its own transaction; it checks
  that exactly `--units` were reserved (never more: `oversold` must be 0).

The last line is `{"bench": "catalog", "search_p99_ms": …, "price_cart_p99_ms": …,
"reservations_per_s": …, "oversold": …}`.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_server  # noqa: E402
from sqlalchemy import insert  # noqa: E402

from pacioli.commerce import catalog_search, inventory  # noqa: E402
from pacioli.commerce import errors as ce  # noqa: E402
from pacioli.commerce.catalog_search import SearchFilters  # noqa: E402
from pacioli.commerce.catalog_tables import (  # noqa: E402
    commerce_cart_items,
    commerce_carts,
    commerce_products,
    commerce_suppliers,
    commerce_variants,
)
from pacioli.commerce.pricing import price_cart  # noqa: E402
from pacioli.ledger.domain.ids import uuid7  # noqa: E402
from pacioli.ledger.storage.database import make_engine  # noqa: E402
from pacioli.ledger.storage.migrate import upgrade  # noqa: E402

WORDS = ("cotton", "linen", "silk", "wool", "denim", "kurta", "saree", "shirt", "tee", "dress",
         "jacket", "scarf", "socks", "shoes", "sandals", "bag", "belt", "cap", "watch", "ring")
BRANDS = [f"brand{i}" for i in range(50)]
SIZES = ("XS", "S", "M", "L", "XL")
COLOURS = ("red", "blue", "green", "black", "white", "yellow", "grey", "pink")
SMOKE = {"products": 2000, "queries": 20, "carts": 20, "threads": 8, "units": 200}


def parse_options(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--products", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--carts", type=int, default=200)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--units", type=int, default=2000)
    parser.add_argument("--database-url", help="a PostgreSQL server whose role may create "
                        "databases; default: a fresh embedded server")
    parser.add_argument("--smoke", action="store_true", help="a small, quick run")
    options = parser.parse_args(argv)
    if options.smoke:
        for name, value in SMOKE.items():
            setattr(options, name, value)
    return options


def seed(engine, products: int, rng: random.Random) -> list:
    supplier_id = uuid7()
    now = datetime.now(UTC)
    variants = []
    with engine.begin() as connection:
        connection.execute(insert(commerce_suppliers).values(
            merchant_id=supplier_id, low_stock_threshold=0, created_at=now))
        for start in range(0, products, 1000):
            product_rows, variant_rows = [], []
            for _ in range(min(1000, products - start)):
                product_id = uuid7()
                product_rows.append({
                    "id": product_id, "supplier_id": supplier_id,
                    "name": " ".join(rng.sample(WORDS, 3)),
                    "description": " ".join(rng.sample(WORDS, 6)),
                    "brand": rng.choice(BRANDS), "category": "apparel", "currency": "USD",
                    "image_urls": [], "attributes": {}, "active": True,
                    "idempotency_key": str(product_id), "request_hash": "", "created_at": now,
                    "updated_at": now,
                })
                for index in range(3):
                    variant_rows.append({
                        "id": uuid7(), "product_id": product_id, "sku": f"V{index}",
                        "size": rng.choice(SIZES), "colour": rng.choice(COLOURS),
                        "price_minor": rng.randint(100, 20000), "stock_available": 1000,
                        "stock_reserved": 0, "stock_sold": 0, "active": True,
                        "created_at": now,
                    })
            connection.execute(insert(commerce_products), product_rows)
            connection.execute(insert(commerce_variants), variant_rows)
            variants += [row["id"] for row in variant_rows]
        connection.exec_driver_sql("ANALYZE")
    return variants


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def timed(run, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        run()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def bench_search(engine, queries: int, rng: random.Random) -> dict[str, list[float]]:
    def price_range() -> SearchFilters:
        low = rng.randint(100, 15000)
        return SearchFilters(currency="USD", min_price_minor=low, max_price_minor=low + 2000)

    kinds = {
        "words": lambda: SearchFilters(text=" ".join(rng.sample(WORDS, 2))),
        "brand": lambda: SearchFilters(brand=rng.choice(BRANDS)),
        "size_colour": lambda: SearchFilters(size=rng.choice(SIZES), colour=rng.choice(COLOURS)),
        "price_range": price_range,
        "all": lambda: SearchFilters(text=rng.choice(WORDS), brand=rng.choice(BRANDS),
                                     size=rng.choice(SIZES), colour=rng.choice(COLOURS),
                                     currency="USD", min_price_minor=100,
                                     max_price_minor=15000),
    }
    results = {}
    with engine.connect() as connection:
        for name, filters in kinds.items():
            results[name] = timed(lambda f=filters: catalog_search.search_products(
                connection, f(), limit=51), queries)
    return results


def bench_pricing(engine, variants: list, carts: int, rng: random.Random) -> list[float]:
    now = datetime.now(UTC)
    cart_ids = []
    with engine.begin() as connection:
        for _ in range(carts):
            cart_id = uuid7()
            connection.execute(insert(commerce_carts).values(
                id=cart_id, user_id=uuid7(), status="active", currency="USD", version=1,
                created_at=now, updated_at=now))
            connection.execute(insert(commerce_cart_items), [
                {"id": uuid7(), "cart_id": cart_id, "variant_id": variant, "quantity": 1,
                 "saved_for_later": False, "added_at": now}
                for variant in rng.sample(variants, 10)])
            cart_ids.append(cart_id)
    with engine.connect() as connection:
        pending = iter(cart_ids)
        return timed(lambda: price_cart(connection, next(pending), now=now), carts)


def bench_reservations(engine, variant, threads: int, units: int) -> tuple[float, int]:
    with engine.begin() as connection:
        connection.execute(commerce_variants.update().where(commerce_variants.c.id == variant)
                           .values(stock_available=units))
    reserved = [0] * threads
    expires_at = datetime.now(UTC) + timedelta(hours=1)

    def buyer(index: int) -> None:
        while True:
            try:
                with engine.begin() as connection:
                    inventory.reserve(connection, uuid.uuid4(), [(variant, 1)],
                                      expires_at=expires_at)
                reserved[index] += 1
            except ce.OutOfStock:
                return

    workers = [threading.Thread(target=buyer, args=(i,)) for i in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    return sum(reserved) / elapsed, sum(reserved) - units


def main(argv=None) -> int:
    options = parse_options(argv)
    rng = random.Random(7)
    with bench_server.open_server(options.database_url) as server:
        name = f"pacioli_catalog_bench_{uuid.uuid4().hex[:8]}"
        url = bench_server.create_database(server.admin_url, name)
        try:
            upgrade(url)
            engine = make_engine(url, pool_size=options.threads + 4)
            print(f"seeding {options.products} products", file=sys.stderr)
            variants = seed(engine, options.products, rng)
            searches = bench_search(engine, options.queries, rng)
            pricing = bench_pricing(engine, variants, options.carts, rng)
            rate, oversold = bench_reservations(engine, variants[0], options.threads,
                                                options.units)
            engine.dispose()
        finally:
            if not server.embedded:
                bench_server.drop_database(server.admin_url, name)
    for kind, latencies in searches.items():
        print(f"search {kind:<12} p50 {statistics.median(latencies):7.2f} ms"
              f"   p99 {percentile(latencies, 0.99):7.2f} ms")
    print(f"price_cart (10 lines) p50 {statistics.median(pricing):7.2f} ms"
          f"   p99 {percentile(pricing, 0.99):7.2f} ms")
    print(f"reservations: {rate:.0f}/s with {options.threads} threads on one variant;"
          f" oversold {oversold}")
    all_searches = [value for latencies in searches.values() for value in latencies]
    print(json.dumps({
        "bench": "catalog", "products": options.products,
        "search_p99_ms": round(percentile(all_searches, 0.99), 2),
        "price_cart_p99_ms": round(percentile(pricing, 0.99), 2),
        "reservations_per_s": round(rate), "oversold": oversold,
    }))
    return 0 if oversold == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
