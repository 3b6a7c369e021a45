"""Inventory: reserve, commit, release, restock and expiry, exact under concurrency."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from pacioli.commerce import catalog, inventory
from pacioli.commerce import errors as ce
from pacioli.commerce.catalog_tables import commerce_reservations
from pacioli.ledger.storage.tables import outbox
from tests.integration.commerce_support import (
    LATER,
    new_product,
    new_supplier,
    one_variant,
    stock,
)


def reserve(engine, lines, *, expires_at=LATER, reservation_id=None):
    reservation_id = reservation_id or uuid.uuid4()
    with engine.begin() as connection:
        inventory.reserve(connection, reservation_id, lines, expires_at=expires_at)
    return reservation_id


def status(engine, reservation_id):
    with engine.connect() as connection:
        return inventory.reservation_status(connection, reservation_id)


def test_a_reservation_holds_units_until_committed_as_sold(engine):
    variant = one_variant(engine, stock=5)
    held = reserve(engine, [(variant, 2)])
    assert stock(engine, variant) == (3, 2, 0)
    with engine.begin() as connection:
        inventory.commit(connection, held)
        inventory.commit(connection, held)  # a retry changes nothing
    assert stock(engine, variant) == (3, 0, 2)
    assert status(engine, held) == "committed"


def test_a_released_reservation_puts_the_units_back_once(engine):
    variant = one_variant(engine, stock=5)
    held = reserve(engine, [(variant, 4)])
    with engine.begin() as connection:
        inventory.release(connection, held)
        inventory.release(connection, held)
    assert stock(engine, variant) == (5, 0, 0)
    assert status(engine, held) == "released"


def test_reserving_is_all_or_nothing(engine):
    plenty, scarce = one_variant(engine, stock=10), one_variant(engine, stock=1)
    reservation_id = uuid.uuid4()
    with pytest.raises(ce.OutOfStock) as refused:
        reserve(engine, [(plenty, 3), (scarce, 2)], reservation_id=reservation_id)
    assert refused.value.variant_id == scarce
    assert refused.value.code == "out_of_stock"
    assert stock(engine, plenty) == (10, 0, 0)
    assert stock(engine, scarce) == (1, 0, 0)
    with pytest.raises(ce.ReservationNotFound):
        status(engine, reservation_id)


def test_a_refusal_leaves_the_callers_transaction_usable(engine):
    variant = one_variant(engine, stock=1)
    kept = uuid.uuid4()
    with engine.begin() as connection:
        inventory.reserve(connection, kept, [(variant, 1)], expires_at=LATER)
        with pytest.raises(ce.OutOfStock):
            inventory.reserve(connection, uuid.uuid4(), [(variant, 1)], expires_at=LATER)
    assert status(engine, kept) == "held"
    assert stock(engine, variant) == (0, 1, 0)


def test_without_a_savepoint_a_refusal_is_the_callers_to_roll_back(engine):
    """Checkout's step 1 reserves with savepoint=False: the same all-or-nothing, and the
    caller's rollback undoes everything."""
    plenty, scarce = one_variant(engine, stock=10), one_variant(engine, stock=1)
    reservation_id = uuid.uuid4()
    with pytest.raises(ce.OutOfStock), engine.begin() as connection:
        inventory.reserve(connection, reservation_id, [(plenty, 3), (scarce, 2)],
                          expires_at=LATER, savepoint=False)
    assert (stock(engine, plenty), stock(engine, scarce)) == ((10, 0, 0), (1, 0, 0))
    with pytest.raises(ce.ReservationNotFound):
        status(engine, reservation_id)
    with engine.begin() as connection:
        inventory.reserve(connection, reservation_id, [(plenty, 3), (scarce, 1)],
                          expires_at=LATER, savepoint=False)
    assert (stock(engine, plenty), stock(engine, scarce)) == ((7, 3, 0), (0, 1, 0))
    with pytest.raises(ce.VariantNotFound), engine.begin() as connection:
        inventory.reserve(connection, uuid.uuid4(), [(uuid.uuid4(), 1)], expires_at=LATER,
                          savepoint=False)


def test_a_commit_given_the_reserved_lines_sells_them_without_reading_them(engine):
    first, second = one_variant(engine, stock=5), one_variant(engine, stock=5)
    held = reserve(engine, [(first, 1), (second, 2), (first, 1)])
    with engine.begin() as connection:
        inventory.commit(connection, held, lines=[(second, 2), (first, 1), (first, 1)])
        inventory.commit(connection, held, lines=[(second, 2), (first, 2)])  # a no-op
    assert (stock(engine, first), stock(engine, second)) == ((3, 0, 2), (3, 0, 2))
    assert status(engine, held) == "committed"


