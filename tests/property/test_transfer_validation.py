"""Properties of transfer validation and of the StateMachine's postings (no database).

- validate_transfer_spec accepts exactly the well-formed specs (2 to 64 legs with a debit
  and a credit, distinct accounts, amounts from 1 to 2**128 - 1), balanced or not;
- among well-formed specs, the StateMachine accepts exactly those balanced per asset;
- after any sequence of commands, every posting's running balances are the cumulative
  sums of the account's postings, and each transfer's debits equal its credits per asset
  and layer.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pacioli.ledger.domain import commands as c
from pacioli.ledger.domain import errors as e
from pacioli.ledger.domain.ids import uuid7
from pacioli.ledger.domain.model import (
    AccountFlags,
    AccountState,
    AccountStatus,
    Balances,
    Direction,
    Layer,
    Leg,
    Posting,
    TransferKind,
    TransferSpec,
)
from pacioli.ledger.domain.money import AMOUNT_MAX_MINOR, Asset
from pacioli.ledger.domain.state_machine import (
    LEGS_MAX,
    Outcome,
    StateMachine,
    validate_transfer_spec,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ASSET_CODES = ("USD", "JPY")
ACCOUNT_COUNT = 6  # three per asset


def make_machine(accounts: list[AccountState]) -> StateMachine:
    return StateMachine(
        assets={"USD": Asset("USD", 2), "JPY": Asset("JPY", 0)},
        accounts={a.id: a for a in accounts},
        transfers={},
        keys={},
        now=NOW,
        new_id=uuid7,
    )


def make_account(asset_code: str, *, flags: AccountFlags = AccountFlags()) -> AccountState:
    return AccountState(
        id=uuid7(),
        asset_code=asset_code,
        normal_side=Direction.CREDIT,
        status=AccountStatus.OPEN,
        flags=flags,
        limit_minor=None,
        balances=Balances(),
        posting_count=0,
        metadata={},
        created_at=NOW,
    )


def submit(machine: StateMachine, command: c.Command) -> Outcome | e.DomainError:
    return machine.apply(c.Submission.of(command, client_id="p", idempotency_key=uuid4().hex))


# validate_transfer_spec against a model of its rules.

ACCOUNT_IDS = [UUID(int=i + 1) for i in range(8)]
leg_amounts = st.one_of(
    st.integers(min_value=1, max_value=AMOUNT_MAX_MINOR),
    st.sampled_from([1, AMOUNT_MAX_MINOR]),
    st.sampled_from([0, -1, AMOUNT_MAX_MINOR + 1]),
)
legs = st.builds(
    Leg,
    account_id=st.sampled_from(ACCOUNT_IDS),
    direction=st.sampled_from(Direction),
    amount_minor=leg_amounts,
)


def expected_rejection(spec: TransferSpec) -> type[e.DomainError] | None:
    """What validate_transfer_spec should say, straight from the rules as documented."""
    if len(spec.legs) > LEGS_MAX:
        return e.TooManyLegs
    if len(spec.legs) < 2 or {leg.direction for leg in spec.legs} != set(Direction):
        return e.TooFewLegs
    seen = set()
    for leg in spec.legs:
        if not 1 <= leg.amount_minor <= AMOUNT_MAX_MINOR:
            return e.InvalidAmount
        if leg.account_id in seen:
            return e.DuplicateAccountInTransfer
        seen.add(leg.account_id)
    return None


@given(st.lists(legs, max_size=10))
def test_validate_transfer_spec_accepts_exactly_the_well_formed_specs(spec_legs):
    spec = TransferSpec(tuple(spec_legs))
    expected = expected_rejection(spec)
    if expected is None:
        validate_transfer_spec(spec, now=NOW)
    else:
        with pytest.raises(expected):
            validate_transfer_spec(spec, now=NOW)


@given(count=st.integers(min_value=LEGS_MAX + 1, max_value=LEGS_MAX + 10))
def test_validate_transfer_spec_refuses_more_than_legs_max_legs(count):
    spec_legs = [Leg(uuid7(), Direction.DEBIT, 1)] + [
        Leg(uuid7(), Direction.CREDIT, 1) for _ in range(count - 1)
    ]
    with pytest.raises(e.TooManyLegs):
        validate_transfer_spec(TransferSpec(tuple(spec_legs)), now=NOW)


# The StateMachine accepts exactly the balanced well-formed specs.


@st.composite
def well_formed_specs(draw) -> tuple[list[AccountState], TransferSpec]:
    accounts = [make_account(ASSET_CODES[i % 2]) for i in range(ACCOUNT_COUNT)]
    chosen = draw(st.lists(st.sampled_from(accounts), min_size=2, unique_by=id, max_size=6))
    directions = draw(
        st.lists(st.sampled_from(Direction), min_size=len(chosen), max_size=len(chosen))
        .filter(lambda ds: set(ds) == set(Direction))
    )
    # Small amounts make balanced specs common enough to matter.
    amounts = draw(st.lists(st.integers(1, 5), min_size=len(chosen), max_size=len(chosen)))
    spec_legs = tuple(
        Leg(a.id, d, amount) for a, d, amount in zip(chosen, directions, amounts, strict=True)
    )
    return accounts, TransferSpec(spec_legs)


def is_balanced_per_asset(spec: TransferSpec, accounts: list[AccountState]) -> bool:
    asset_of = {a.id: a.asset_code for a in accounts}
    net: dict[str, int] = defaultdict(int)
    for leg in spec.legs:
        sign = 1 if leg.direction is Direction.DEBIT else -1
        net[asset_of[leg.account_id]] += sign * leg.amount_minor
    return all(total == 0 for total in net.values())


@given(well_formed_specs())
def test_the_state_machine_accepts_exactly_the_specs_balanced_per_asset(accounts_and_spec):
    accounts, spec = accounts_and_spec
    validate_transfer_spec(spec, now=NOW)  # well formed, balanced or not
    result = submit(make_machine(accounts), c.CreateTransfers((spec,)))
    if is_balanced_per_asset(spec, accounts):
        assert isinstance(result, Outcome), result
    else:
        assert isinstance(result, e.UnbalancedTransfer), result


# Running balances and double entry after any sequence of commands.

steps = st.lists(
    st.tuples(
        st.sampled_from(["transfer", "hold", "post", "post_part", "void", "expire", "reverse"]),
        st.integers(0, ACCOUNT_COUNT - 1),
        st.integers(0, ACCOUNT_COUNT - 1),
        st.integers(1, 500),
        st.integers(0, 1000),
    ),
    min_size=3,
    max_size=40,
)


def apply_step(machine: StateMachine, accounts: list[AccountState], step, made: list) -> None:
    """Turn one drawn step into a command; rejections are fine, they must change nothing."""
    op, i, j, amount, pick = step
    payer = accounts[i]
    # Pair with an account of the same asset (accounts alternate USD, JPY).
    payee = accounts[(i + 2 * (1 + j % 2)) % ACCOUNT_COUNT]
    legs = (Leg(payer.id, Direction.DEBIT, amount), Leg(payee.id, Direction.CREDIT, amount))
    holds = [t for t in made if t.kind is TransferKind.PENDING]
    if op == "transfer":
        command = c.CreateTransfers((TransferSpec(legs),))
    elif op == "hold":
        expires_at = machine.now + timedelta(minutes=1 + pick % 60) if pick % 2 else None
        command = c.CreateTransfers((TransferSpec(legs, pending=True, expires_at=expires_at),))
    elif op in ("post", "post_part", "void", "expire") and holds:
        hold = holds[pick % len(holds)]
        if op == "void":
            command = c.VoidPending(hold.id)
        elif op == "expire":
            machine.now += timedelta(minutes=pick % 90)
            command = c.ExpirePending(hold.id)
        else:
            command = c.PostPending(hold.id, amount if op == "post_part" else None)
    elif op == "reverse" and made:
        command = c.ReverseTransfer(made[pick % len(made)].id)
    else:
        return
    result = submit(machine, command)
    if isinstance(result, Outcome):
        made.extend(result.transfers)


def world() -> tuple[StateMachine, list[AccountState]]:
    """Six accounts, alternating USD and JPY; two of them refuse overdrafts."""
    accounts = [
        make_account(
            ASSET_CODES[i % 2],
            flags=AccountFlags(debits_must_not_exceed_credits=i in (2, 3)),
        )
        for i in range(ACCOUNT_COUNT)
    ]
    return make_machine(accounts), accounts


def postings_by_account(machine: StateMachine) -> dict[UUID, list[Posting]]:
    by_account: dict[UUID, list[Posting]] = defaultdict(list)
    for transfer in machine.effects.transfers:
        for posting in transfer.postings:
            by_account[posting.account_id].append(posting)
    return by_account


@given(steps)
@settings(max_examples=150)
def test_running_balances_equal_the_cumulative_sums_of_postings(drawn_steps):
    machine, accounts = world()
    made: list = []
    for step in drawn_steps:
        apply_step(machine, accounts, step, made)
    by_account = postings_by_account(machine)
    for account in accounts:
        running = Balances()
        account_postings = by_account.get(account.id, [])
        for seq, posting in enumerate(account_postings, start=1):
            assert posting.account_seq == seq
            running = running.with_delta(posting.direction, posting.layer, posting.amount_minor)
            assert posting.balances_after == running
            assert min(vars_of(running)) >= 0
            if account.flags.debits_must_not_exceed_credits:
                assert running.debits_posted + running.debits_pending <= running.credits_posted
        final = machine.accounts[account.id]
        assert final.balances == running
        assert final.posting_count == len(account_postings)


@given(steps)
@settings(max_examples=150)
def test_every_transfer_balances_per_asset_and_layer(drawn_steps):
    machine, accounts = world()
    made: list = []
    for step in drawn_steps:
        apply_step(machine, accounts, step, made)
    overall: dict[tuple[str, Layer], int] = defaultdict(int)
    for transfer in machine.effects.transfers:
        net: dict[tuple[str, Layer], int] = defaultdict(int)
        for p in transfer.postings:
            sign = 1 if p.direction is Direction.DEBIT else -1
            net[p.asset_code, p.layer] += sign * p.amount_minor
            overall[p.asset_code, p.layer] += sign * p.amount_minor
        assert all(total == 0 for total in net.values()), transfer
    assert all(total == 0 for total in overall.values())
    # The same holds for the accounts' stored totals.
    for asset_code in ASSET_CODES:
        held = [a.balances for a in machine.accounts.values() if a.asset_code == asset_code]
        assert sum(b.debits_posted for b in held) == sum(b.credits_posted for b in held)
        assert sum(b.debits_pending for b in held) == sum(b.credits_pending for b in held)


def vars_of(balances: Balances) -> tuple[int, int, int, int]:
    return (
        balances.debits_posted,
        balances.credits_posted,
        balances.debits_pending,
        balances.credits_pending,
    )


@given(steps, st.integers(1, 120))
@settings(max_examples=50)
def test_a_hold_expires_only_at_or_after_its_deadline(drawn_steps, minutes):
    machine, accounts = world()
    made: list = []
    for step in drawn_steps:
        apply_step(machine, accounts, step, made)
    payer, payee = accounts[0], accounts[2]
    deadline = machine.now + timedelta(minutes=minutes)
    legs = (Leg(payer.id, Direction.DEBIT, 1), Leg(payee.id, Direction.CREDIT, 1))
    spec = TransferSpec(legs, pending=True, expires_at=deadline)
    hold = submit(machine, c.CreateTransfers((spec,)))
    assert isinstance(hold, Outcome), hold
    hold_id = hold.transfers[0].id
    machine.now = deadline - timedelta(microseconds=1)
    assert isinstance(submit(machine, c.ExpirePending(hold_id)), e.PendingTransferNotExpired)
    machine.now = deadline
    assert isinstance(submit(machine, c.ExpirePending(hold_id)), Outcome)
