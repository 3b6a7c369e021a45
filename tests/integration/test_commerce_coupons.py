"""Coupons: redeemed exactly once under concurrency, limits per user and overall, validity
windows, and how pricing treats a coupon that no longer applies."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pacioli.commerce import cart_edits, promotion_admin, promotions
from pacioli.commerce import errors as ce
from pacioli.commerce.pricing import price_cart
from pacioli.commerce.promotion_admin import DiscountTerms
from tests.integration.commerce_support import IDLE_S, one_variant, user_cart_with

NOW = datetime.now(UTC)


def new_coupon(engine, *, total=None, per_user=None, kind="percent", value=1000,
               currency=None, starts_at=None, ends_at=None, min_subtotal=0) -> str:
    code = "T" + uuid.uuid4().hex[:10].upper()
    promotion_admin.create_coupon(
        engine, code, DiscountTerms(kind, value, currency, min_subtotal, starts_at, ends_at),
        usage_limit_total=total, usage_limit_per_user=per_user,
    )
    return code


def redeem(engine, code, *, user_id=None, order_id=None, now=NOW) -> uuid.UUID:
    order_id = order_id or uuid.uuid4()
    with engine.begin() as connection:
        promotions.redeem_coupon(connection, code, user_id=user_id or uuid.uuid4(),
                                 order_id=order_id, now=now)
    return order_id


def test_a_redemption_counts_once_per_order(engine):
    code = new_coupon(engine, total=5)
    order = redeem(engine, code)
    redeem(engine, code, order_id=order)
    assert promotion_admin.get_coupon(engine, code).redeemed_count == 1


def test_codes_are_case_insensitive(engine):
    code = new_coupon(engine)
    redeem(engine, code.lower())
    assert promotion_admin.get_coupon(engine, code).redeemed_count == 1


def test_unredeeming_gives_the_use_back_once(engine):
    code = new_coupon(engine, total=1)
    order = redeem(engine, code)
    with pytest.raises(ce.CouponExhausted):
        redeem(engine, code)
    with engine.begin() as connection:
        promotions.unredeem_coupon(connection, order)
        promotions.unredeem_coupon(connection, order)
    assert promotion_admin.get_coupon(engine, code).redeemed_count == 0
    redeem(engine, code)


def test_a_coupon_outside_its_window_or_withdrawn_is_expired(engine):
    past = new_coupon(engine, ends_at=NOW - timedelta(seconds=1))
    future = new_coupon(engine, starts_at=NOW + timedelta(days=1))
    withdrawn = new_coupon(engine)
    promotion_admin.set_coupon_active(engine, withdrawn, active=False)
    for code in (past, future, withdrawn):
        with pytest.raises(ce.CouponExpired) as refused:
            redeem(engine, code)
        assert refused.value.code == "coupon_expired"
        assert promotion_admin.get_coupon(engine, code).redeemed_count == 0


def test_an_unknown_code_is_not_found(engine):
    with pytest.raises(ce.CouponNotFound):
        redeem(engine, "NO-SUCH-" + uuid.uuid4().hex[:8])


def test_the_per_user_limit_counts_that_users_redemptions(engine):
    code = new_coupon(engine, per_user=2)
    shopper = uuid.uuid4()
    redeem(engine, code, user_id=shopper)
    redeem(engine, code, user_id=shopper)
    with pytest.raises(ce.CouponExhausted):
        redeem(engine, code, user_id=shopper)
    redeem(engine, code)  # another user
    assert promotion_admin.get_coupon(engine, code).redeemed_count == 3


def test_a_refused_redemption_leaves_the_callers_transaction_as_it_was(engine):
    code = new_coupon(engine, total=1)
    first, second = uuid.uuid4(), uuid.uuid4()
    with engine.begin() as connection:
        promotions.redeem_coupon(connection, code, user_id=uuid.uuid4(), order_id=first, now=NOW)
        with pytest.raises(ce.CouponExhausted):
            promotions.redeem_coupon(connection, code, user_id=uuid.uuid4(), order_id=second,
                                     now=NOW)
    assert promotion_admin.get_coupon(engine, code).redeemed_count == 1


def race(engine, code, *, users: list[uuid.UUID]) -> list[str]:
    outcomes: list[str] = []
    start = threading.Barrier(len(users))

    def attempt(user_id: uuid.UUID) -> None:
        start.wait()
        try:
            redeem(engine, code, user_id=user_id)
            outcomes.append("redeemed")
        except ce.CouponExhausted:
            outcomes.append("exhausted")

    threads = [threading.Thread(target=attempt, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_redemptions_never_exceed_the_overall_limit(engine):
    code = new_coupon(engine, total=5)
    outcomes = race(engine, code, users=[uuid.uuid4() for _ in range(20)])
    assert outcomes.count("redeemed") == 5
    assert outcomes.count("exhausted") == 15
    assert promotion_admin.get_coupon(engine, code).redeemed_count == 5


def test_a_single_use_coupon_is_redeemed_once_by_one_user_racing_with_themselves(engine):
    code = new_coupon(engine, per_user=1)
    shopper = uuid.uuid4()
    outcomes = race(engine, code, users=[shopper] * 12)
    assert outcomes.count("redeemed") == 1
    assert promotion_admin.get_coupon(engine, code).redeemed_count == 1


def test_concurrent_redemptions_for_one_order_count_once(engine):
    code = new_coupon(engine, total=10)
    order, shopper = uuid.uuid4(), uuid.uuid4()
    errors: list[Exception] = []
    start = threading.Barrier(6)

    def attempt() -> None:
        start.wait()
        try:
            redeem(engine, code, user_id=shopper, order_id=order)
        except Exception as error:  # noqa: BLE001 - the test reports any failure
            errors.append(error)

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert promotion_admin.get_coupon(engine, code).redeemed_count == 1


def test_pricing_applies_a_valid_coupon_and_drops_one_that_ran_out(engine):
    variant = one_variant(engine, price=5000)
    code = new_coupon(engine, total=1, value=2000)
    cart, access = user_cart_with(engine, [(variant, 1)])
    cart = cart_edits.apply_coupon(engine, cart.id, access, code=code,
                                   expected_version=cart.version, idle_seconds=IDLE_S)
    with engine.connect() as connection:
        priced = price_cart(connection, cart.id, now=datetime.now(UTC))
    assert (priced.coupon_code, priced.discount_minor, priced.total_minor) == (code, 1000, 4000)
    redeem(engine, code)  # someone else used it up
    with engine.connect() as connection:
        priced = price_cart(connection, cart.id, now=datetime.now(UTC))
    assert (priced.coupon_code, priced.discount_minor, priced.total_minor) == (None, 0, 5000)


def test_applying_a_used_up_or_expired_coupon_to_a_cart_is_refused(engine):
    variant = one_variant(engine)
    used_up = new_coupon(engine, total=1)
    redeem(engine, used_up)
    expired = new_coupon(engine, ends_at=NOW - timedelta(seconds=1))
    cart, access = user_cart_with(engine, [(variant, 1)])
    for code, error in ((used_up, ce.CouponExhausted), (expired, ce.CouponExpired)):
        with pytest.raises(error):
            cart_edits.apply_coupon(engine, cart.id, access, code=code,
                                    expected_version=cart.version, idle_seconds=IDLE_S)
    assert cart_edits.remove_coupon(engine, cart.id, access, expected_version=cart.version,
                                    idle_seconds=IDLE_S).coupon_code is None


def test_a_coupon_for_another_currency_does_not_apply(engine):
    variant = one_variant(engine)
    code = new_coupon(engine, kind="fixed", value=100, currency="EUR")
    cart, access = user_cart_with(engine, [(variant, 1)])
    with pytest.raises(ce.CouponNotApplicable):
        cart_edits.apply_coupon(engine, cart.id, access, code=code,
                                expected_version=cart.version, idle_seconds=IDLE_S)