def test_lines_of_one_variant_are_added_together(engine):
    variant = one_variant(engine, stock=3)
    with pytest.raises(ce.OutOfStock):
        reserve(engine, [(variant, 2), (variant, 2)])
    reserve(engine, [(variant, 2), (variant, 1)])
    assert stock(engine, variant) == (0, 3, 0)


def test_reserving_again_with_the_same_id_is_a_no_op(engine):
    variant = one_variant(engine, stock=5)
    held = reserve(engine, [(variant, 2)])
    reserve(engine, [(variant, 2)], reservation_id=held)
    assert stock(engine, variant) == (3, 2, 0)


def test_reserving_again_a_released_reservation_is_refused_and_changes_nothing(engine):
    variant = one_variant(engine, stock=5)
    released = reserve(engine, [(variant, 2)])
    with engine.begin() as connection:
        inventory.release(connection, released)
    with pytest.raises(ce.ReservationNotHeld):
        reserve(engine, [(variant, 2)], reservation_id=released)
    assert (status(engine, released), stock(engine, variant)) == ("released", (5, 0, 0))


def test_an_unknown_variant_is_named_and_leaves_the_callers_transaction_usable(engine):
    """The unknown variant is found by its foreign key's refusal, not a read first."""
    variant, unknown = one_variant(engine, stock=5), uuid.uuid4()
    kept, refused = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as connection:
        inventory.reserve(connection, kept, [(variant, 1)], expires_at=LATER)
        with pytest.raises(ce.VariantNotFound) as raised:
            inventory.reserve(connection, refused, [(variant, 1), (unknown, 1)],
                              expires_at=LATER)
        assert str(unknown) in str(raised.value)
    assert status(engine, kept) == "held"
    with engine.connect() as connection:
        assert connection.execute(select(commerce_reservations.c.id).where(
            commerce_reservations.c.id == refused)).first() is None
    assert stock(engine, variant) == (4, 1, 0)


def test_concurrent_reservations_with_one_id_hold_the_units_once(engine):
    variant = one_variant(engine, stock=10)
    reservation_id = uuid.uuid4()
    errors: list[Exception] = []
    start = threading.Barrier(6)

    def attempt() -> None:
        start.wait()
        try:
            reserve(engine, [(variant, 3)], reservation_id=reservation_id)
        except Exception as error:  # noqa: BLE001 - the test reports any failure
            errors.append(error)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stock(engine, variant) == (7, 3, 0)


def test_bad_reservations_are_refused(engine):
    variant = one_variant(engine, stock=5)
    with pytest.raises(ce.InvalidCommerceRequest):
        reserve(engine, [(variant, 0)])
    with pytest.raises(ce.InvalidCommerceRequest):
        reserve(engine, [])
    with pytest.raises(ce.VariantNotFound):
        reserve(engine, [(uuid.uuid4(), 1)])
    assert stock(engine, variant) == (5, 0, 0)


def test_a_withdrawn_product_cannot_be_reserved(engine):
    supplier = new_supplier(engine)
    product = new_product(engine, supplier, stock=5)
    catalog.update_product(engine, supplier, product.id, {"active": False})
    with pytest.raises(ce.OutOfStock):
        reserve(engine, [(product.variants[0].id, 1)])


def test_a_committed_reservation_cannot_be_released_but_can_be_restocked(engine):
    variant = one_variant(engine, stock=5)
    held = reserve(engine, [(variant, 3)])
    with engine.begin() as connection:
        inventory.commit(connection, held)
    with engine.begin() as connection, pytest.raises(ce.ReservationNotHeld):
        inventory.release(connection, held)
    with engine.begin() as connection:
        inventory.restock(connection, held, [(variant, 2)])
    assert stock(engine, variant) == (4, 0, 1)
    with engine.begin() as connection, pytest.raises(ce.InvalidCommerceRequest):
        inventory.restock(connection, held, [(variant, 2)])  # only 1 sold unit is left
    assert stock(engine, variant) == (4, 0, 1)


def test_expired_reservations_go_back_on_sale(engine):
    variant = one_variant(engine, stock=5)
    now = datetime.now(UTC)
    due = reserve(engine, [(variant, 2)], expires_at=now - timedelta(seconds=1))
    kept = reserve(engine, [(variant, 1)], expires_at=now + timedelta(hours=1))
    assert inventory.expire_reservations(engine, now) >= 1
    assert status(engine, due) == "expired"
    assert status(engine, kept) == "held"
    assert stock(engine, variant) == (4, 1, 0)
    assert inventory.expire_reservations(engine, now) == 0


