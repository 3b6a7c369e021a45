"""The order book against pyorderbook: one command stream through both, in one run.

    python bench/matching_bench.py [--inserts 100000] [--mix 100000] [--repeats 3] [--seed 7]
                                   [--settle-orders 10000] [--live-orders 2000]
                                   [--database-url postgresql://...] [--no-settlement]
                                   [--no-freeze]

1. A command stream for BTC-USD is generated (seeded, so every run sees the same one):
   `--inserts` limit orders alternating buy and sell around a mid price, buys a few ticks
   above and sells a few ticks below it often enough that about half of them trade; then
   `--mix` commands as exchange-core measures them: 50% new GTC limit orders, 5% IOC, 25%
   cancels, 15% moves (a price change, which loses the queue place) and 5% reduces (a size
   decrease, which keeps it). Cancels, moves and reduces name live orders: the generator
   runs the stream through a Pacioli book once to know which are live.
2. The same stream runs through `pacioli.matching.OrderBook.apply` and through
   `pyorderbook.Book` (the peer: `match` for orders, `cancel`; it has no IOC or amend, so
   an IOC is a `match` then a `cancel` of what rested, a move is a `cancel` and a new
   `match`, a reduce lowers the order's quantity in place). Both sides are measured the
   same way: the stream is kept as plain tuples (`plan_of`), and before each run that
   side's inputs are built afresh from them (Pacioli's commands, pyorderbook's orders),
   then a full collection runs and everything that exists is frozen (`gc.freeze`), so the
   cyclic GC, which stays on, sees only what the run itself makes; the side that runs
   first alternates from repeat to repeat. Each book runs the stream `--repeats` times
   from empty: once untimed per command for the throughput (orders/s = commands / wall
   time), once with a `perf_counter_ns` around every command for the p50/p99 latency.
   The best throughput and the median latencies over the repeats are reported.
3. The end-to-end part, matching settled in the ledger, runs the exchange service on a
   throwaway database (embedded PostgreSQL unless `--database-url`): see
   bench/matching_settlement.py. `settled_fills_per_s` is the rate at which a backlog of
   `--settle-orders` orders' fills is settled in ledger batches; `live_fills_per_s` the
   rate of the whole pipeline with the settler running; then the ledger invariants and
   the exchange's own balances are checked. `--no-settlement` skips it (None).
4. The last line of stdout is one JSON object:
   `{"bench": "matching", "ops_per_s", "p99_us", "peer": "pyorderbook", "peer_ops_per_s",
   "settled_fills_per_s"}`.

Targets (issue 6): at least 2x the peer's orders/s, and p99 under 20 µs per command.
Exit status 1 when the fills of the two books differ on the insert phase (a wrong peer
comparison would be worthless) or a settlement check breaks.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pacioli.matching import (
    BTC_USD,
    AmendOrder,
    CancelOrder,
    OrderBook,
    OrderType,
    PlaceOrder,
    Side,
    TimeInForce,
)

MID = 5_000_000  # 50,000.00 USD/BTC
OVERLAP_TICKS = 3  # how far a buy may sit above the mid (and a sell below it)
SPREAD_TICKS = 3  # how far from the mid orders are placed on their own side
PEER_MATCH, PEER_CANCEL, PEER_IOC, PEER_MOVE, PEER_REDUCE = range(5)


def parse_options(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inserts", type=int, default=100_000)
    parser.add_argument("--mix", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--settle-orders", type=int, default=10_000,
                        help="orders whose fills make the settlement backlog")
    parser.add_argument("--live-orders", type=int, default=2_000,
                        help="orders placed with the settler running")
    parser.add_argument("--database-url", default=None,
                        help="a PostgreSQL server to make the throwaway database on "
                        "(default: an embedded one)")
    parser.add_argument("--no-settlement", action="store_true",
                        help="measure the book only")
    parser.add_argument("--no-freeze", action="store_true",
                        help="leave the objects made before each book run to the garbage "
                        "collector (not gc.freeze()d)")
    return parser.parse_args(argv)


def generate_stream(inserts: int, mix: int, seed: int) -> tuple[list[object], int, int]:
    """The Pacioli commands of the benchmark (see the module docstring), how many of the
    inserts traded, and how many fills the whole stream makes."""
    rng = random.Random(seed)
    book = OrderBook(BTC_USD)
    live: list[int] = []  # live order ids, for cancels, moves and reduces
    position: dict[int, int] = {}
    commands: list[object] = []
    next_id = 1
    traded = 0
    fills = 0

    def limit_order(side: Side, tif: TimeInForce) -> PlaceOrder:
        nonlocal next_id
        offset = rng.randint(-OVERLAP_TICKS, SPREAD_TICKS)
        price = MID - offset if side is Side.BUY else MID + offset
        size = BTC_USD.min_size * rng.randint(1, 10)
        # One owner per order: pyorderbook has no self-trade prevention, so no order may
        # meet its own owner's for the two books to do the same.
        command = PlaceOrder(len(commands) + 1, next_id, f"u{next_id}", side,
                             OrderType.LIMIT, size=size, price=price, tif=tif)
        next_id += 1
        return command

    def run(command: object) -> bool:
        nonlocal fills
        result = book.apply(command)  # type: ignore[arg-type]
        fills += len(result.fills)
        if not result.accepted:
            raise SystemExit(f"the generator made a refused command: {result.reject}")
        commands.append(command)
        for done in result.done:
            index = position.pop(done.order_id, None)
            if index is not None:  # swap-remove from `live`
                last = live.pop()
                if last != done.order_id:
                    live[index] = last
                    position[last] = index
        for opened in result.opened:
            if opened.order_id not in position:
                position[opened.order_id] = len(live)
                live.append(opened.order_id)
        return bool(result.fills)

    for n in range(inserts):
        traded += run(limit_order(Side.BUY if n % 2 == 0 else Side.SELL, TimeInForce.GTC))
    for _ in range(mix):
        roll = rng.random()
        ts = len(commands) + 1
        if roll < 0.55 or not live:
            side = Side.BUY if rng.random() < 0.5 else Side.SELL
            run(limit_order(side, TimeInForce.GTC if roll < 0.50 else TimeInForce.IOC))
            continue
        order = book.get_order(live[rng.randrange(len(live))])
        if roll < 0.80:
            run(CancelOrder(ts, order.order_id, order.owner))
        elif roll < 0.95:
            step = rng.randint(1, 5)
            price = order.price - step if order.side is Side.BUY else order.price + step
            run(AmendOrder(ts, order.order_id, order.owner, price=price))
        elif order.remaining_size > BTC_USD.min_size:
            run(AmendOrder(ts, order.order_id, order.owner,
                           size=order.remaining_size - BTC_USD.size_increment))
        else:
            run(CancelOrder(ts, order.order_id, order.owner))
    return commands, traded, fills


def plan_of(commands: list[object]) -> list[tuple]:
    """The stream as plain tuples, from which each side builds its own inputs right before
    its run (see `pacioli_commands`, `peer_operations`): ("place", ts, order_id, owner,
    side, price, size, ioc), ("cancel", ts, order_id, owner), ("move", ts, order_id,
    owner, side, price, open size), ("reduce", ts, order_id, owner, size). A move's open
    size (which pyorderbook's new order needs) comes from a run through a Pacioli book."""
    book = OrderBook(BTC_USD)
    plan: list[tuple] = []
    for command in commands:
        if isinstance(command, PlaceOrder):
            plan.append(("place", command.ts, command.order_id, command.owner,
                         str(command.side), command.price, command.size,
                         command.tif is TimeInForce.IOC))
        elif isinstance(command, CancelOrder):
            plan.append(("cancel", command.ts, command.order_id, command.owner))
        elif command.price is not None:
            view = book.get_order(command.order_id)
            plan.append(("move", command.ts, command.order_id, command.owner,
                         str(view.side), command.price, view.remaining_size))
        else:
            plan.append(("reduce", command.ts, command.order_id, command.owner, command.size))
        book.apply(command)  # type: ignore[arg-type]
    return plan


def pacioli_commands(plan: list[tuple]) -> list[object]:
    """Pacioli's commands of the plan, built afresh (enum fields as members)."""
    commands: list[object] = []
    for step in plan:
        kind = step[0]
        if kind == "place":
            _, ts, order_id, owner, side, price, size, ioc = step
            commands.append(PlaceOrder(ts, order_id, owner, Side(side), OrderType.LIMIT,
                                       size=size, price=price,
                                       tif=TimeInForce.IOC if ioc else TimeInForce.GTC))
        elif kind == "cancel":
            commands.append(CancelOrder(*step[1:]))
        elif kind == "move":
            _, ts, order_id, owner, _, price, _ = step
            commands.append(AmendOrder(ts, order_id, owner, price=price))
        else:
            _, ts, order_id, owner, size = step
            commands.append(AmendOrder(ts, order_id, owner, size=size))
    return commands


def peer_operations(plan: list[tuple]) -> list[tuple[int, object, object]]:
    """The plan as pyorderbook operations, built afresh: (kind, order, extra).

    pyorderbook has no IOC or amend: an IOC is a `match` then a `cancel` of what rested,
    a move a `cancel` and a `match` of a new order at the new price for the open size, a
    reduce lowers the order's quantity in place. Its orders are built here because a run
    changes them (their quantity), so every run needs its own.
    """
    import pyorderbook

    logging.getLogger("pyorderbook.book").setLevel(logging.WARNING)
    current: dict[int, pyorderbook.Order] = {}
    operations: list[tuple[int, object, object]] = []
    for step in plan:
        kind = step[0]
        if kind == "place":
            _, _, order_id, _, side, price, size, ioc = step
            make = pyorderbook.bid if side == "buy" else pyorderbook.ask
            order = current[order_id] = make("BTC-USD", price, size)
            operations.append((PEER_IOC if ioc else PEER_MATCH, order, None))
        elif kind == "cancel":
            operations.append((PEER_CANCEL, current[step[2]], None))
        elif kind == "move":
            _, _, order_id, _, side, price, size = step
            make = pyorderbook.bid if side == "buy" else pyorderbook.ask
            new = make("BTC-USD", price, size)
            operations.append((PEER_MOVE, current[order_id], new))
            current[order_id] = new
        else:
            operations.append((PEER_REDUCE, current[step[2]], step[4]))
    return operations


def run_pacioli(commands: list[object], timed: bool) -> tuple[float, float, list[int]]:
    """(wall seconds, CPU seconds, per-command ns if timed) of one run from an empty book."""
    book = OrderBook(BTC_USD)
    apply = book.apply
    latencies: list[int] = []
    if timed:
        clock = time.perf_counter_ns
        record = latencies.append
        for command in commands:
            start = clock()
            apply(command)
            record(clock() - start)
        return 0.0, 0.0, latencies
    cpu = time.process_time()
    start = time.perf_counter()
    for command in commands:
        apply(command)
    return time.perf_counter() - start, time.process_time() - cpu, latencies


def run_peer(
    operations: list[tuple[int, object, object]], timed: bool
) -> tuple[float, float, list[int]]:
    """(wall seconds, CPU seconds, per-command ns if timed) of one run from an empty
    pyorderbook book.

    The same loop twice, timed per operation or not, so the untimed one carries no timing
    (as `run_pacioli`'s)."""
    import pyorderbook

    book = pyorderbook.Book()
    order_map = book.order_map
    match = book.match
    cancel = book.cancel
    latencies: list[int] = []
    if timed:
        clock = time.perf_counter_ns
        record = latencies.append
        for kind, order, extra in operations:
            start = clock()
            if kind == PEER_MATCH:
                match(order)
            elif kind == PEER_CANCEL:
                if order.id in order_map:
                    cancel(order)
            elif kind == PEER_IOC:
                match(order)
                if order.id in order_map:
                    cancel(order)
            elif kind == PEER_MOVE:
                if order.id in order_map:
                    cancel(order)
                match(extra)
            else:
                order.quantity = extra
            record(clock() - start)
        return 0.0, 0.0, latencies
    cpu = time.process_time()
    start_all = time.perf_counter()
    for kind, order, extra in operations:
        if kind == PEER_MATCH:
            match(order)
        elif kind == PEER_CANCEL:
            if order.id in order_map:
                cancel(order)
        elif kind == PEER_IOC:
            match(order)
            if order.id in order_map:
                cancel(order)
        elif kind == PEER_MOVE:
            if order.id in order_map:
                cancel(order)
            match(extra)
        else:
            order.quantity = extra
    return time.perf_counter() - start_all, time.process_time() - cpu, latencies


def measured(
    build: Callable[[], list], run: Callable[[list, bool], tuple[float, float, list[int]]],
    timed: bool, freeze: bool = True,
) -> tuple[float, float, list[int]]:
    """One run of one side, under the same conditions for both: its inputs built just
    before (`build`), then a full collection, and the objects that exist before the run
    frozen (`gc.freeze`), so the collector (which stays on) sees only what the run makes;
    unfrozen and dropped afterwards. `freeze=False` (`--no-freeze`) leaves them to the
    collector, as the bench did before 2026-11-25."""
    inputs = build()
    gc.collect()
    if freeze:
        gc.freeze()
    try:
        return run(inputs, timed)
    finally:
        gc.unfreeze()
        del inputs
        gc.collect()


def percentile_us(latencies_ns: list[int], fraction: float) -> float:
    ordered = sorted(latencies_ns)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] / 1000


