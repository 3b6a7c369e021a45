"""What the database itself guarantees: append-only transfers and postings, an outbox
event per committed change in the same transaction, and exact NUMERIC(39,0) amounts."""

from __future__ import annotations

from uuid import UUID, uuid4

import pytest
from psycopg import errors as pg_errors
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pacioli.ledger import Ledger, TransferSpec, credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.storage.database import make_engine


def open_account(ledger, new_key, asset_code="USD", normal_side="credit", **options) -> UUID:
    return ledger.open_account(
        asset_code=asset_code, normal_side=normal_side, idempotency_key=new_key(), **options
    ).value.id


def a_transfer(ledger, new_key):
    bank = open_account(ledger, new_key, normal_side="debit")
    wallet = open_account(ledger, new_key)
    return ledger.transfer(
        [debit(bank, 500), credit(wallet, 500)], metadata={"k": "v"}, idempotency_key=new_key()
    ).value


# Append-only, enforced by the database.

TAMPERING = [
    "UPDATE transfers SET metadata = '{\"k\": \"forged\"}' WHERE id = :transfer_id",
    "UPDATE transfers SET kind = 'reversal' WHERE id = :transfer_id",
    "DELETE FROM transfers WHERE id = :transfer_id",
    "UPDATE postings SET amount_minor = amount_minor + 1 WHERE transfer_id = :transfer_id",
    "UPDATE postings SET credits_posted_after = 0 WHERE transfer_id = :transfer_id",
    "DELETE FROM postings WHERE transfer_id = :transfer_id",
]


@pytest.mark.parametrize("statement", TAMPERING)
def test_the_database_refuses_to_change_transfers_and_postings(ledger, new_key, statement):
    made = a_transfer(ledger, new_key)
    with ledger.engine.connect() as connection:
        with pytest.raises(DBAPIError) as refused:
            connection.execute(text(statement), {"transfer_id": made.id})
        connection.rollback()
    assert isinstance(refused.value.orig, pg_errors.InsufficientPrivilege)
    assert "append-only" in str(refused.value.orig)
    assert ledger.get_transfer(made.id) == made


@pytest.mark.parametrize(
    "statement", ["TRUNCATE postings", "TRUNCATE transfers CASCADE"]
)
def test_the_database_refuses_to_truncate_transfers_and_postings(fresh_database_url, new_key,
                                                                 statement):
    engine = make_engine(fresh_database_url, pool_size=2)
    try:
        with Ledger(engine) as ledger:
            made = a_transfer(ledger, new_key)
            with engine.connect() as connection:
                with pytest.raises(DBAPIError) as refused:
                    connection.execute(text(statement))
                connection.rollback()
            assert isinstance(refused.value.orig, pg_errors.InsufficientPrivilege)
            assert ledger.get_transfer(made.id) == made
    finally:
        engine.dispose()


# The outbox.


def events_of(engine, aggregate_id) -> list[str]:
    with engine.connect() as connection:
        return list(
            connection.execute(
                text("SELECT event_type FROM outbox WHERE aggregate_id = :id ORDER BY id"),
                {"id": str(aggregate_id)},
            ).scalars()
        )


def xmins_of(engine, transfer_id: UUID) -> set[str]:
    """The ids of the database transactions that wrote each row about one transfer."""
    queries = [
        "SELECT xmin::text FROM transfers WHERE id = :id",
        "SELECT xmin::text FROM postings WHERE transfer_id = :id",
        "SELECT xmin::text FROM outbox WHERE aggregate_id = CAST(:id AS text)",
        "SELECT xmin::text FROM idempotency_keys WHERE result_refs ? CAST(:id AS text)",
    ]
    with engine.connect() as connection:
        found = [
            set(connection.execute(text(q), {"id": transfer_id}).scalars()) for q in queries
        ]
    assert all(found), f"some rows are missing: {found}"
    return set().union(*found)


def test_a_transfer_and_its_event_commit_in_one_database_transaction(ledger, new_key):
    made = a_transfer(ledger, new_key)
    assert len(xmins_of(ledger.engine, made.id)) == 1
    assert events_of(ledger.engine, made.id) == ["transfer.posted"]


def test_each_committed_change_writes_exactly_one_event(ledger, new_key):
    engine = ledger.engine
    bank = open_account(ledger, new_key, normal_side="debit")
    wallet = open_account(ledger, new_key, debits_must_not_exceed_credits=True)
    ledger.freeze_account(wallet, idempotency_key=new_key())
    ledger.unfreeze_account(wallet, idempotency_key=new_key())
    funding, spend = ledger.transfer_batch(
        [
            TransferSpec((debit(bank, 100), credit(wallet, 100))),
            TransferSpec((debit(wallet, 30), credit(bank, 30))),
        ],
        idempotency_key=new_key(),
    ).value
    hold = ledger.transfer([debit(wallet, 20), credit(bank, 20)], pending=True,
                           idempotency_key=new_key()).value
    capture = ledger.post_pending(hold.id, amount_minor=5, idempotency_key=new_key()).value
    hold2 = ledger.transfer([debit(wallet, 10), credit(bank, 10)], pending=True,
                            idempotency_key=new_key()).value
    voided = ledger.void_pending(hold2.id, idempotency_key=new_key()).value
    reversal = ledger.reverse_transfer(spend.id, idempotency_key=new_key()).value
    code = "E" + uuid4().hex[:10].upper()
    ledger.create_asset(code, 2, idempotency_key=new_key())
    assert events_of(engine, wallet) == ["account.opened", "account.frozen", "account.unfrozen"]
    assert events_of(engine, bank) == ["account.opened"]
    expected = {
        funding.id: "transfer.posted", spend.id: "transfer.posted",
        hold.id: "transfer.pending", capture.id: "transfer.post_pending",
        hold2.id: "transfer.pending", voided.id: "transfer.void_pending",
        reversal.id: "transfer.reversal", code: "asset.created",
    }
    for aggregate_id, event_type in expected.items():
        assert events_of(engine, aggregate_id) == [event_type]
    assert len(xmins_of(engine, funding.id) | xmins_of(engine, spend.id)) == 1