def test_committing_an_expired_reservation_takes_the_units_again_if_they_are_there(engine):
    variant = one_variant(engine, stock=2)
    now = datetime.now(UTC)
    late = reserve(engine, [(variant, 2)], expires_at=now - timedelta(seconds=1))
    inventory.expire_reservations(engine, now)
    with engine.begin() as connection:
        inventory.commit(connection, late)
    assert stock(engine, variant) == (0, 0, 2)


def test_committing_an_expired_reservation_whose_units_were_sold_is_out_of_stock(engine):
    variant = one_variant(engine, stock=2)
    now = datetime.now(UTC)
    late = reserve(engine, [(variant, 2)], expires_at=now - timedelta(seconds=1))
    inventory.expire_reservations(engine, now)
    reserve(engine, [(variant, 1)])
    with engine.begin() as connection, pytest.raises(ce.OutOfStock):
        inventory.commit(connection, late)
    assert status(engine, late) == "expired"
    assert stock(engine, variant) == (1, 1, 0)


def stock_low_events(engine, variant_id):
    with engine.connect() as connection:
        return connection.execute(
            select(outbox.c.payload).where(
                outbox.c.event_type == "commerce.stock_low",
                outbox.c.aggregate_id == str(variant_id),
            )
        ).scalars().all()


def test_falling_below_the_threshold_notifies_the_supplier_once(engine):
    variant = one_variant(engine, stock=10, threshold=5)
    reserve(engine, [(variant, 5)])  # 5 left: not below 5
    assert stock_low_events(engine, variant) == []
    reserve(engine, [(variant, 2)])  # 3 left: crossed
    reserve(engine, [(variant, 1)])  # 2 left: already below, no repeat
    (event,) = stock_low_events(engine, variant)
    assert event["stock_available"] == "3"
    assert event["low_stock_threshold"] == "5"


def test_threads_racing_for_the_last_units_never_oversell(engine):
    variant = one_variant(engine, stock=10)
    outcomes: list[str] = []
    start = threading.Barrier(24)

    def buy() -> None:
        start.wait()
        try:
            reserve(engine, [(variant, 1)])
            outcomes.append("reserved")
        except ce.OutOfStock:
            outcomes.append("out_of_stock")

    threads = [threading.Thread(target=buy) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("reserved") == 10
    assert outcomes.count("out_of_stock") == 14
    assert stock(engine, variant) == (0, 10, 0)


def test_multi_line_reservations_in_opposite_orders_do_not_deadlock(engine):
    first, second = one_variant(engine, stock=8), one_variant(engine, stock=8)
    errors: list[Exception] = []
    start = threading.Barrier(8)

    def buy(lines) -> None:
        start.wait()
        try:
            reserve(engine, lines)
        except Exception as error:  # noqa: BLE001 - the test reports any failure
            errors.append(error)

    threads = [threading.Thread(target=buy, args=([(first, 1), (second, 1)] if i % 2
                                                   else [(second, 1), (first, 1)],))
               for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert stock(engine, first) == (0, 8, 0)
    assert stock(engine, second) == (0, 8, 0)


def race_commit_with_expiry(engine) -> None:
    """Commit a due reservation while the expiry job runs; either order sells it once."""
    variant = one_variant(engine, stock=3)
    now = datetime.now(UTC)
    held = reserve(engine, [(variant, 3)], expires_at=now - timedelta(seconds=1))
    start = threading.Barrier(2)
    errors: list[Exception] = []

    def commit() -> None:
        start.wait()
        try:
            with engine.begin() as connection:
                inventory.commit(connection, held)
        except Exception as error:  # noqa: BLE001 - the test reports any failure
            errors.append(error)

    def expire() -> None:
        start.wait()
        inventory.expire_reservations(engine, now)

    threads = [threading.Thread(target=commit), threading.Thread(target=expire)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert status(engine, held) == "committed"
    assert stock(engine, variant) == (0, 0, 3)


def test_expiry_racing_commit_moves_the_units_once(engine):
    for _ in range(5):
        race_commit_with_expiry(engine)


def test_the_expiry_job_finds_nothing_to_do_twice(engine):
    variant = one_variant(engine, stock=1)
    now = datetime.now(UTC)
    reservation_id = reserve(engine, [(variant, 1)], expires_at=now - timedelta(seconds=1))
    inventory.expire_reservations(engine, now)
    with engine.connect() as connection:
        row = connection.execute(select(commerce_reservations.c.status).where(
            commerce_reservations.c.id == reservation_id)).one()
    assert row.status == "expired"
    assert stock(engine, variant) == (1, 0, 0)
