"""Many threads, four `Ledger` instances, a few accounts: nothing lost, nothing doubled.

Thirty-two threads move money among six wallets that forbid overdraft, through four
ledgers on the same database (three batching, each with its own writer thread, and one
running every command in its caller's own transaction), so real SERIALIZABLE
transactions contend. They send transfers that must fail for want of funds, holds that
are then posted or voided, and the same idempotency key again: after an answer, from
another thread, and from two threads at once. Every answer is recorded; afterwards the
database must hold exactly the acknowledged transfers, and the balances must follow.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import Engine, text

from pacioli.ledger import (
    DomainError,
    Ledger,
    LedgerUnavailable,
    Leg,
    Transfer,
    Written,
    credit,
    debit,
)

pytestmark = pytest.mark.slow

THREADS = 32
OPERATIONS_PER_THREAD = 25
WALLETS = 6
FUNDING_PER_WALLET_MINOR = 10_000
TOTAL_FUNDING_MINOR = WALLETS * FUNDING_PER_WALLET_MINOR
AMOUNT_MAX_MINOR = 3_000
UNAVAILABLE_RETRIES_MAX = 20  # a caller's own retries when the ledger reports it is busy
THREAD_TIMEOUT_S = 120
SEED = 20240611


@pytest.fixture
def ledgers(engine: Engine) -> Iterator[list[Ledger]]:
    """Three batching ledgers (three writer threads) and one that runs on its callers' threads."""
    made = [Ledger(engine), Ledger(engine), Ledger(engine), Ledger(engine, batching=False)]
    yield made
    for ledger in made:
        ledger.close()


@dataclass(frozen=True, eq=False)
class Request:
    """One write exactly as sent; sending it again sends the same request under the same key."""

    key: str
    metadata: dict
    action: str  # "transfer", "post" or "void"
    legs: tuple[Leg, ...] = ()
    pending: bool = False
    expires_at: datetime | None = None
    pending_id: UUID | None = None
    amount_minor: int | None = None  # for "post": None posts the whole hold
    refusals_allowed: frozenset[str] = frozenset()

    def send(self, ledger: Ledger) -> Written:
        if self.action == "transfer":
            return ledger.transfer(self.legs, metadata=self.metadata, pending=self.pending,
                                   expires_at=self.expires_at, idempotency_key=self.key)
        if self.action == "post":
            return ledger.post_pending(self.pending_id, amount_minor=self.amount_minor,
                                       metadata=self.metadata, idempotency_key=self.key)
        return ledger.void_pending(self.pending_id, metadata=self.metadata,
                                   idempotency_key=self.key)


@dataclass(frozen=True)
class Ack:
    request: Request
    transfer_id: UUID
    replayed: bool


@dataclass
class Record:
    """Everything the threads were told, gathered under one lock."""

    acks: list[Ack] = field(default_factory=list)
    refusals: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    retryable: list[Request] = field(default_factory=list)  # requests any thread may resend
    expiries: list[Transfer] = field(default_factory=list)  # what the sweeps reported expiring
    unavailable: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def send(self, request: Request, ledger: Ledger) -> Written | None:
        """Send until answered (the caller's own retry of a busy ledger keeps the key)."""
        for _ in range(UNAVAILABLE_RETRIES_MAX):
            try:
                written = request.send(ledger)
            except LedgerUnavailable:
                with self.lock:
                    self.unavailable += 1
                continue
            except DomainError as error:
                with self.lock:
                    self.refusals[error.code] += 1
                    if error.code not in request.refusals_allowed:
                        self.unexpected.append(f"{request.action} {request.key}: {error.code}")
                return None
            except Exception as error:  # noqa: BLE001 - every surprise fails the test below
                with self.lock:
                    self.unexpected.append(f"{request.action} {request.key}: {error!r}")
                return None
            with self.lock:
                self.acks.append(Ack(request, written.value.id, written.replayed))
            return written
        with self.lock:
            self.unexpected.append(f"{request.key}: busy {UNAVAILABLE_RETRIES_MAX} times")
        return None

    def sweep(self, ledger: Ledger) -> None:
        try:
            expired = ledger.expire_pending()
        except LedgerUnavailable:
            with self.lock:
                self.unavailable += 1
            return
        with self.lock:
            self.expiries.extend(expired)

    def offer_for_retry(self, request: Request) -> None:
        with self.lock:
            self.retryable.append(request)

    def pick_for_retry(self, rng: random.Random) -> Request | None:
        with self.lock:
            return rng.choice(self.retryable) if self.retryable else None


