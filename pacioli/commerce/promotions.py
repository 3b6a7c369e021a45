"""Coupons redeemed exactly once, and the discounts in force that pricing reads.

A coupon's overall limit holds under concurrent checkouts because redeeming is one
conditional UPDATE (`redeemed_count < usage_limit_total`) on the coupon's row: the row
lock it takes queues concurrent redemptions of one code, and each re-checks the count
the previous one left. The per-user limit is counted after that lock is held, so it sees
every redemption committed before. A redemption is keyed by the order, so redeeming for
the same order twice is a no-op, and un-redeeming (the order was cancelled before it was
paid) gives the use back.

Creating coupons and promotions is in promotion_admin.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from uuid import UUID

from sqlalchemy import ColumnElement, Connection, Row, and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.commerce import errors as ce
from pacioli.commerce.price_terms import Discount
from pacioli.commerce.promotion_tables import (
    commerce_coupon_redemptions,
    commerce_coupons,
    commerce_promotions,
)

COUPON_CODE_LENGTH_MAX = 40


def normalize_code(code: str) -> str:
    """Coupon codes are case-insensitive: stored and compared in upper case."""
    return code.strip().upper()


def in_window(table, now: datetime) -> ColumnElement[bool]:
    """The promotion or coupon is switched on and `now` is inside its validity window."""
    return and_(
        table.c.active,
        or_(table.c.starts_at.is_(None), table.c.starts_at <= now),
        or_(table.c.ends_at.is_(None), table.c.ends_at > now),
    )


def redeem_coupon(
    connection: Connection, code: str, *, user_id: UUID, order_id: UUID, now: datetime
) -> None:
    """Use the coupon once for `order_id`, in the caller's transaction.

    Exactly once under concurrency; a second call for the same order changes nothing.
    Raises: CouponNotFound, CouponExpired, CouponExhausted (overall or per user), and
    InvalidCommerceRequest if the order already redeemed another coupon.
    """
    code = normalize_code(code)
    r = commerce_coupon_redemptions
    existing = connection.execute(select(r.c.code).where(r.c.order_id == order_id)).first()
    if existing is not None:
        if existing.code != code:
            raise ce.InvalidCommerceRequest(f"order {order_id} redeemed coupon {existing.code}")
        return
    try:
        _redeem(connection, code, user_id=user_id, order_id=order_id, now=now)
    except _RedeemedMeanwhile:
        # A concurrent call for the same order won; its use is the one that counts.
        redeem_coupon(connection, code, user_id=user_id, order_id=order_id, now=now)


class _RedeemedMeanwhile(Exception):
    """The order's redemption was committed by a concurrent call (rolls the savepoint)."""


def _redeem(connection: Connection, code: str, *, user_id: UUID, order_id: UUID,
            now: datetime) -> None:
    t, r = commerce_coupons, commerce_coupon_redemptions
    # A savepoint, so a refusal below leaves the caller's transaction as it was.
    with connection.begin_nested():
        taken = connection.execute(
            update(t)
            .where(
                t.c.code == code, in_window(t, now),
                or_(t.c.usage_limit_total.is_(None), t.c.redeemed_count < t.c.usage_limit_total),
            )
            .values(redeemed_count=t.c.redeemed_count + 1)
            .returning(t.c.usage_limit_per_user)
        ).first()
        if taken is None:
            raise _why_not_redeemable(connection, code, now)
        # The coupon's row is locked now: every earlier redemption by this user is visible.
        if taken.usage_limit_per_user is not None:
            used = _uses_by(connection, code, user_id)
            if used >= taken.usage_limit_per_user:
                raise ce.CouponExhausted(f"coupon {code} was used {used} times by this user")
        recorded = connection.execute(
            insert(r).values(order_id=order_id, code=code, user_id=user_id, redeemed_at=now)
            .on_conflict_do_nothing(index_elements=[r.c.order_id]).returning(r.c.order_id)
        ).first()
        if recorded is None:
            raise _RedeemedMeanwhile(order_id)


