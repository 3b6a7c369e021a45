"""The tax rate table: a rate in basis points by product category and shipping region.

A rate is looked up most specific first: (category, region), (category, "*"),
("*", region), ("*", "*"); with none of them the rate is 0. An admin sets and removes
rates (PUT/DELETE /v1/admin/commerce/tax-rates/{category}/{region}).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Engine, delete, or_, select
from sqlalchemy.dialects.postgresql import insert

from pacioli.commerce import errors as ce
from pacioli.commerce.promotion_tables import commerce_tax_rates

ANY = "*"
KEY_LENGTH_MAX = 64


@dataclass(frozen=True, slots=True)
class TaxRate:
    category: str
    region: str
    rate_bps: int
    updated_at: datetime


def tax_rates_for(
    connection: Connection, categories: Iterable[str], region: str
) -> dict[str, int]:
    """The rate (basis points) that applies to each category shipped to `region`."""
    categories = set(categories)
    if not categories:
        return {}
    t = commerce_tax_rates
    rows = connection.execute(
        select(t.c.category, t.c.region, t.c.rate_bps).where(
            or_(t.c.category.in_(list(categories)), t.c.category == ANY),
            t.c.region.in_([region, ANY]),
        )
    )
    table = {(row.category, row.region): row.rate_bps for row in rows}
    rates = {}
    for category in categories:
        for key in ((category, region), (category, ANY), (ANY, region), (ANY, ANY)):
            if key in table:
                rates[category] = table[key]
                break
        else:
            rates[category] = 0
    return rates


def set_tax_rate(engine: Engine, category: str, region: str, rate_bps: int) -> TaxRate:
    """Set (or replace) one rate. Raises: InvalidCommerceRequest."""
    _check_key(category, "category")
    _check_key(region, "region")
    if not 0 <= rate_bps <= 10000:
        raise ce.InvalidCommerceRequest("rate_bps must be between 0 and 10000")
    t = commerce_tax_rates
    now = datetime.now(UTC)
    with engine.begin() as connection:
        connection.execute(
            insert(t).values(category=category, region=region, rate_bps=rate_bps, updated_at=now)
            .on_conflict_do_update(
                index_elements=[t.c.category, t.c.region],
                set_={"rate_bps": rate_bps, "updated_at": now},
            )
        )
    return TaxRate(category, region, rate_bps, now)


def remove_tax_rate(engine: Engine, category: str, region: str) -> None:
    """Remove one rate (its lookups fall back to the next most specific)."""
    t = commerce_tax_rates
    with engine.begin() as connection:
        connection.execute(delete(t).where(t.c.category == category, t.c.region == region))


def list_tax_rates(engine: Engine) -> list[TaxRate]:
    t = commerce_tax_rates
    with engine.connect() as connection:
        rows = connection.execute(select(t).order_by(t.c.category, t.c.region))
        return [TaxRate(r.category, r.region, r.rate_bps, r.updated_at) for r in rows]


def _check_key(value: str, what: str) -> None:
    if not value or len(value) > KEY_LENGTH_MAX:
        raise ce.InvalidCommerceRequest(f"{what} must be 1 to {KEY_LENGTH_MAX} characters")
