"""The real ledger against a plain in-memory model, one random command sequence at a time.

Hypothesis drives the real `Ledger` (on the session's test database; each example opens
accounts of its own) and `LedgerModel` side by side. The model predicts whether each
command succeeds or the exact error code that rejects it, and the ledger must agree.
After every step, every account's four balances, available amount, status and posting
count must equal the model's, and each asset's debits must equal its credits.

The ledger runs on a fake clock, so pending deadlines are reached by advancing it.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from uuid import UUID

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)
from sqlalchemy import Engine

from pacioli.ledger import (
    DomainError,
    Ledger,
    Leg,
    PostPending,
    TransferSpec,
    VoidPending,
    Written,
    credit,
    debit,
)

from .ledger_model import (
    AMOUNT_MAX_MINOR,
    DEBIT,
    LedgerModel,
    ModelAccount,
    Plan,
    Rejection,
)

pytestmark = pytest.mark.slow

ASSET_CODES = ("USD", "USD", "JPY")  # mostly USD, so most accounts can meet in a transfer
ASSET_NOT_USED = "EUR"

# Mostly small amounts, so flags and holds interact; now and then the largest amount a leg
# may carry (a split of two of those is an invalid amount).
amounts_minor = st.integers(1, 3_100).map(lambda n: AMOUNT_MAX_MINOR if n > 3_000 else n)
# Most transfers are well formed; a few are spoiled on purpose in one of these ways.
leg_twists = st.sampled_from(
    ["none"] * 8 + ["asset_named", "wrong_asset", "unbalanced", "same_account_twice"]
)


class FakeClock:
    """The ledger's and the model's notion of now; only the test moves it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@dataclass(frozen=True, eq=False)
class Command:
    """A request the test can send, and send again under the same key.

    `predict` returns the model's plan or raises `Rejection`; `record` applies a success to
    the model (checking what the ledger returned) and returns the ids of what it made.
    """

    predict: Callable[[], Plan | None]
    send: Callable[[str], Written]
    send_other: Callable[[str], Written]  # a different request, for reusing the key
    record: Callable[[Plan | None, Written], list[UUID]]


@dataclass(eq=False)
class Keyed:
    """Something a write made, with the idempotency key and the command that made it."""

    made_id: UUID  # the account or transfer this handle stands for
    key: str
    result_ids: tuple[UUID, ...]  # what the write returned (a linked batch returns several)
    command: Command


def _result_ids(written: Written) -> tuple[UUID, ...]:
    value = written.value
    return tuple(t.id for t in value) if isinstance(value, list) else (value.id,)


def _moves(transfer) -> list[tuple]:
    return sorted((p.account_id, p.direction.value, p.layer.value, p.amount_minor)
                  for p in transfer.postings)