class Worker:
    """One thread's random operations, all among the same few wallets."""

    def __init__(self, index: int, *, ledgers, wallets, record: Record, run_id: str) -> None:
        self.rng = random.Random(SEED * 1_000 + index)
        self.ledgers = ledgers
        self.home = ledgers[index % len(ledgers)]
        self.wallets = wallets
        self.record = record
        self.run_id = run_id

    def run(self) -> None:
        operations = [self.transfer, self.split, self.overdraft, self.hold_then_resolve,
                      self.hold_then_race_the_deadline, self.sweep,
                      self.retry_someone_elses_request, self.send_twice_at_once]
        weights = [30, 10, 5, 20, 8, 4, 15, 15]
        for _ in range(OPERATIONS_PER_THREAD):
            self.rng.choices(operations, weights)[0]()

    def _request(self, action: str, **fields) -> Request:
        key = uuid.uuid4().hex
        return Request(key, {"concurrency_run": self.run_id, "key": key}, action, **fields)

    def _transfer_request(
        self, legs: list[Leg], *, pending: bool = False, expires_at: datetime | None = None
    ) -> Request:
        # A deadline only a fraction of a second away may have passed before the write runs.
        refusals = {"insufficient_funds"} | ({"invalid_expiry"} if expires_at else set())
        return self._request("transfer", legs=tuple(legs), pending=pending,
                             expires_at=expires_at, refusals_allowed=frozenset(refusals))

    def _other_ledger(self) -> Ledger:
        return self.rng.choice([ledger for ledger in self.ledgers if ledger is not self.home])

    def transfer(self) -> None:
        payer, payee = self.rng.sample(self.wallets, 2)
        amount_minor = self.rng.randint(1, AMOUNT_MAX_MINOR)
        request = self._transfer_request([debit(payer, amount_minor), credit(payee, amount_minor)])
        self.record.send(request, self.home)
        self.record.offer_for_retry(request)

    def split(self) -> None:
        payer, *payees = self.rng.sample(self.wallets, 3)
        amounts = [self.rng.randint(1, AMOUNT_MAX_MINOR // 2) for _ in payees]
        legs = [debit(payer, sum(amounts))]
        legs += [credit(payee, amount) for payee, amount in zip(payees, amounts, strict=True)]
        request = self._transfer_request(legs)
        self.record.send(request, self.home)
        self.record.offer_for_retry(request)

    def overdraft(self) -> None:
        """More than all the wallets hold together: refused whatever else is going on."""
        payer, payee = self.rng.sample(self.wallets, 2)
        amount_minor = TOTAL_FUNDING_MINOR + self.rng.randint(1, 1_000)
        request = self._transfer_request([debit(payer, amount_minor), credit(payee, amount_minor)])
        if self.record.send(request, self.home) is not None:
            with self.record.lock:
                self.record.unexpected.append(f"overdraft of {amount_minor} accepted")

    def hold_then_resolve(self) -> None:
        """A hold that this thread always posts (in full or part) or voids, which cannot fail."""
        self._hold_and_resolve(expires_at=None, refusals=frozenset())

    def hold_then_race_the_deadline(self) -> None:
        """A hold due in a fraction of a second, posted or voided while sweeps may expire it:
        either way it is resolved exactly once. Too late, the post or void is refused as
        expired (before a sweep) or already resolved (after one)."""
        expires_at = datetime.now(UTC) + timedelta(milliseconds=self.rng.randint(100, 400))
        self._hold_and_resolve(expires_at=expires_at,
                               refusals=frozenset({"pending_transfer_expired",
                                                   "pending_transfer_already_resolved"}),
                               wait_s=self.rng.uniform(0, 0.4))

    def _hold_and_resolve(
        self, *, expires_at: datetime | None, refusals: frozenset[str], wait_s: float = 0
    ) -> None:
        payer, payee = self.rng.sample(self.wallets, 2)
        amount_minor = self.rng.randint(1, AMOUNT_MAX_MINOR)
        hold = self._transfer_request([debit(payer, amount_minor), credit(payee, amount_minor)],
                                      pending=True, expires_at=expires_at)
        written = self.record.send(hold, self.home)
        if written is None:
            return
        # Offered only once acknowledged: a refused hold resent later might succeed, and
        # then nobody would resolve it.
        self.record.offer_for_retry(hold)
        time.sleep(wait_s)
        choice = self.rng.choice(["post_all", "post_part", "void"])
        if choice == "void":
            resolution = self._request("void", pending_id=written.value.id,
                                       refusals_allowed=refusals)
        else:
            part = self.rng.randint(1, amount_minor) if choice == "post_part" else None
            resolution = self._request("post", pending_id=written.value.id, amount_minor=part,
                                       refusals_allowed=refusals)
        self.record.send(resolution, self._other_ledger())
        self.record.offer_for_retry(resolution)

    def sweep(self) -> None:
        self.record.sweep(self.home)

    def retry_someone_elses_request(self) -> None:
        request = self.record.pick_for_retry(self.rng)
        if request is not None:
            self.record.send(request, self._other_ledger())

    def send_twice_at_once(self) -> None:
        """The same key from two threads through two ledgers at the same moment."""
        payer, payee = self.rng.sample(self.wallets, 2)
        amount_minor = self.rng.randint(1, AMOUNT_MAX_MINOR)
        request = self._transfer_request([debit(payer, amount_minor), credit(payee, amount_minor)])
        start = threading.Barrier(2)

        def send_from(ledger: Ledger) -> None:
            start.wait()
            self.record.send(request, ledger)

        twin = threading.Thread(target=send_from, args=(self._other_ledger(),))
        twin.start()
        send_from(self.home)
        twin.join()


def _open_accounts(ledger: Ledger, run_id: str) -> tuple[UUID, list[UUID]]:
    metadata = {"concurrency_run": run_id}
    source = ledger.open_account(asset_code="USD", normal_side="debit", metadata=metadata,
                                 idempotency_key=uuid.uuid4().hex).value.id
    wallets = [
        ledger.open_account(asset_code="USD", normal_side="credit", metadata=metadata,
                            debits_must_not_exceed_credits=True,
                            idempotency_key=uuid.uuid4().hex).value.id
        for _ in range(WALLETS)
    ]
    return source, wallets


def _fund(ledger: Ledger, record: Record, run_id: str, source: UUID, wallets: list[UUID]) -> None:
    for wallet in wallets:
        key = uuid.uuid4().hex
        request = Request(
            key, {"concurrency_run": run_id, "key": key}, "transfer",
            legs=(debit(source, FUNDING_PER_WALLET_MINOR),
                  credit(wallet, FUNDING_PER_WALLET_MINOR)),
        )
        assert record.send(request, ledger) is not None


def _run_threads(target, count: int) -> None:
    with ThreadPoolExecutor(max_workers=count) as pool:
        futures = [pool.submit(target, index) for index in range(count)]
        for future in futures:
            future.result(timeout=THREAD_TIMEOUT_S)


def test_concurrent_transfers_lose_nothing_double_nothing_and_break_no_flag(engine, ledgers):
    run_id = uuid.uuid4().hex
    record = Record()
    source, wallets = _open_accounts(ledgers[0], run_id)
    _fund(ledgers[0], record, run_id, source, wallets)

    def work(index: int) -> None:
        Worker(index, ledgers=ledgers, wallets=wallets, record=record, run_id=run_id).run()

    _run_threads(work, THREADS)
    # Every hold with a deadline is due by now (give or take); a last sweep releases the
    # ones nobody resolved, so no pending amount is left behind.
    time.sleep(0.5)
    for _ in range(3):  # a sweep refused as busy is simply run again
        record.sweep(ledgers[0])

    assert record.unexpected == []
    assert record.refusals["insufficient_funds"] > 0, "no transfer was refused for want of funds"
    assert any(ack.replayed for ack in record.acks), "no key was ever replayed"
    transfer_by_key = _check_each_key_posted_once(engine, record, run_id)
    _check_each_hold_resolved_once(engine, record)
    _check_balances_follow_the_acknowledgements(engine, record, transfer_by_key, source, wallets)
    _check_running_balances(engine, [source, *wallets], wallets)


def _check_each_key_posted_once(engine: Engine, record: Record, run_id: str) -> dict[str, UUID]:
    """Each acknowledged key has one transfer, the one its callers were told, and no other
    transfer of the run exists; exactly one answer per key was not a replay."""
    ids_by_key: dict[str, set[UUID]] = defaultdict(set)
    first_answers: Counter = Counter()
    for ack in record.acks:
        ids_by_key[ack.request.key].add(ack.transfer_id)
        first_answers[ack.request.key] += not ack.replayed
    assert all(len(ids) == 1 for ids in ids_by_key.values()), "a key answered two transfers"
    assert set(first_answers.values()) == {1}, "a key was executed other than exactly once"
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT metadata->>'key' AS key, id FROM transfers"
                 " WHERE metadata @> CAST(:run AS jsonb)"),
            {"run": json.dumps({"concurrency_run": run_id})},
        ).all()
    stored: dict[str, list[UUID]] = defaultdict(list)
    for key, transfer_id in rows:
        stored[key].append(transfer_id)
    assert len(rows) == len(ids_by_key), "transfers stored != distinct acknowledged keys"
    assert {key: sorted(ids) for key, ids in ids_by_key.items()} == {
        key: sorted(ids) for key, ids in stored.items()
    }, "a stored transfer differs from the one its callers were told"
    return {key: next(iter(ids)) for key, ids in ids_by_key.items()}