def same_fills_on_inserts(commands: list[object], inserts: int) -> bool:
    """Whether both books make the same fills (taker, maker, size, price) on the inserts."""
    import pyorderbook

    ours, theirs = [], []
    book = OrderBook(BTC_USD)
    peer = pyorderbook.Book()
    ids: dict[object, int] = {}
    for command in commands[:inserts]:
        for fill in book.apply(command).fills:  # type: ignore[arg-type]
            ours.append((fill.taker_order_id, fill.maker_order_id, fill.size, fill.price))
        make = pyorderbook.bid if command.side is Side.BUY else pyorderbook.ask
        order = make("BTC-USD", command.price, command.size)
        ids[order.id] = command.order_id
        for trade in peer.match(order).trades:
            theirs.append((ids[trade.incoming_order_id], ids[trade.standing_order_id],
                           trade.fill_quantity, int(trade.fill_price)))
    return ours == theirs


def book_figures(inserts: int = 100_000, mix: int = 100_000, repeats: int = 3,
                 seed: int = 7, log: Callable[[str], None] = print,
                 freeze: bool = True) -> dict:
    """Pacioli's book and pyorderbook on one stream: orders/s and p50/p99 per command."""
    commands, traded, fills = generate_stream(inserts, mix, seed)
    same_fills = same_fills_on_inserts(commands, inserts)
    plan = plan_of(commands)
    del commands
    sides = {
        "pacioli": (lambda: pacioli_commands(plan), run_pacioli),
        "pyorderbook": (lambda: peer_operations(plan), run_peer),
    }
    figures: dict[str, dict[str, list[float]]] = {
        name: {"throughput": [], "cpu_throughput": [], "p50": [], "p99": []} for name in sides
    }
    for repeat in range(repeats):
        # Each side runs first in every other repeat.
        for name in (sides if repeat % 2 == 0 else reversed(list(sides))):
            build, run = sides[name]
            seconds, cpu_seconds, _ = measured(build, run, timed=False, freeze=freeze)
            _, _, latencies = measured(build, run, timed=True, freeze=freeze)
            figures[name]["throughput"].append(len(plan) / seconds)
            figures[name]["cpu_throughput"].append(len(plan) / cpu_seconds)
            figures[name]["p50"].append(percentile_us(latencies, 0.50))
            figures[name]["p99"].append(percentile_us(latencies, 0.99))
        ours, theirs = figures["pacioli"], figures["pyorderbook"]
        log(f"repeat {repeat + 1}: pacioli {ours['throughput'][-1]:,.0f}/s "
            f"({ours['cpu_throughput'][-1]:,.0f}/CPU-s) p50 {ours['p50'][-1]:.1f} µs "
            f"p99 {ours['p99'][-1]:.1f} µs | pyorderbook {theirs['throughput'][-1]:,.0f}/s "
            f"({theirs['cpu_throughput'][-1]:,.0f}/CPU-s) p50 {theirs['p50'][-1]:.1f} µs "
            f"p99 {theirs['p99'][-1]:.1f} µs")
    ours, theirs = figures["pacioli"], figures["pyorderbook"]
    return {
        "commands": len(plan),
        "inserts": inserts,
        "fills": fills,
        "inserts_traded": traded,
        "ops_per_s": round(max(ours["throughput"])),
        "p50_us": statistics.median(ours["p50"]),
        "p99_us": statistics.median(ours["p99"]),
        "peer_ops_per_s": round(max(theirs["throughput"])),
        # Per second of the process's CPU time: what the wall-clock figure would be on an
        # idle machine, less sensitive to other processes taking the cores.
        "ops_per_cpu_s": round(max(ours["cpu_throughput"])),
        "peer_ops_per_cpu_s": round(max(theirs["cpu_throughput"])),
        "peer_p50_us": statistics.median(theirs["p50"]),
        "peer_p99_us": statistics.median(theirs["p99"]),
        "same_fills_as_peer": same_fills,
    }


def settlement_figures(options: argparse.Namespace) -> dict | None:
    """The end-to-end part (matching settled in the ledger); None with --no-settlement."""
    if options.no_settlement:
        return None
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import matching_settlement

    return matching_settlement.settlement_figures(
        database_url=options.database_url, orders=options.settle_orders,
        live_orders=options.live_orders, seed=options.seed,
        log=lambda line: print(line, file=sys.stderr),
    )


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    book = book_figures(options.inserts, options.mix, options.repeats, options.seed,
                        log=lambda line: print(line, file=sys.stderr),
                        freeze=not options.no_freeze)
    print(json.dumps({"book": book}))
    settlement = settlement_figures(options)
    if settlement is not None:
        print(json.dumps({"settlement": settlement}))
    print(json.dumps({
        "bench": "matching",
        "ops_per_s": book["ops_per_s"],
        "p99_us": book["p99_us"],
        "peer": "pyorderbook",
        "peer_ops_per_s": book["peer_ops_per_s"],
        "settled_fills_per_s": None if settlement is None else settlement["settled_fills_per_s"],
    }))
    broken = settlement is not None and settlement["breaks"]
    return 0 if book["same_fills_as_peer"] and not broken else 1


if __name__ == "__main__":
    sys.exit(main())