class LedgerStateMachine(RuleBasedStateMachine):
    accounts = Bundle("accounts")
    pending_transfers = Bundle("pending_transfers")
    # Transfers a reversal may name: posted ones, resolutions of holds, and reversals.
    posted_transfers = Bundle("posted_transfers")
    used_keys = Bundle("used_keys")

    engine: ClassVar[Engine | None] = None  # set by the `_machine_engine` fixture below

    def __init__(self) -> None:
        super().__init__()
        assert self.engine is not None, "run through pytest, which provides the engine"
        self.run_id = uuid.uuid4().hex
        self.metadata = {"stateful_run": self.run_id}
        self.clock = FakeClock(datetime.now(UTC).replace(microsecond=0))
        self.ledger = Ledger(self.engine, clock=self.clock)
        self.model = LedgerModel(self.clock)
        self.keys_issued = 0
        self.refused: list[tuple[str, Command]] = []  # keys whose request was refused

    def teardown(self) -> None:
        self.ledger.close()

    # The one way commands are sent: predicted outcome in, real outcome checked.

    def _run(self, command: Command, key: str | None = None) -> list[Keyed]:
        """Send `command` under `key` (a fresh one by default) and check the model's prediction."""
        if key is None:
            self.keys_issued += 1
            key = f"{self.run_id}-{self.keys_issued}"
        try:
            plan, expected_code = command.predict(), None
        except Rejection as rejection:
            plan, expected_code = None, rejection.code
        event(f"outcome: {expected_code or 'accepted'}")
        try:
            written = command.send(key)
        except DomainError as error:
            assert error.code == expected_code, (
                f"ledger refused with {error.code} ({error.detail});"
                f" the model expected {expected_code or 'success'}"
            )
            self.refused.append((key, command))
            return []
        assert expected_code is None, f"ledger accepted; the model expected {expected_code}"
        assert not written.replayed, "a key never accepted before was reported as a replay"
        made_ids = command.record(plan, written)
        return [Keyed(made_id, key, _result_ids(written), command) for made_id in made_ids]

    def _record_transfers(self, plan: Plan, written: Written) -> list[UUID]:
        made = written.value if isinstance(written.value, list) else [written.value]
        self.model.commit(plan, [t.id for t in made])
        for transfer, planned in zip(made, plan.transfers, strict=True):
            assert transfer.kind.value == planned.kind
            assert _moves(transfer) == sorted(planned.moves)
        self._check_running_balances([p for t in made for p in t.postings])
        return [t.id for t in made]

    def _check_running_balances(self, postings) -> None:
        """Each account's newest posting carries the model's balances and posting count."""
        newest = {p.account_id: p for p in sorted(postings, key=lambda p: p.account_seq)}
        for account_id, posting in newest.items():
            account = self.model.accounts[account_id]
            after = posting.balances_after
            assert (after.debits_posted, after.credits_posted, after.debits_pending,
                    after.credits_pending) == account.balances
            assert posting.account_seq == account.posting_count

    def _transfer_command(
        self, plan_of: Callable[[], Plan], send: Callable[[str], Written],
        send_other: Callable[[str], Written],
    ) -> Command:
        return Command(plan_of, send, send_other, self._record_transfers)

    # Drawing legs.

    def _peers(self, account_id: UUID) -> list[UUID]:
        """The other accounts of the same asset (or the account itself, if it has none)."""
        asset_code = self.model.accounts[account_id].asset_code
        return [
            a.id for a in self.model.accounts.values()
            if a.asset_code == asset_code and a.id != account_id
        ] or [account_id]

    def _legs(self, first: UUID, data: st.DataObject) -> tuple[Leg, ...]:
        """Two legs, or a three-leg split, among accounts of the first one's asset."""
        peers = self._peers(first)
        one_side, other_side = (debit, credit) if data.draw(st.booleans()) else (credit, debit)
        if data.draw(st.booleans(), label="split in three") and len(peers) > 1:
            receivers = data.draw(st.lists(st.sampled_from(peers), min_size=2, max_size=2,
                                           unique=True))
            amounts = [data.draw(amounts_minor) for _ in receivers]
            legs = [one_side(first, sum(amounts))]
            legs += [other_side(r, amount) for r, amount in zip(receivers, amounts, strict=True)]
        else:
            amount_minor = data.draw(amounts_minor)
            legs = [one_side(first, amount_minor),
                    other_side(data.draw(st.sampled_from(peers)), amount_minor)]
        asset_code = self.model.accounts[first].asset_code
        return tuple(_twisted(legs, data.draw(leg_twists), asset_code))

    # Accounts.

    def _open(self, **options: Any) -> list[Keyed]:
        flags = {name: options[name] for name in (
            "debits_must_not_exceed_credits", "credits_must_not_exceed_debits", "limit_minor"
        )}

        def send(key: str) -> Written:
            return self.ledger.open_account(**options, metadata=self.metadata, idempotency_key=key)

        def send_other(key: str) -> Written:
            other_side = "credit" if options["normal_side"] == DEBIT else "debit"
            return self.ledger.open_account(
                **{**options, "normal_side": other_side}, metadata=self.metadata,
                idempotency_key=key,
            )

        def record(plan: None, written: Written) -> list[UUID]:
            account_id = written.value.id
            self.model.accounts[account_id] = ModelAccount(
                id=account_id, asset_code=options["asset_code"],
                normal_side=options["normal_side"], **flags,
            )
            return [account_id]

        return self._run(Command(lambda: self.model.check_open(**flags), send, send_other, record))

    @initialize(target=accounts)
    def open_a_bank_a_wallet_and_a_clearing_account(self):
        """Every run starts where money can flow and both flags can bite: a funded wallet
        (no overdraft) and a clearing account whose credits may exceed its debits by 1,000."""
        bank, wallet, clearing = (
            self._open(asset_code="USD", normal_side=normal_side, limit_minor=limit_minor,
                       debits_must_not_exceed_credits=no_overdraft,
                       credits_must_not_exceed_debits=no_overcredit)[0]
            for normal_side, limit_minor, no_overdraft, no_overcredit in (
                ("debit", None, False, False),
                ("credit", None, True, False),
                ("debit", 1_000, False, True),
            )
        )
        funding = TransferSpec((debit(bank.made_id, 10_000), credit(wallet.made_id, 10_000)),
                               self.metadata)
        assert self._transfer([funding])
        return multiple(bank, wallet, clearing)

    @rule(
        targets=(accounts, used_keys),
        asset_code=st.sampled_from(ASSET_CODES),
        normal_side=st.sampled_from(["debit", "credit"]),
        flags=st.sampled_from(["none", "no_overdraft", "no_overdraft", "no_overcredit", "both"]),
        limit_minor=st.one_of(st.none(), st.none(), st.integers(0, 3_000)),
    )
    def open_account(self, asset_code, normal_side, flags, limit_minor):
        return multiple(*self._open(
            asset_code=asset_code, normal_side=normal_side, limit_minor=limit_minor,
            debits_must_not_exceed_credits=flags in ("no_overdraft", "both"),
            credits_must_not_exceed_debits=flags in ("no_overcredit", "both"),
        ))

    @rule(
        target=used_keys,
        account=accounts,
        status=st.sampled_from(["frozen", "frozen", "open", "open", "closed"]),
    )
    def change_account_status(self, account, status):
        """Freeze, unfreeze or close (closing is drawn less often: it ends an account's use)."""
        ledger, account_id = self.ledger, account.made_id
        method, other_method = {
            "frozen": (ledger.freeze_account, ledger.unfreeze_account),
            "open": (ledger.unfreeze_account, ledger.freeze_account),
            "closed": (ledger.close_account, ledger.freeze_account),
        }[status]

        def record(plan: None, written: Written) -> list[UUID]:
            assert written.value.status.value == status
            self.model.accounts[account_id].status = status
            return [account_id]

        return multiple(*self._run(Command(
            lambda: self.model.check_status_change(account_id, status),
            lambda key: method(account_id, idempotency_key=key),
            lambda key: other_method(account_id, idempotency_key=key),
            record,
        )))

    # Transfers.

    def _transfer(self, specs: Sequence[TransferSpec]) -> list[Keyed]:
        other_metadata = {**self.metadata, "variant": "other"}
        others = [TransferSpec(s.legs, other_metadata, s.pending, s.expires_at) for s in specs]
        return self._run(self._transfer_command(
            lambda: self.model.plan_transfers(specs),
            lambda key: self.ledger.transfer_batch(specs, idempotency_key=key),
            lambda key: self.ledger.transfer_batch(others, idempotency_key=key),
        ))

    @rule(targets=(posted_transfers, used_keys), first=accounts, data=st.data())
    def transfer(self, first, data):
        return multiple(*self._transfer([TransferSpec(self._legs(first.made_id, data),
                                                      self.metadata)]))

    @rule(targets=(posted_transfers, used_keys), first=accounts, second=accounts, data=st.data())
    def transfer_linked_batch(self, first, second, data):
        """Two transfers that commit together or not at all."""
        specs = [TransferSpec(self._legs(a.made_id, data), self.metadata) for a in (first, second)]
        return multiple(*self._transfer(specs))

    @rule(targets=(posted_transfers, used_keys), first=accounts, data=st.data())
    def transfer_the_largest_amount(self, first, data):
        """2**128 - 1 minor units: a few of these overflow an unconstrained account."""
        receiver = data.draw(st.sampled_from(self._peers(first.made_id)))
        legs = (debit(first.made_id, AMOUNT_MAX_MINOR), credit(receiver, AMOUNT_MAX_MINOR))
        return multiple(*self._transfer([TransferSpec(legs, self.metadata)]))

    @rule(
        targets=(pending_transfers, used_keys),
        first=accounts,
        data=st.data(),
        expires_in_minutes=st.one_of(st.none(), st.integers(-1, 60)),
    )
    def hold_funds(self, first, data, expires_in_minutes):
        """A pending transfer, with or without a deadline (one not in the future is refused)."""
        expires_at = None
        if expires_in_minutes is not None:
            expires_at = self.clock() + timedelta(minutes=expires_in_minutes)
        spec = TransferSpec(self._legs(first.made_id, data), self.metadata,
                            pending=True, expires_at=expires_at)
        return multiple(*self._transfer([spec]))

    @rule(
        targets=(posted_transfers, used_keys),
        pending=pending_transfers,
        portion=st.sampled_from(["all", "all", "part", "exactly_all", "more_than_held", "zero"]),
    )
    def post_pending(self, pending, portion):
        """Post a hold in full (no amount named) or an amount relative to what it holds."""
        pending_id = pending.made_id
        held_minor = self.model.transfers[pending_id].held_legs[0][2]
        amount_minor = {
            "all": None, "part": max(1, held_minor // 3), "exactly_all": held_minor,
            "more_than_held": held_minor + 1, "zero": 0,
        }[portion]
        return multiple(*self._run(self._transfer_command(
            lambda: self.model.plan_resolution(pending_id, "post_pending", amount_minor),
            lambda key: self.ledger.post_pending(
                pending_id, amount_minor=amount_minor, metadata=self.metadata, idempotency_key=key
            ),
            lambda key: self.ledger.void_pending(
                pending_id, metadata=self.metadata, idempotency_key=key
            ),
        )))

    @rule(
        targets=(posted_transfers, used_keys),
        pending=pending_transfers,
        data=st.data(),
        resolution=st.sampled_from(["post_part", "post_part", "post_all", "void"]),
        twice=st.sampled_from([False] * 7 + [True]),
    )
    def consume_a_hold_and_hold_again(self, pending, data, resolution, twice):
        """A linked batch that resolves a hold and creates a transfer (held or posted) in one
        step, as the exchange does per fill; now and then it names the hold twice."""
        pending_id = pending.made_id
        held = self.model.transfers[pending_id].held_legs
        first = held[0][0]
        if resolution == "void":
            item, ledger_item = ("void_pending", pending_id, None), VoidPending(pending_id)
        else:
            amount_minor = None if resolution == "post_all" else max(1, held[0][2] // 3)
            item = ("post_pending", pending_id, amount_minor)
            ledger_item = PostPending(pending_id, amount_minor=amount_minor)
        spec = TransferSpec(self._legs(first, data), self.metadata,
                            pending=data.draw(st.booleans(), label="hold again"))
        model_items, items = [item, spec], [ledger_item, spec]
        if twice:
            model_items.append(("void_pending", pending_id, None))
            items.append(VoidPending(pending_id))
        others = [VoidPending(pending_id)]
        return multiple(*self._run(self._transfer_command(
            lambda: self.model.plan_linked_batch(model_items),
            lambda key: self.ledger.linked_batch(items, idempotency_key=key),
            lambda key: self.ledger.linked_batch(others, idempotency_key=key),
        )))

    @rule(targets=(posted_transfers, used_keys), pending=pending_transfers)
    def void_pending(self, pending):
        pending_id = pending.made_id
        return multiple(*self._run(self._transfer_command(
            lambda: self.model.plan_resolution(pending_id, "void_pending"),
            lambda key: self.ledger.void_pending(
                pending_id, metadata=self.metadata, idempotency_key=key
            ),
            lambda key: self.ledger.post_pending(
                pending_id, metadata=self.metadata, idempotency_key=key
            ),
        )))

    @rule(
        targets=(posted_transfers, used_keys),
        transfer=st.one_of(posted_transfers, pending_transfers),
    )
    def reverse_transfer(self, transfer):
        """Holds, voids and expiries moved no posted funds: transfer_not_reversible."""
        transfer_id = transfer.made_id
        return multiple(*self._run(self._transfer_command(
            lambda: self.model.plan_reversal(transfer_id),
            lambda key: self.ledger.reverse_transfer(
                transfer_id, metadata=self.metadata, idempotency_key=key
            ),
            lambda key: self.ledger.reverse_transfer(
                transfer_id, metadata={**self.metadata, "variant": "other"}, idempotency_key=key
            ),
        )))

    # Time.

    @rule(minutes=st.integers(1, 60), sweep=st.booleans())
    def advance_clock(self, minutes, sweep):
        """Time passes; holds past their deadline can no longer be posted or voided, and a
        sweep (if run) releases them."""
        self.clock.advance(timedelta(minutes=minutes))
        if sweep:
            self.expire_due_holds()

    @rule()
    def expire_due_holds(self):
        """The sweep releases exactly this run's holds whose deadline has passed.

        The sweep covers the whole shared schema, so it may also release other tests' holds
        once the fake clock is past their deadlines; only this run's are checked.
        """
        due = self.model.due_pending_ids()
        expired = {t.pending_id: t for t in self.ledger.expire_pending()}
        assert {pending_id for pending_id in expired if pending_id in self.model.transfers} == set(
            due
        )
        event(f"holds expired by a sweep: {len(due)}")
        for pending_id in due:
            plan = self.model.plan_resolution(pending_id, "expire_pending")
            resolution = expired[pending_id]
            self.model.commit(plan, [resolution.id])
            assert _moves(resolution) == sorted(plan.transfers[0].moves)

    # Missing things.

    @rule(
        unknown_id=st.uuids(version=4),
        action=st.sampled_from(["freeze", "post", "void", "reverse", "transfer"]),
        first=accounts,
    )
    def name_something_that_does_not_exist(self, unknown_id, action, first):
        def refused(code: str) -> None:
            raise Rejection(code)

        sends = {
            "freeze": lambda key: self.ledger.freeze_account(unknown_id, idempotency_key=key),
            "post": lambda key: self.ledger.post_pending(unknown_id, idempotency_key=key),
            "void": lambda key: self.ledger.void_pending(unknown_id, idempotency_key=key),
            "reverse": lambda key: self.ledger.reverse_transfer(unknown_id, idempotency_key=key),
            "transfer": lambda key: self.ledger.transfer(
                [debit(first.made_id, 1), credit(unknown_id, 1)], idempotency_key=key
            ),
        }
        code = "account_not_found" if action in ("freeze", "transfer") else "transfer_not_found"
        self._run(Command(lambda: refused(code), sends[action], sends[action], lambda p, w: []))

    # Idempotency keys.

    @rule(used=used_keys)
    def replay_same_request(self, used):
        """The same key and request return the first result, marked replayed, and change nothing."""
        written = used.command.send(used.key)
        assert written.replayed
        assert _result_ids(written) == used.result_ids

    @rule(used=used_keys)
    def reuse_key_for_another_request(self, used):
        try:
            used.command.send_other(used.key)
        except DomainError as error:
            assert error.code == "idempotency_key_reused", error.detail
        else:
            raise AssertionError("a key reused for a different request was accepted")

    @precondition(lambda self: self.refused)
    @rule(target=used_keys, data=st.data())
    def resend_a_refused_request(self, data):
        """A refused request recorded nothing, so its key may be sent again (docs/ledger.md);
        the model predicts the outcome afresh, e.g. success once the account is funded."""
        key, command = data.draw(st.sampled_from(self.refused), label="refused request")
        self.refused.remove((key, command))
        return multiple(*self._run(command, key))

    # Reads.

    @rule(transfer=st.one_of(posted_transfers, pending_transfers))
    def read_back_a_transfer(self, transfer):
        """A transfer reads back with its postings, resolution and reversal as modelled."""
        expected = self.model.transfers[transfer.made_id]
        got = self.ledger.get_transfer(transfer.made_id)
        assert got.kind.value == expected.kind
        assert _moves(got) == sorted(expected.moves)
        if expected.kind == "pending":
            resolution_kind, resolution_id = expected.resolved_by or (None, None)
            status = {None: "pending", "post_pending": "posted", "void_pending": "voided",
                      "expire_pending": "expired"}[resolution_kind]
            assert (got.pending_status.value, got.resolved_by_id) == (status, resolution_id)
            assert got.expires_at == expected.expires_at
        assert got.reversed_by_id == expected.reversed_by

    # What must hold after every step.

    @invariant()
    def accounts_match_the_model(self):
        real = {
            account.id: account
            for account in self.ledger.list_accounts(metadata=self.metadata, limit=500)
        }
        assert set(real) == set(self.model.accounts)
        for account_id, expected in self.model.accounts.items():
            account = real[account_id]
            b = account.balances
            assert (b.debits_posted, b.credits_posted, b.debits_pending,
                    b.credits_pending) == expected.balances, account_id
            assert account.available_minor == expected.available_minor
            assert account.status.value == expected.status
            assert account.posting_count == expected.posting_count

    @invariant()
    def every_asset_balances(self):
        """Conservation: per asset, debits equal credits, posted and pending alike."""
        for asset_code, totals in self.model.totals_by_asset().items():
            debits_posted, credits_posted, debits_pending, credits_pending = totals
            assert debits_posted == credits_posted, asset_code
            assert debits_pending == credits_pending, asset_code


def _twisted(legs: list[Leg], twist: str, asset_code: str) -> list[Leg]:
    """Spoil well-formed legs in one way (or none) that the ledger must refuse."""
    first, last = legs[0], legs[-1]
    if twist == "asset_named":
        return [Leg(g.account_id, g.direction, g.amount_minor, asset_code) for g in legs]
    if twist == "wrong_asset":
        return legs[:-1] + [Leg(last.account_id, last.direction, last.amount_minor,
                                ASSET_NOT_USED)]
    if twist == "unbalanced":
        return legs[:-1] + [Leg(last.account_id, last.direction, last.amount_minor + 1)]
    if twist == "same_account_twice":
        return legs[:-1] + [Leg(first.account_id, last.direction, last.amount_minor)]
    return legs


@pytest.fixture(autouse=True)
def _machine_engine(engine: Engine) -> Iterator[None]:
    LedgerStateMachine.engine = engine
    yield
    LedgerStateMachine.engine = None


TestLedgerAgreesWithItsModel = LedgerStateMachine.TestCase
TestLedgerAgreesWithItsModel.settings = settings(
    settings.default,  # the loaded profile: derandomized under CI (see tests/conftest.py)
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