def test_rejections_and_replays_write_no_event(ledger, new_key):
    bank = open_account(ledger, new_key, normal_side="debit")
    wallet = open_account(ledger, new_key, debits_must_not_exceed_credits=True)
    key = new_key()
    made = ledger.transfer([debit(bank, 10), credit(wallet, 10)], idempotency_key=key).value
    before = outbox_size(ledger.engine, bank, wallet)
    assert before == 3
    ledger.transfer([debit(bank, 10), credit(wallet, 10)], idempotency_key=key)
    for refused in (
        lambda: ledger.transfer([debit(wallet, 11), credit(bank, 11)], idempotency_key=new_key()),
        lambda: ledger.transfer([debit(bank, 9), credit(wallet, 9)], idempotency_key=key),
        lambda: ledger.unfreeze_account(wallet, idempotency_key=new_key()),
        lambda: ledger.close_account(wallet, idempotency_key=new_key()),
        lambda: ledger.post_pending(made.id, idempotency_key=new_key()),
    ):
        with pytest.raises(e.DomainError):
            refused()
    assert outbox_size(ledger.engine, bank, wallet) == before
    assert events_of(ledger.engine, made.id) == ["transfer.posted"]


def outbox_size(engine, *account_ids: UUID) -> int:
    """Outbox rows about these accounts or any transfer that posted to them."""
    ids = [str(i) for i in account_ids]
    with engine.connect() as connection:
        return connection.execute(
            text(
                "SELECT count(*) FROM outbox o WHERE o.aggregate_id = ANY(:ids)"
                " OR EXISTS (SELECT 1 FROM jsonb_array_elements("
                "   coalesce(o.payload->'postings', '[]'::jsonb)) p"
                "   WHERE p->>'account_id' = ANY(:ids))"
            ),
            {"ids": ids},
        ).scalar_one()


def test_event_payloads_carry_amounts_as_exact_strings(ledger, new_key):
    amount = 2**100 + 1
    bank = open_account(ledger, new_key, "ETH", "debit")
    wallet = open_account(ledger, new_key, "ETH")
    made = ledger.transfer([debit(bank, amount), credit(wallet, amount)],
                           idempotency_key=new_key()).value
    with ledger.engine.connect() as connection:
        payload = connection.execute(
            text("SELECT payload FROM outbox WHERE aggregate_id = :id"), {"id": str(made.id)}
        ).scalar_one()
    assert [p["amount_minor"] for p in payload["postings"]] == [str(amount)] * 2
    assert payload["id"] == str(made.id) and payload["kind"] == "posted"


# NUMERIC(39,0).

AMOUNT_COLUMNS = [
    ("accounts", "limit_minor"), ("accounts", "debits_posted"), ("accounts", "credits_posted"),
    ("accounts", "debits_pending"), ("accounts", "credits_pending"),
    ("postings", "amount_minor"), ("postings", "debits_posted_after"),
    ("postings", "credits_posted_after"), ("postings", "debits_pending_after"),
    ("postings", "credits_pending_after"),
]


def test_every_amount_column_is_numeric_39_0(engine):
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale"
                " FROM information_schema.columns"
                " WHERE table_schema = current_schema()"
            )
        ).all()
    types = {(r.table_name, r.column_name): (r.data_type, r.numeric_precision, r.numeric_scale)
             for r in rows}
    for column in AMOUNT_COLUMNS:
        assert types[column] == ("numeric", 39, 0), column


def test_an_eth_amount_above_2_to_the_64_is_stored_exactly(ledger, new_key):
    amount = 2**127 + 987_654_321  # far beyond BIGINT and float precision
    bank = open_account(ledger, new_key, "ETH", "debit")
    wallet = open_account(ledger, new_key, "ETH")
    ledger.transfer([debit(bank, amount), credit(wallet, amount)], idempotency_key=new_key())
    with ledger.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT credits_posted::text FROM accounts WHERE id = :id"), {"id": wallet}
        ).scalar_one()
        posted = connection.execute(
            text("SELECT amount_minor::text, credits_posted_after::text FROM postings"
                 " WHERE account_id = :id"),
            {"id": wallet},
        ).one()
    assert stored == str(amount)
    assert tuple(posted) == (str(amount), str(amount))
    read_back = ledger.get_account(wallet).balances.credits_posted
    assert read_back == amount and type(read_back) is int


# Query plans.


def test_every_connection_plans_each_execution_for_its_parameters(engine):
    """A generic plan cached while the tables were empty would scan them on every batch."""
    with engine.connect() as connection:
        assert connection.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
        connection.rollback()
        connection.execute(text("SET LOCAL statement_timeout = '5s'"))
        # Still set after a transaction ended: it is a session setting, not a local one.
        connection.commit()
        assert connection.execute(text("SHOW plan_cache_mode")).scalar() == "force_custom_plan"
