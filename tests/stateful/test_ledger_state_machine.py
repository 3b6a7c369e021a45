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
    rule,
)
from sqlalchemy import Engine

from pacioli.ledger import DomainError, Ledger, Leg, TransferSpec, Written, credit, debit

from .ledger_model import (
    AMOUNT_MAX_MINOR,
    DEBIT,
    LedgerModel,
    ModelAccount,
    ModelTransfer,
    Plan,
    Rejection,
)

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


@dataclass(eq=False)
class Keyed:
    """Something a write made, with the idempotency key and the request that made it."""

    made_id: UUID  # the account or transfer this handle stands for
    key: str
    result_ids: tuple[UUID, ...]  # what the write returned (a linked batch returns several)
    send: Callable[[str], Written]  # sends the same request again under a key
    send_other: Callable[[str], Written]  # sends a different request under a key


def _result_ids(written: Written) -> tuple[UUID, ...]:
    value = written.value
    return tuple(t.id for t in value) if isinstance(value, list) else (value.id,)


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

    def teardown(self) -> None:
        self.ledger.close()

    # The one way commands are sent: predicted outcome in, real outcome checked.

    def _new_key(self) -> str:
        self.keys_issued += 1
        return f"{self.run_id}-{self.keys_issued}"

    def _send(
        self, expected_code: str | None, send: Callable[[str], Written]
    ) -> tuple[str, Written] | None:
        """Send a fresh-keyed request; check it fails with `expected_code`, or succeeds if None."""
        event(f"outcome: {expected_code or 'accepted'}")
        key = self._new_key()
        try:
            written = send(key)
        except DomainError as error:
            assert error.code == expected_code, (
                f"ledger refused with {error.code} ({error.detail});"
                f" the model expected {expected_code or 'success'}"
            )
            return None
        assert expected_code is None, f"ledger accepted; the model expected {expected_code}"
        assert not written.replayed, "a fresh key was reported as a replay"
        return key, written

    def _send_planned(
        self,
        plan_of: Callable[[], Plan],
        send: Callable[[str], Written],
        send_other: Callable[[str], Written],
    ) -> list[Keyed]:
        """Send a transfer-making command; on success commit the model and return handles."""
        try:
            plan, expected_code = plan_of(), None
        except Rejection as rejection:
            plan, expected_code = None, rejection.code
        sent = self._send(expected_code, send)
        if sent is None:
            return []
        key, written = sent
        made = written.value if isinstance(written.value, list) else [written.value]
        self.model.commit(plan, [t.id for t in made])
        for transfer, planned in zip(made, plan.transfers, strict=True):
            self._check_postings(transfer, planned)
        self._check_running_balances([p for t in made for p in t.postings])
        ids = _result_ids(written)
        return [Keyed(t.id, key, ids, send, send_other) for t in made]

    @staticmethod
    def _check_postings(transfer, planned: ModelTransfer) -> None:
        assert transfer.kind.value == planned.kind
        got = sorted((p.account_id, p.direction.value, p.layer.value, p.amount_minor)
                     for p in transfer.postings)
        assert got == sorted(planned.moves)

    def _check_running_balances(self, postings) -> None:
        """Each account's newest posting carries the model's balances and posting count."""
        newest = {p.account_id: p for p in sorted(postings, key=lambda p: p.account_seq)}
        for account_id, posting in newest.items():
            account = self.model.accounts[account_id]
            after = posting.balances_after
            assert (after.debits_posted, after.credits_posted, after.debits_pending,
                    after.credits_pending) == account.balances
            assert posting.account_seq == account.posting_count

    def _peers(self, account_id: UUID) -> list[UUID]:
        """The other accounts of the same asset (or the account itself, if it has none)."""
        asset_code = self.model.accounts[account_id].asset_code
        return [
            a.id for a in self.model.accounts.values()
            if a.asset_code == asset_code and a.id != account_id
        ] or [account_id]

    def _legs(self, first: UUID, data: st.DataObject) -> list[Leg]:
        """Two legs, or a three-leg split, among accounts of the first one's asset."""
        asset_code = self.model.accounts[first].asset_code
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
        return self._twisted(legs, data.draw(leg_twists), asset_code)

    @staticmethod
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

    # Accounts.

    def _open(self, **options: Any) -> list[Keyed]:
        try:
            self.model.check_open(
                debits_must_not_exceed_credits=options["debits_must_not_exceed_credits"],
                credits_must_not_exceed_debits=options["credits_must_not_exceed_debits"],
                limit_minor=options["limit_minor"],
            )
            expected_code = None
        except Rejection as rejection:
            expected_code = rejection.code

        def send(key: str) -> Written:
            return self.ledger.open_account(**options, metadata=self.metadata, idempotency_key=key)

        def send_other(key: str) -> Written:
            other_side = "credit" if options["normal_side"] == DEBIT else "debit"
            return self.ledger.open_account(
                **{**options, "normal_side": other_side}, metadata=self.metadata,
                idempotency_key=key,
            )

        sent = self._send(expected_code, send)
        if sent is None:
            return []
        key, written = sent
        account = written.value
        self.model.accounts[account.id] = ModelAccount(
            id=account.id, asset_code=options["asset_code"], normal_side=options["normal_side"],
            debits_must_not_exceed_credits=options["debits_must_not_exceed_credits"],
            credits_must_not_exceed_debits=options["credits_must_not_exceed_debits"],
            limit_minor=options["limit_minor"],
        )
        return [Keyed(account.id, key, (account.id,), send, send_other)]

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
        try:
            self.model.check_status_change(account_id, status)
            expected_code = None
        except Rejection as rejection:
            expected_code = rejection.code

        def send(key: str) -> Written:
            return method(account_id, idempotency_key=key)

        def send_other(key: str) -> Written:
            return other_method(account_id, idempotency_key=key)

        sent = self._send(expected_code, send)
        if sent is None:
            return multiple()
        key, written = sent
        assert written.value.status.value == status
        self.model.accounts[account_id].status = status
        return Keyed(account_id, key, (account_id,), send, send_other)

    # Transfers.

    def _transfer(self, specs: Sequence[TransferSpec]) -> list[Keyed]:
        other_metadata = {**self.metadata, "variant": "other"}
        others = [TransferSpec(s.legs, other_metadata, s.pending, s.expires_at) for s in specs]
        return self._send_planned(
            lambda: self.model.plan_transfers(specs),
            lambda key: self.ledger.transfer_batch(specs, idempotency_key=key),
            lambda key: self.ledger.transfer_batch(others, idempotency_key=key),
        )

    @rule(targets=(posted_transfers, used_keys), first=accounts, data=st.data())
    def transfer(self, first, data):
        spec = TransferSpec(tuple(self._legs(first.made_id, data)), self.metadata)
        return multiple(*self._transfer([spec]))

    @rule(targets=(posted_transfers, used_keys), first=accounts, second=accounts, data=st.data())
    def transfer_linked_batch(self, first, second, data):
        specs = [
            TransferSpec(tuple(self._legs(account.made_id, data)), self.metadata)
            for account in (first, second)
        ]
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
        expires_at = None
        if expires_in_minutes is not None:
            expires_at = self.clock() + timedelta(minutes=expires_in_minutes)
        spec = TransferSpec(tuple(self._legs(first.made_id, data)), self.metadata,
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
        return multiple(*self._send_planned(
            lambda: self.model.plan_resolution(pending_id, "post_pending", amount_minor),
            lambda key: self.ledger.post_pending(
                pending_id, amount_minor=amount_minor, metadata=self.metadata, idempotency_key=key
            ),
            lambda key: self.ledger.void_pending(
                pending_id, metadata=self.metadata, idempotency_key=key
            ),
        ))

    @rule(targets=(posted_transfers, used_keys), pending=pending_transfers)
    def void_pending(self, pending):
        pending_id = pending.made_id
        return multiple(*self._send_planned(
            lambda: self.model.plan_resolution(pending_id, "void_pending"),
            lambda key: self.ledger.void_pending(
                pending_id, metadata=self.metadata, idempotency_key=key
            ),
            lambda key: self.ledger.post_pending(
                pending_id, metadata=self.metadata, idempotency_key=key
            ),
        ))

    def _reverse(self, transfer_id: UUID) -> list[Keyed]:
        return self._send_planned(
            lambda: self.model.plan_reversal(transfer_id),
            lambda key: self.ledger.reverse_transfer(
                transfer_id, metadata=self.metadata, idempotency_key=key
            ),
            lambda key: self.ledger.reverse_transfer(
                transfer_id, metadata={**self.metadata, "variant": "other"}, idempotency_key=key
            ),
        )

    @rule(
        targets=(posted_transfers, used_keys),
        transfer=st.one_of(posted_transfers, pending_transfers),
    )
    def reverse_transfer(self, transfer):
        """Holds, voids and expiries moved no posted funds: transfer_not_reversible."""
        return multiple(*self._reverse(transfer.made_id))

    @rule(minutes=st.integers(1, 60), sweep=st.booleans())
    def advance_clock(self, minutes, sweep):
        """Time passes; holds past their deadline can no longer be posted or voided, and a
        sweep (if run) releases them."""
        self.clock.advance(timedelta(minutes=minutes))
        if sweep:
            self.expire_due_holds()

    @rule()
    def expire_due_holds(self):
        """The sweep releases exactly this run's holds whose deadline has passed."""
        due = self.model.due_pending_ids()
        expired = {t.pending_id: t for t in self.ledger.expire_pending()}
        mine = {pending_id for pending_id in expired if pending_id in self.model.transfers}
        assert mine == set(due)
        event(f"holds expired by a sweep: {len(due)}")
        for pending_id in due:
            plan = self.model.plan_resolution(pending_id, "expire_pending")
            resolution = expired[pending_id]
            self.model.commit(plan, [resolution.id])
            self._check_postings(resolution, plan.transfers[0])

    @rule(unknown_id=st.uuids(version=4), action=st.sampled_from(
        ["freeze", "post", "void", "reverse", "transfer"]
    ), first=accounts)
    def name_something_that_does_not_exist(self, unknown_id, action, first):
        sends = {
            "freeze": lambda key: self.ledger.freeze_account(unknown_id, idempotency_key=key),
            "post": lambda key: self.ledger.post_pending(unknown_id, idempotency_key=key),
            "void": lambda key: self.ledger.void_pending(unknown_id, idempotency_key=key),
            "reverse": lambda key: self.ledger.reverse_transfer(unknown_id, idempotency_key=key),
            "transfer": lambda key: self.ledger.transfer(
                [debit(first.made_id, 1), credit(unknown_id, 1)], idempotency_key=key
            ),
        }
        expected = "account_not_found" if action in ("freeze", "transfer") else "transfer_not_found"
        self._send(expected, sends[action])

    # Idempotency keys.

    @rule(used=used_keys)
    def replay_same_request(self, used):
        """The same key and request return the first result, marked replayed, and change nothing."""
        written = used.send(used.key)
        assert written.replayed
        assert _result_ids(written) == used.result_ids

    @rule(used=used_keys)
    def reuse_key_for_another_request(self, used):
        try:
            used.send_other(used.key)
        except DomainError as error:
            assert error.code == "idempotency_key_reused", error.detail
        else:
            raise AssertionError("a key reused for a different request was accepted")

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