def _check_each_hold_resolved_once(engine: Engine, record: Record) -> None:
    """Each acknowledged hold was posted, voided or expired exactly once, as its callers and
    the sweeps reported, and the database holds exactly that one resolution."""
    first_acks = [ack for ack in record.acks if not ack.replayed]
    holds = {ack.transfer_id for ack in first_acks if ack.request.pending}
    reported = Counter(ack.request.pending_id for ack in first_acks if ack.request.pending_id)
    reported.update(t.pending_id for t in record.expiries if t.pending_id in holds)
    assert set(reported) == holds, "a hold was left unresolved, or a stranger resolved"
    assert set(reported.values()) == {1}, "a hold was reported resolved twice"
    with engine.connect() as connection:
        stored = dict(connection.execute(
            text("SELECT pending_id, count(*) FROM transfers WHERE pending_id = ANY(:ids)"
                 " GROUP BY pending_id"),
            {"ids": list(holds)},
        ).all())
    assert stored == dict.fromkeys(holds, 1)


def _check_balances_follow_the_acknowledgements(
    engine: Engine, record: Record, transfer_by_key: dict[str, UUID], source: UUID,
    wallets: list[UUID],
) -> None:
    """Each wallet's balance is its funding plus what the acknowledged transfers moved."""
    first_acks = [ack for ack in record.acks if not ack.replayed]
    hold_by_id = {ack.transfer_id: ack.request for ack in first_acks if ack.request.pending}
    expected_net = Counter()  # credits minus debits, posted
    for ack in first_acks:
        for account_id, direction, amount_minor in _posted_by(ack.request, hold_by_id):
            expected_net[account_id] += amount_minor if direction == "credit" else -amount_minor
    balances = _balances(engine, [source, *wallets])
    for account_id in (source, *wallets):
        debits_posted, credits_posted, debits_pending, credits_pending = balances[account_id]
        assert (debits_pending, credits_pending) == (0, 0), "a hold was left unresolved"
        assert credits_posted - debits_posted == expected_net[account_id]
    wallet_total = sum(balances[w][1] - balances[w][0] for w in wallets)
    source_balance = balances[source][0] - balances[source][1]
    assert wallet_total == source_balance == TOTAL_FUNDING_MINOR
    assert sum(b[0] for b in balances.values()) == sum(b[1] for b in balances.values())