def unredeem_coupon(connection: Connection, order_id: UUID) -> None:
    """Give back the coupon use of `order_id` (cancelled before payment); no-op if none."""
    r, t = commerce_coupon_redemptions, commerce_coupons
    removed = connection.execute(
        delete(r).where(r.c.order_id == order_id).returning(r.c.code)
    ).first()
    if removed is not None:
        connection.execute(
            update(t).where(t.c.code == removed.code)
            .values(redeemed_count=t.c.redeemed_count - 1)
        )


def check_coupon(
    connection: Connection, code: str, *, user_id: UUID | None, now: datetime
) -> Row:
    """The coupon's row if it could be redeemed now by `user_id` (None: a guest).

    Raises: CouponNotFound, CouponExpired, CouponExhausted.
    """
    code = normalize_code(code)
    t = commerce_coupons
    row = connection.execute(select(t).where(t.c.code == code)).first()
    if row is None:
        raise ce.CouponNotFound(f"no coupon has the code {code!r}")
    if not _row_in_window(row, now):
        raise ce.CouponExpired(f"coupon {code} is not valid now")
    if row.usage_limit_total is not None and row.redeemed_count >= row.usage_limit_total:
        raise ce.CouponExhausted(f"coupon {code} reached its usage limit")
    if (user_id is not None and row.usage_limit_per_user is not None
            and _uses_by(connection, code, user_id) >= row.usage_limit_per_user):
        raise ce.CouponExhausted(f"coupon {code} reached its limit for this user")
    return row


def coupon_discount(
    connection: Connection, code: str, *, user_id: UUID | None, currency: str, now: datetime
) -> Discount | None:
    """The coupon as a discount on a cart in `currency`, or None if it does not apply now."""
    try:
        row = check_coupon(connection, code, user_id=user_id, now=now)
    except (ce.CouponNotFound, ce.CouponExpired, ce.CouponExhausted):
        return None
    if row.currency is not None and row.currency != currency:
        return None
    return Discount(row.kind, int(row.value), int(row.min_subtotal_minor))


def catalogue_discounts(
    connection: Connection, targets: Iterable[UUID], *, currency: str, now: datetime
) -> dict[UUID, list[Discount]]:
    """Active catalogue discounts by the product or variant they target."""
    t = commerce_promotions
    rows = connection.execute(
        select(t.c.target_id, t.c.kind, t.c.value).where(
            t.c.scope.in_(("product", "variant")), t.c.target_id.in_(list(targets)),
            in_window(t, now), or_(t.c.currency.is_(None), t.c.currency == currency),
        )
    )
    found: dict[UUID, list[Discount]] = {}
    for row in rows:
        found.setdefault(row.target_id, []).append(Discount(row.kind, int(row.value)))
    return found


def order_promotions(connection: Connection, *, currency: str, now: datetime) -> list[Discount]:
    """Active automatic order promotions that apply to a cart in `currency`."""
    t = commerce_promotions
    rows = connection.execute(
        select(t.c.kind, t.c.value, t.c.min_subtotal_minor).where(
            t.c.scope == "order", in_window(t, now),
            or_(t.c.currency.is_(None), t.c.currency == currency),
        )
    )
    return [Discount(row.kind, int(row.value), int(row.min_subtotal_minor)) for row in rows]


def _uses_by(connection: Connection, code: str, user_id: UUID) -> int:
    r = commerce_coupon_redemptions
    return connection.execute(
        select(func.count()).select_from(r).where(r.c.code == code, r.c.user_id == user_id)
    ).scalar_one()


def _row_in_window(row: Row, now: datetime) -> bool:
    return (
        row.active
        and (row.starts_at is None or row.starts_at <= now)
        and (row.ends_at is None or row.ends_at > now)
    )


def _why_not_redeemable(connection: Connection, code: str, now: datetime) -> Exception:
    """The rejection for a coupon the conditional update did not take."""
    t = commerce_coupons
    row = connection.execute(select(t).where(t.c.code == code)).first()
    if row is None:
        return ce.CouponNotFound(f"no coupon has the code {code!r}")
    if not _row_in_window(row, now):
        return ce.CouponExpired(f"coupon {code} is not valid now")
    return ce.CouponExhausted(f"coupon {code} reached its usage limit")
