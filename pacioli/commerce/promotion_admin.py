"""Creating and withdrawing promotions and coupons.

Who may: an admin makes coupons and automatic order promotions (they are the
platform's); a supplier makes catalogue discounts on its own products and variants
(docs/commerce.md, "Totals"). Both are withdrawn by switching them off (`active`), never
deleted, so a priced cart or a redemption can always be explained.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Connection, Engine, Row, select, update
from sqlalchemy.dialects.postgresql import insert

from pacioli.commerce import errors as ce
from pacioli.commerce.catalog_tables import commerce_products, commerce_variants
from pacioli.commerce.promotion_tables import commerce_coupons, commerce_promotions
from pacioli.commerce.promotions import COUPON_CODE_LENGTH_MAX, normalize_code
from pacioli.ledger.domain.ids import uuid7

NAME_LENGTH_MAX = 200


@dataclass(frozen=True, slots=True)
class DiscountTerms:
    """What a promotion or coupon takes off, and when it is valid."""

    kind: str  # percent (value in basis points) or fixed (value in minor units)
    value: int
    currency: str | None = None  # required for fixed; limits a percentage to one currency
    min_subtotal_minor: int = 0
    starts_at: datetime | None = None
    ends_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Promotion:
    id: UUID
    supplier_id: UUID | None
    name: str
    scope: str
    target_id: UUID | None
    terms: DiscountTerms
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Coupon:
    code: str
    terms: DiscountTerms
    usage_limit_total: int | None
    usage_limit_per_user: int | None
    redeemed_count: int
    active: bool
    created_at: datetime


def create_coupon(engine: Engine, code: str, terms: DiscountTerms, *,
                  usage_limit_total: int | None, usage_limit_per_user: int | None) -> Coupon:
    """Raises: InvalidCommerceRequest, CouponCodeTaken."""
    code = normalize_code(code)
    if not code or len(code) > COUPON_CODE_LENGTH_MAX or not code.replace("-", "").isalnum():
        raise ce.InvalidCommerceRequest(
            f"a coupon code is 1 to {COUPON_CODE_LENGTH_MAX} letters, digits and hyphens"
        )
    _check_terms(terms)
    for limit in (usage_limit_total, usage_limit_per_user):
        if limit is not None and limit < 1:
            raise ce.InvalidCommerceRequest("a usage limit is at least 1")
    t = commerce_coupons
    with engine.begin() as connection:
        row = connection.execute(
            insert(t).values(
                code=code, **_terms_values(terms), usage_limit_total=usage_limit_total,
                usage_limit_per_user=usage_limit_per_user, redeemed_count=0, active=True,
                created_at=datetime.now(UTC),
            ).on_conflict_do_nothing(index_elements=[t.c.code]).returning(t)
        ).first()
    if row is None:
        raise ce.CouponCodeTaken(f"a coupon {code} exists already")
    return _coupon(row)


def get_coupon(engine: Engine, code: str) -> Coupon:
    """Raises: CouponNotFound."""
    t = commerce_coupons
    with engine.connect() as connection:
        row = connection.execute(select(t).where(t.c.code == normalize_code(code))).first()
    if row is None:
        raise ce.CouponNotFound(f"no coupon has the code {code!r}")
    return _coupon(row)


def list_coupons(engine: Engine, *, limit: int, starting_after: str | None) -> list[Coupon]:
    t = commerce_coupons
    query = select(t).order_by(t.c.code).limit(limit)
    if starting_after is not None:
        query = query.where(t.c.code > starting_after)
    with engine.connect() as connection:
        return [_coupon(row) for row in connection.execute(query)]


def set_coupon_active(engine: Engine, code: str, *, active: bool) -> Coupon:
    """Withdraw a coupon (or bring it back). Raises: CouponNotFound."""
    t = commerce_coupons
    with engine.begin() as connection:
        row = connection.execute(
            update(t).where(t.c.code == normalize_code(code)).values(active=active).returning(t)
        ).first()
    if row is None:
        raise ce.CouponNotFound(f"no coupon has the code {code!r}")
    return _coupon(row)


def create_promotion(engine: Engine, *, name: str, scope: str, target_id: UUID | None,
                     terms: DiscountTerms, supplier_id: UUID | None) -> Promotion:
    """An admin's order promotion (`supplier_id` None, scope `order`) or a supplier's
    catalogue discount on its own product or variant.

    Raises: InvalidCommerceRequest, ProductNotFound, VariantNotFound.
    """
    if not 0 < len(name) <= NAME_LENGTH_MAX:
        raise ce.InvalidCommerceRequest(f"a name is 1 to {NAME_LENGTH_MAX} characters")
    if (supplier_id is None) != (scope == "order"):
        raise ce.InvalidCommerceRequest(
            "suppliers make product and variant discounts; admins make order promotions"
        )
    if (scope == "order") != (target_id is None):
        raise ce.InvalidCommerceRequest("product and variant discounts name their target")
    _check_terms(terms)
    t = commerce_promotions
    with engine.begin() as connection:
        if supplier_id is not None:
            _check_target(connection, supplier_id, scope, target_id)
        row = connection.execute(insert(t).values(
            id=uuid7(), supplier_id=supplier_id, name=name, scope=scope, target_id=target_id,
            **_terms_values(terms), active=True, created_at=datetime.now(UTC),
        ).returning(t)).one()
    return _promotion(row)


def list_promotions(engine: Engine, *, supplier_id: UUID | None) -> list[Promotion]:
    """An admin's (supplier_id None) or one supplier's promotions, newest first."""
    t = commerce_promotions
    owner = t.c.supplier_id.is_(None) if supplier_id is None else t.c.supplier_id == supplier_id
    with engine.connect() as connection:
        rows = connection.execute(select(t).where(owner).order_by(t.c.id.desc()).limit(500))
        return [_promotion(row) for row in rows]


def set_promotion_active(engine: Engine, promotion_id: UUID, *, active: bool,
                         supplier_id: UUID | None) -> Promotion:
    """Raises: PromotionNotFound (also another owner's)."""
    t = commerce_promotions
    owner = t.c.supplier_id.is_(None) if supplier_id is None else t.c.supplier_id == supplier_id
    with engine.begin() as connection:
        row = connection.execute(
            update(t).where(t.c.id == promotion_id, owner).values(active=active).returning(t)
        ).first()
    if row is None:
        raise ce.PromotionNotFound(f"no promotion {promotion_id}")
    return _promotion(row)


def _check_target(connection: Connection, supplier_id: UUID, scope: str, target_id) -> None:
    p, v = commerce_products, commerce_variants
    if scope == "product":
        found = connection.execute(
            select(p.c.id).where(p.c.id == target_id, p.c.supplier_id == supplier_id)
        ).first()
        if found is None:
            raise ce.ProductNotFound(f"no product {target_id}")
        return
    if scope != "variant":
        raise ce.InvalidCommerceRequest("scope is product, variant or order")
    found = connection.execute(
        select(v.c.id).join(p, p.c.id == v.c.product_id)
        .where(v.c.id == target_id, p.c.supplier_id == supplier_id)
    ).first()
    if found is None:
        raise ce.VariantNotFound(f"no variant {target_id}")


def _check_terms(terms: DiscountTerms) -> None:
    if terms.kind == "percent":
        if not 0 < terms.value <= 10000:
            raise ce.InvalidCommerceRequest("a percentage is 1 to 10000 basis points")
    elif terms.kind == "fixed":
        if terms.value <= 0 or terms.currency is None:
            raise ce.InvalidCommerceRequest("a fixed discount is a positive amount in a currency")
    else:
        raise ce.InvalidCommerceRequest("kind is percent or fixed")
    if terms.min_subtotal_minor < 0:
        raise ce.InvalidCommerceRequest("min_subtotal must not be negative")
    if terms.min_subtotal_minor > 0 and terms.currency is None:
        raise ce.InvalidCommerceRequest("a minimum subtotal needs a currency")
    if terms.starts_at and terms.ends_at and terms.ends_at <= terms.starts_at:
        raise ce.InvalidCommerceRequest("ends_at must be after starts_at")


def _terms_values(terms: DiscountTerms) -> dict:
    return {"kind": terms.kind, "value": terms.value, "currency": terms.currency,
            "min_subtotal_minor": terms.min_subtotal_minor, "starts_at": terms.starts_at,
            "ends_at": terms.ends_at}


def _terms(row: Row) -> DiscountTerms:
    return DiscountTerms(row.kind, int(row.value), row.currency, int(row.min_subtotal_minor),
                         row.starts_at, row.ends_at)


def _coupon(row: Row) -> Coupon:
    return Coupon(row.code, _terms(row), row.usage_limit_total, row.usage_limit_per_user,
                  int(row.redeemed_count), row.active, row.created_at)


def _promotion(row: Row) -> Promotion:
    return Promotion(row.id, row.supplier_id, row.name, row.scope, row.target_id, _terms(row),
                     row.active, row.created_at)