def _posted_by(request: Request, hold_by_id: dict[UUID, Request]) -> list[tuple[UUID, str, int]]:
    """What an executed request moved in posted funds: (account, direction, amount) legs."""
    if request.action == "transfer" and not request.pending:
        legs = [(leg, leg.amount_minor) for leg in request.legs]
    elif request.action == "post":
        legs = [(leg, request.amount_minor or leg.amount_minor)
                for leg in hold_by_id[request.pending_id].legs]
    else:
        legs = []  # a hold moves only pending amounts; a void releases them
    return [(leg.account_id, leg.direction.value, amount_minor) for leg, amount_minor in legs]


def _balances(engine: Engine, account_ids: list[UUID]) -> dict[UUID, tuple[int, int, int, int]]:
    """Each account's stored (debits_posted, credits_posted, debits_pending, credits_pending)."""
    return {account_id: state[:4] for account_id, state in _stored(engine, account_ids).items()}


def _stored(engine: Engine, account_ids: list[UUID]) -> dict[UUID, tuple[int, ...]]:
    """Each account's four stored balances followed by its posting count."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT id, debits_posted, credits_posted, debits_pending, credits_pending,"
                 " posting_count FROM accounts WHERE id = ANY(:ids)"),
            {"ids": account_ids},
        ).all()
    return {row[0]: tuple(int(value) for value in row[1:]) for row in rows}


_BALANCE_INDEX = {("debit", "posted"): 0, ("credit", "posted"): 1,
                  ("debit", "pending"): 2, ("credit", "pending"): 3}


def _check_running_balances(engine: Engine, account_ids: list[UUID], wallets: list[UUID]) -> None:
    """Postings number 1..n per account, each one's balances are the previous plus its
    amount, the last equal the account's, and no wallet was overdrawn at any point."""
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT account_id, account_seq, direction, layer, amount_minor,"
                 " debits_posted_after, credits_posted_after, debits_pending_after,"
                 " credits_pending_after FROM postings WHERE account_id = ANY(:ids)"
                 " ORDER BY account_id, account_seq"),
            {"ids": account_ids},
        ).all()
    postings_by_account = defaultdict(list)
    for row in rows:
        postings_by_account[row.account_id].append(row)
    stored = _stored(engine, account_ids)
    for account_id in account_ids:
        postings = postings_by_account[account_id]
        assert [p.account_seq for p in postings] == list(range(1, len(postings) + 1))
        running = [0, 0, 0, 0]
        for p in postings:
            running[_BALANCE_INDEX[(p.direction, p.layer)]] += int(p.amount_minor)
            after = [int(p.debits_posted_after), int(p.credits_posted_after),
                     int(p.debits_pending_after), int(p.credits_pending_after)]
            assert after == running, f"running balance breaks at {account_id} #{p.account_seq}"
            if account_id in wallets:
                assert after[0] + after[2] <= after[1], f"wallet {account_id} overdrawn"
        assert (*running, len(postings)) == stored[account_id]


def test_one_key_sent_by_32_threads_at_once_posts_one_transfer(engine, ledgers):
    run_id = uuid.uuid4().hex
    record = Record()
    source, (wallet, *_) = _open_accounts(ledgers[0], run_id)
    key = uuid.uuid4().hex
    request = Request(key, {"concurrency_run": run_id, "key": key}, "transfer",
                      legs=(debit(source, 1_234), credit(wallet, 1_234)))
    start = threading.Barrier(THREADS)

    def send(index: int) -> None:
        start.wait()
        record.send(request, ledgers[index % len(ledgers)])

    _run_threads(send, THREADS)

    assert record.unexpected == []
    assert len(record.acks) == THREADS
    assert len({ack.transfer_id for ack in record.acks}) == 1
    assert sorted(ack.replayed for ack in record.acks) == [False] + [True] * (THREADS - 1)
    _check_each_key_posted_once(engine, record, run_id)
    assert _balances(engine, [wallet])[wallet] == (0, 1_234, 0, 0)
