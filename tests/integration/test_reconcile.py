"""`check_ledger` finds nothing on a ledger built through the API, and finds each kind of
corruption made behind the ledger's back with SQL, naming the right check and subject."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import Connection, Engine, text

from pacioli.ledger import Ledger, TransferSpec, credit, debit
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.ledger.storage.database import make_engine


@pytest.fixture
def fresh_engine(fresh_database_url: str) -> Iterator[Engine]:
    engine = make_engine(fresh_database_url, pool_size=2)
    yield engine
    engine.dispose()


@dataclass
class SmallLedger:
    bank: UUID
    alice: UUID
    bob: UUID
    shop: UUID
    voided_hold: UUID
    open_hold: UUID
    transfers: int


def key() -> str:
    return uuid.uuid4().hex


def build_small_ledger(engine: Engine) -> SmallLedger:
    """A few accounts and every kind of transfer: posted, pending, posted in part, voided,
    expired, reversed, a linked batch, and a hold left open."""
    past = datetime.now(UTC) - timedelta(hours=1)
    with Ledger(engine, batching=False) as ledger, Ledger(
        engine, batching=False, clock=lambda: past
    ) as ledger_in_the_past:
        def wallet() -> UUID:
            return ledger.open_account(
                asset_code="USD", normal_side="credit", debits_must_not_exceed_credits=True,
                idempotency_key=key(),
            ).value.id

        bank = ledger.open_account(asset_code="USD", normal_side="debit", idempotency_key=key())
        bank_id, alice, bob, shop = bank.value.id, wallet(), wallet(), wallet()
        ledger.transfer([debit(bank_id, 100_00), credit(alice, 100_00)], idempotency_key=key())
        p2p = ledger.transfer([debit(alice, 25_00), credit(bob, 25_00)], idempotency_key=key())
        ledger.reverse_transfer(p2p.value.id, idempotency_key=key())
        card = ledger.transfer(
            [debit(alice, 40_00), credit(shop, 40_00)], pending=True, idempotency_key=key()
        )
        ledger.post_pending(card.value.id, amount_minor=30_00, idempotency_key=key())
        voided = ledger.transfer(
            [debit(alice, 10_00), credit(bob, 10_00)], pending=True, idempotency_key=key()
        )
        ledger.void_pending(voided.value.id, idempotency_key=key())
        ledger_in_the_past.transfer(
            [debit(alice, 1_00), credit(shop, 1_00)], pending=True,
            expires_at=past + timedelta(minutes=1), idempotency_key=key(),
        )
        assert len(ledger.expire_pending()) == 1
        ledger.transfer_batch(
            [
                TransferSpec((debit(alice, 20_00), credit(shop, 20_00))),
                TransferSpec((debit(shop, 60), credit(bob, 60))),
            ],
            idempotency_key=key(),
        )
        open_hold = ledger.transfer(
            [debit(alice, 5_00), credit(shop, 5_00)], pending=True, idempotency_key=key()
        )
    return SmallLedger(bank_id, alice, bob, shop, voided.value.id, open_hold.value.id, 12)


def breaks_found(engine: Engine) -> set[tuple[str, str]]:
    return {(b.check, b.subject_id) for b in check_ledger(engine).breaks}


# Corrupting the ledger behind its back.


def drop_account_constraint(connection: Connection, name: str) -> None:
    connection.execute(text(f"ALTER TABLE accounts DROP CONSTRAINT {name}"))


def insert_transfer(connection: Connection, *, kind: str = "posted",
                    pending_id: UUID | None = None) -> UUID:
    transfer_id = uuid.uuid4()
    connection.execute(
        text(
            "INSERT INTO transfers (id, kind, pending_id, metadata, created_at)"
            " VALUES (:id, :kind, :pending_id, '{}', now())"
        ),
        {"id": transfer_id, "kind": kind, "pending_id": pending_id},
    )
    return transfer_id


def append_posting(
    connection: Connection, *, account_id: UUID, transfer_id: UUID, leg_index: int,
    direction: str, amount: int, layer: str = "posted", asset_code: str | None = None,
    seq_skip: int = 0,
) -> None:
    """Append a posting with correct balances after it and update the account to match,
    as the ledger would, but without any of its checks."""
    account = connection.execute(
        text("SELECT * FROM accounts WHERE id = :id"), {"id": account_id}
    ).one()
    column = f"{direction}s_{layer}"
    after = {name: getattr(account, name) for name in
             ("debits_posted", "credits_posted", "debits_pending", "credits_pending")}
    after[column] += amount
    seq = account.posting_count + 1 + seq_skip
    connection.execute(
        text(
            "INSERT INTO postings (account_id, account_seq, transfer_id, leg_index, asset_code,"
            " direction, layer, amount_minor, debits_posted_after, credits_posted_after,"
            " debits_pending_after, credits_pending_after, created_at) VALUES (:account_id,"
            " :seq, :transfer_id, :leg_index, :asset_code, :direction, :layer, :amount,"
            " :debits_posted, :credits_posted, :debits_pending, :credits_pending, now())"
        ),
        {"account_id": account_id, "seq": seq, "transfer_id": transfer_id,
         "leg_index": leg_index, "asset_code": asset_code or account.asset_code,
         "direction": direction, "layer": layer, "amount": amount, **after},
    )
    connection.execute(
        text(
            f"UPDATE accounts SET {column} = :value, posting_count = posting_count + 1"
            " WHERE id = :id"
        ),
        {"value": after[column], "id": account_id},
    )


def append_transfer(connection: Connection, *, debit_id: UUID, credit_id: UUID,
                    debit_amount: int, credit_amount: int, layer: str = "posted",
                    kind: str = "posted", pending_id: UUID | None = None) -> UUID:
    transfer_id = insert_transfer(connection, kind=kind, pending_id=pending_id)
    append_posting(connection, account_id=debit_id, transfer_id=transfer_id, leg_index=0,
                   direction="debit", amount=debit_amount, layer=layer)
    append_posting(connection, account_id=credit_id, transfer_id=transfer_id, leg_index=1,
                   direction="credit", amount=credit_amount, layer=layer)
    return transfer_id


# The tests.


def test_a_ledger_built_through_the_api_has_no_breaks(fresh_engine):
    small = build_small_ledger(fresh_engine)

    report = check_ledger(fresh_engine)

    assert report.clean, report.breaks
    assert not report.truncated
    rows = {c.name: c.rows_checked for c in report.checks}
    assert rows["transfer_balanced"] == small.transfers
    assert rows["account_balances_match_postings"] == 4
    assert rows["pending_resolved_at_most_once"] == 4
    assert rows["running_balance_consistent"] > small.transfers * 2
    assert all(c.break_count == 0 for c in report.checks)


def test_an_empty_ledger_has_no_breaks(fresh_engine):
    report = check_ledger(fresh_engine)
    assert report.clean
    assert {c.rows_checked for c in report.checks} == {0}


def test_an_unbalanced_transfer_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        unbalanced = append_transfer(connection, debit_id=small.bank, credit_id=small.alice,
                                     debit_amount=100, credit_amount=90)

    report = check_ledger(fresh_engine)

    assert {(b.check, b.subject_id) for b in report.breaks} == {
        ("transfer_balanced", str(unbalanced))
    }
    assert "USD posted layer: debits 100, credits 90" in report.breaks[0].detail


def test_a_transfer_without_postings_is_reported(fresh_engine):
    build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        empty = insert_transfer(connection)

    assert breaks_found(fresh_engine) == {("transfer_has_postings", str(empty))}


def test_a_posting_whose_transfer_or_account_is_missing_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    missing_account, missing_transfer = uuid.uuid4(), uuid.uuid4()
    with fresh_engine.begin() as connection:
        for leg_index, account_id in enumerate((small.alice, missing_account)):
            connection.execute(
                text(
                    "INSERT INTO postings (account_id, account_seq, transfer_id, leg_index,"
                    " asset_code, direction, layer, amount_minor, debits_posted_after,"
                    " credits_posted_after, debits_pending_after, credits_pending_after,"
                    " created_at) VALUES (:account_id, 1000, :transfer_id, :leg_index, 'USD',"
                    " 'debit', 'posted', 1, 0, 0, 0, 0, now())"
                ),
                {"account_id": account_id, "transfer_id": missing_transfer,
                 "leg_index": leg_index},
            )
    found = {(check, subject) for check, subject in breaks_found(fresh_engine)
             if check == "posting_references_exist"}
    assert found == {
        ("posting_references_exist", f"{small.alice}#1000"),
        ("posting_references_exist", f"{missing_account}#1000"),
    }


def test_a_posting_in_another_asset_than_its_account_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with Ledger(fresh_engine, batching=False) as ledger:
        euro = ledger.open_account(asset_code="EUR", normal_side="debit", idempotency_key=key())
    with fresh_engine.begin() as connection:
        transfer_id = insert_transfer(connection)
        append_posting(connection, account_id=euro.value.id, transfer_id=transfer_id,
                       leg_index=0, direction="debit", amount=500)
        append_posting(connection, account_id=small.bank, transfer_id=transfer_id, leg_index=1,
                       direction="credit", amount=500, asset_code="EUR")

    assert breaks_found(fresh_engine) == {("posting_asset_matches_account", str(small.bank))}


def test_a_stored_balance_that_differs_from_the_postings_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        connection.execute(
            text("UPDATE accounts SET credits_posted = credits_posted + 1 WHERE id = :id"),
            {"id": small.bob},
        )

    report = check_ledger(fresh_engine)

    # The last running balance and the sum of postings agree with each other, not the row.
    assert {(b.check, b.subject_id) for b in report.breaks} == {
        ("account_balances_match_postings", str(small.bob)),
        ("running_balance_matches_account", str(small.bob)),
    }
    assert "credits_posted: stored 2561, postings give 2560" in report.breaks[0].detail


def test_a_wrong_posting_count_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        connection.execute(
            text("UPDATE accounts SET posting_count = posting_count + 1 WHERE id = :id"),
            {"id": small.shop},
        )

    assert breaks_found(fresh_engine) == {("account_balances_match_postings", str(small.shop))}


def test_a_gap_in_an_accounts_posting_sequence_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        transfer_id = insert_transfer(connection)
        append_posting(connection, account_id=small.bank, transfer_id=transfer_id, leg_index=0,
                       direction="debit", amount=700, seq_skip=1)
        append_posting(connection, account_id=small.alice, transfer_id=transfer_id, leg_index=1,
                       direction="credit", amount=700)

    assert breaks_found(fresh_engine) == {("running_balance_sequence", str(small.bank))}


def test_a_running_balance_that_does_not_follow_from_the_previous_one_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        connection.execute(text("ALTER TABLE postings DISABLE TRIGGER postings_append_only"))
        connection.execute(
            text(
                "UPDATE postings SET credits_posted_after = credits_posted_after + 5"
                " WHERE account_id = :id AND account_seq = 1"
            ),
            {"id": small.alice},
        )
        connection.execute(text("ALTER TABLE postings ENABLE TRIGGER postings_append_only"))

    report = check_ledger(fresh_engine)

    assert {(b.check, b.subject_id) for b in report.breaks} == {
        ("running_balance_consistent", str(small.alice))
    }
    assert report.breaks[0].detail.startswith("posting 1:")


def test_a_last_running_balance_that_differs_from_the_account_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        connection.execute(text("ALTER TABLE postings DISABLE TRIGGER postings_append_only"))
        connection.execute(
            text(
                "UPDATE postings SET debits_posted_after = debits_posted_after + 1"
                " WHERE account_id = :id AND account_seq = 1"
            ),
            {"id": small.bank},
        )
        connection.execute(text("ALTER TABLE postings ENABLE TRIGGER postings_append_only"))

    # The bank has one posting, so its first running balance is also its last.
    assert breaks_found(fresh_engine) == {
        ("running_balance_consistent", str(small.bank)),
        ("running_balance_matches_account", str(small.bank)),
    }


@pytest.mark.parametrize(
    ("flag", "constraint", "limit_minor", "debit_amount"),
    [
        ("debits_must_not_exceed_credits", "ck_accounts_debits_within_credits", None, 1),
        ("debits_must_not_exceed_credits", "ck_accounts_debits_within_credits", 50, 51),
        ("credits_must_not_exceed_debits", "ck_accounts_credits_within_debits", None, 1),
    ],
)
def test_an_account_beyond_its_flags_is_reported(fresh_engine, flag, constraint, limit_minor,
                                                 debit_amount):
    with Ledger(fresh_engine, batching=False) as ledger:
        flagged = ledger.open_account(
            asset_code="USD", normal_side="credit", limit_minor=limit_minor,
            idempotency_key=key(), **{flag: True},
        ).value.id
        other = ledger.open_account(
            asset_code="USD", normal_side="debit", idempotency_key=key()
        ).value.id
    with fresh_engine.begin() as connection:
        drop_account_constraint(connection, constraint)
        if flag == "debits_must_not_exceed_credits":
            append_transfer(connection, debit_id=flagged, credit_id=other,
                            debit_amount=debit_amount, credit_amount=debit_amount)
        else:
            append_transfer(connection, debit_id=other, credit_id=flagged,
                            debit_amount=debit_amount, credit_amount=debit_amount)

    report = check_ledger(fresh_engine)

    assert {(b.check, b.subject_id) for b in report.breaks} == {
        ("account_within_flags", str(flagged))
    }
    assert report.breaks[0].detail.startswith(f"{flag} broken")
    assert "first beyond it after posting 1" in report.breaks[0].detail


def test_an_overdraft_within_the_limit_is_not_a_break(fresh_engine):
    with Ledger(fresh_engine, batching=False) as ledger:
        wallet = ledger.open_account(
            asset_code="USD", normal_side="credit", debits_must_not_exceed_credits=True,
            limit_minor=50, idempotency_key=key(),
        ).value.id
        bank = ledger.open_account(asset_code="USD", normal_side="debit", idempotency_key=key())
        ledger.transfer([debit(wallet, 50), credit(bank.value.id, 50)], idempotency_key=key())

    assert check_ledger(fresh_engine).clean


def test_a_negative_balance_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        drop_account_constraint(connection, "ck_accounts_balances_nonnegative")
        # A release of a hold that was never made: balanced, but the pending layer goes below 0.
        append_transfer(connection, debit_id=small.bank, credit_id=small.bob,
                        debit_amount=-100, credit_amount=-100, layer="pending")

    report = check_ledger(fresh_engine)

    assert {(b.check, b.subject_id) for b in report.breaks} == {
        ("balances_nonnegative", str(small.bank)),
        ("balances_nonnegative", str(small.bob)),
        ("pending_balances_match_open_holds", str(small.bank)),
        ("pending_balances_match_open_holds", str(small.bob)),
    }
    bank_break = next(b for b in report.breaks
                      if (b.check, b.subject_id) == ("balances_nonnegative", str(small.bank)))
    assert "stored debits_pending is -100" in bank_break.detail


def test_a_closed_account_with_a_balance_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        connection.execute(
            text("UPDATE accounts SET status = 'closed' WHERE id = :id"), {"id": small.bob}
        )

    assert breaks_found(fresh_engine) == {("closed_account_zero_balance", str(small.bob))}


def test_a_pending_transfer_resolved_twice_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        connection.execute(text("DROP INDEX uq_transfers_pending_id"))
        # A second void of the voided hold. It releases what the open 5.00 hold reserves on
        # the same accounts, so no balance goes negative; the open hold stays listed, but
        # its reservation is gone from the pending balances.
        append_transfer(connection, debit_id=small.alice, credit_id=small.shop,
                        debit_amount=-5_00, credit_amount=-5_00, layer="pending",
                        kind="void_pending", pending_id=small.voided_hold)

    report = check_ledger(fresh_engine)

    assert {(b.check, b.subject_id) for b in report.breaks} == {
        ("pending_resolved_at_most_once", str(small.voided_hold)),
        ("pending_balances_match_open_holds", str(small.alice)),
        ("pending_balances_match_open_holds", str(small.shop)),
    }
    twice = next(b for b in report.breaks if b.check == "pending_resolved_at_most_once")
    assert twice.detail.startswith("resolved 2 times")


def test_a_hold_resolved_without_releasing_all_it_held_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        # A void of the open 5.00 hold that releases only 3.00, recorded as the ledger
        # records a resolution (the hold leaves open_pending_transfers).
        append_transfer(connection, debit_id=small.alice, credit_id=small.shop,
                        debit_amount=-3_00, credit_amount=-3_00, layer="pending",
                        kind="void_pending", pending_id=small.open_hold)
        connection.execute(
            text("DELETE FROM open_pending_transfers WHERE transfer_id = :id"),
            {"id": small.open_hold},
        )

    report = check_ledger(fresh_engine)

    assert {(b.check, b.subject_id) for b in report.breaks} == {
        ("pending_balances_match_open_holds", str(small.alice)),
        ("pending_balances_match_open_holds", str(small.shop)),
    }
    alice_break = next(b for b in report.breaks if b.subject_id == str(small.alice))
    assert alice_break.detail == "debits_pending: stored 200, unresolved holds reserve 0"


def test_a_resolution_of_a_transfer_that_is_not_pending_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        posted = append_transfer(connection, debit_id=small.bank, credit_id=small.alice,
                                 debit_amount=300, credit_amount=300)
        append_transfer(connection, debit_id=small.bank, credit_id=small.alice,
                        debit_amount=1, credit_amount=1, kind="void_pending", pending_id=posted)

    assert breaks_found(fresh_engine) == {("pending_resolved_at_most_once", str(posted))}


def test_an_open_hold_missing_from_open_pending_transfers_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        connection.execute(
            text("DELETE FROM open_pending_transfers WHERE transfer_id = :id"),
            {"id": small.open_hold},
        )

    assert breaks_found(fresh_engine) == {("open_pending_transfers_match", str(small.open_hold))}


def test_a_resolved_hold_listed_as_open_is_reported(fresh_engine):
    small = build_small_ledger(fresh_engine)
    with fresh_engine.begin() as connection:
        connection.execute(
            text("INSERT INTO open_pending_transfers (transfer_id) VALUES (:id)"),
            {"id": small.voided_hold},
        )

    assert breaks_found(fresh_engine) == {
        ("open_pending_transfers_match", str(small.voided_hold))
    }


def test_the_listed_breaks_are_capped(fresh_engine):
    with fresh_engine.begin() as connection:
        for _ in range(3):
            insert_transfer(connection)

    report = check_ledger(fresh_engine, subjects_max=2)

    assert report.truncated
    assert [b.check for b in report.breaks] == ["transfer_has_postings"] * 2
