"""The ledger bench's workloads: N clients posting two-leg transfers through `Ledger`.

The N clients are asyncio tasks on one event loop, awaiting `Ledger.transfer_async`,
the way pgbench multiplexes its N clients on a couple of threads (`-j 2`); the ledger's
writer thread gathers their commands into batches exactly as it does for threads. (With
one OS thread per client, waking 32 threads for their answers cost more CPU than the
ledger's own work: see docs/benchmarks.md.)

Each workload runs a short warm-up, then a measured window. A transfer counts when its
acknowledgement arrives inside the window, so TPS is acknowledged transfers per second of
wall time, and the latencies are what a caller of `Ledger.transfer` waited, retries of
`LedgerUnavailable` included. Every acknowledgement is kept (warm-up and stragglers too)
so the bench can check afterwards that each one is in the database exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from uuid import UUID

import ledger_writer_stats

from pacioli.ledger import (
    DomainError,
    Ledger,
    LedgerUnavailable,
    Leg,
    TransferSpec,
    credit,
    debit,
)

log = logging.getLogger(__name__)

ASSET_CODE = "USD"
# Each user account starts with far more than any run can spend, so no transfer is refused.
FUNDING_PER_ACCOUNT_MINOR = 10**12
TRANSFER_AMOUNT_MAX_MINOR = 100
# Within the ledger's limit on a linked batch (128 transfers).
FUNDING_TRANSFERS_PER_BATCH = 100
SETUP_THREADS_MIN = 64
# A caller retries a transfer refused as LedgerUnavailable with the same key, this often.
CLIENT_ATTEMPTS_MAX = 10


@dataclass(frozen=True)
class BenchAccounts:
    funding_id: UUID  # where the users' money comes from (no overdraft flag)
    merchant_id: UUID  # the hot account
    user_ids: tuple[UUID, ...]  # wallets that may not go below zero


@dataclass(frozen=True)
class Request:
    key: str
    legs: tuple[Leg, ...]
    expected_transfer_id: UUID | None = None  # set for a replay: the first result's id


@dataclass(frozen=True)
class Acknowledged:
    key: str
    legs: tuple[Leg, ...]
    transfer_id: UUID


@dataclass
class Tally:
    """What one worker (or, merged, a whole workload) saw."""

    latencies_ms: list[float] = field(default_factory=list)  # inside the measured window
    acknowledged: list[Acknowledged] = field(default_factory=list)  # all of them
    rejected: Counter[str] = field(default_factory=Counter)  # DomainError codes
    unavailable: int = 0  # LedgerUnavailable answers, each retried with the same key
    unresolved: int = 0  # requests still unanswered after CLIENT_ATTEMPTS_MAX tries
    errors: Counter[str] = field(default_factory=Counter)  # anything else raised, by type
    replay_mismatches: int = 0  # a replay not marked replayed, or with another id (or vice versa)

    def merge(self, other: Tally) -> None:
        self.latencies_ms += other.latencies_ms
        self.acknowledged += other.acknowledged
        self.rejected.update(other.rejected)
        self.unavailable += other.unavailable
        self.unresolved += other.unresolved
        self.errors.update(other.errors)
        self.replay_mismatches += other.replay_mismatches


@dataclass(frozen=True)
class WorkloadResult:
    name: str
    measured_seconds: float
    tally: Tally
    writer: ledger_writer_stats.WriterStats  # warm-up included

    @property
    def tps(self) -> float:
        return len(self.tally.latencies_ms) / self.measured_seconds

    def latency_ms(self, quantile: float) -> float:
        ordered = sorted(self.tally.latencies_ms)
        if not ordered:
            return float("nan")
        # Nearest rank: the smallest latency at least `quantile` of the calls did not exceed.
        return ordered[max(0, math.ceil(quantile * len(ordered)) - 1)]


# A workload is a function from (random source, fresh key) to the request to send.
MakeRequest = Callable[[random.Random, str], Request]


def uniform_requests(accounts: BenchAccounts) -> MakeRequest:
    """Random pairs of user accounts."""

    def make(rng: random.Random, key: str) -> Request:
        payer_id, payee_id = rng.sample(accounts.user_ids, 2)
        amount_minor = rng.randint(1, TRANSFER_AMOUNT_MAX_MINOR)
        return Request(key, (debit(payer_id, amount_minor), credit(payee_id, amount_minor)))

    return make


def hot_requests(accounts: BenchAccounts) -> MakeRequest:
    """Random user accounts paying one merchant."""

    def make(rng: random.Random, key: str) -> Request:
        payer_id = rng.choice(accounts.user_ids)
        amount_minor = rng.randint(1, TRANSFER_AMOUNT_MAX_MINOR)
        legs = (debit(payer_id, amount_minor), credit(accounts.merchant_id, amount_minor))
        return Request(key, legs)

    return make


def replay_requests(acknowledged: Sequence[Acknowledged]) -> MakeRequest:
    """Already-acknowledged (key, request) pairs sent again; the fresh key goes unused."""
    if not acknowledged:
        raise ValueError("no transfer was acknowledged, so there is nothing to replay")

    def make(rng: random.Random, _key: str) -> Request:
        first = rng.choice(acknowledged)
        return Request(first.key, first.legs, expected_transfer_id=first.transfer_id)

    return make


def run_workload(
    ledger: Ledger,
    name: str,
    make_request: MakeRequest,
    *,
    workers: int,
    seconds: float,
    warmup_seconds: float,
    key_prefix: str,
) -> WorkloadResult:
    """Run `workers` threads sending requests for `warmup_seconds + seconds`."""
    writer_before = ledger_writer_stats.snapshot()
    started_at = time.perf_counter()
    window = (started_at + warmup_seconds, started_at + warmup_seconds + seconds)
    tallies = [Tally() for _ in range(workers)]

    async def clients() -> None:
        await asyncio.gather(*(
            _work(ledger, make_request, f"{key_prefix}-{name}-{index}", window, tallies[index])
            for index in range(workers)
        ))

    asyncio.run(clients())
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    writer = ledger_writer_stats.snapshot().since(writer_before)
    return WorkloadResult(name, seconds, total, writer)


async def _work(
    ledger: Ledger,
    make_request: MakeRequest,
    key_prefix: str,
    window: tuple[float, float],
    tally: Tally,
) -> None:
    measured_from, ends_at = window
    rng = random.Random(key_prefix)
    sequence = 0
    while time.perf_counter() < ends_at:
        request = make_request(rng, f"{key_prefix}-{sequence}")
        sequence += 1
        started = time.perf_counter()
        written = await _send(ledger, request, tally)
        finished = time.perf_counter()
        if written is None:
            continue
        transfer_id, replayed = written
        if replayed != (request.expected_transfer_id is not None) or (
            replayed and transfer_id != request.expected_transfer_id
        ):
            tally.replay_mismatches += 1
        if not replayed:
            tally.acknowledged.append(Acknowledged(request.key, request.legs, transfer_id))
        if measured_from <= finished <= ends_at:
            tally.latencies_ms.append((finished - started) * 1000)


async def _send(ledger: Ledger, request: Request, tally: Tally) -> tuple[UUID, bool] | None:
    """Post the request, as a patient client would: retry LedgerUnavailable with the same key."""
    for _ in range(CLIENT_ATTEMPTS_MAX):
        try:
            written = await ledger.transfer_async(request.legs, idempotency_key=request.key)
        except LedgerUnavailable:
            tally.unavailable += 1
            continue
        except DomainError as error:
            tally.rejected[error.code] += 1
            return None
        except Exception as error:  # noqa: BLE001 - a ledger bug; counted and shown, not hidden
            if not tally.errors[type(error).__name__]:
                log.exception("a transfer raised %s", type(error).__name__)
            tally.errors[type(error).__name__] += 1
            return None
        return written.value.id, written.replayed
    tally.unresolved += 1
    return None


# Setting up: accounts opened and funded through the same Python API.


def open_accounts(
    ledger: Ledger, *, user_count: int, workers: int, key_prefix: str
) -> BenchAccounts:
    """Open the funding account, the merchant and `user_count` wallets, many at a time.

    Concurrent `open_account` calls are gathered by the ledger's batcher into shared
    database transactions, which is far faster than opening them one after another.
    """
    funding = ledger.open_account(
        asset_code=ASSET_CODE, normal_side="debit", idempotency_key=f"{key_prefix}-open-funding"
    )
    merchant = _open_wallet(ledger, f"{key_prefix}-open-merchant")
    with ThreadPoolExecutor(max(workers, SETUP_THREADS_MIN)) as pool:
        user_ids = pool.map(
            lambda index: _open_wallet(ledger, f"{key_prefix}-open-user-{index}"),
            range(user_count),
        )
        return BenchAccounts(funding.value.id, merchant, tuple(user_ids))


def fund_accounts(
    ledger: Ledger, accounts: BenchAccounts, *, workers: int, key_prefix: str
) -> int:
    """Credit every wallet from the funding account in linked batches; return the transfer count."""
    chunks = [
        accounts.user_ids[start : start + FUNDING_TRANSFERS_PER_BATCH]
        for start in range(0, len(accounts.user_ids), FUNDING_TRANSFERS_PER_BATCH)
    ]

    def fund(index: int) -> int:
        specs = [
            TransferSpec((
                debit(accounts.funding_id, FUNDING_PER_ACCOUNT_MINOR),
                credit(user_id, FUNDING_PER_ACCOUNT_MINOR),
            ))
            for user_id in chunks[index]
        ]
        written = ledger.transfer_batch(specs, idempotency_key=f"{key_prefix}-fund-{index}")
        return len(written.value)

    with ThreadPoolExecutor(max(1, min(workers, len(chunks)))) as pool:
        return sum(pool.map(fund, range(len(chunks))))


def _open_wallet(ledger: Ledger, key: str) -> UUID:
    written = ledger.open_account(
        asset_code=ASSET_CODE,
        normal_side="credit",
        debits_must_not_exceed_credits=True,
        idempotency_key=key,
    )
    return written.value.id
