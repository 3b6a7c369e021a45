"""Resellers and their catalogs: suppliers' products with the reseller's margin on top,
shared by a link.

A reseller is a merchant that registered the role (`commerce_resellers`). It makes
catalogs, each with a unique slug: the public link is `/v1/shops/{slug}`, where anyone
browses the catalog at the reseller's prices (supplier price + margin) and adds to a
cart through it, which records the catalog on the cart line, so the sale (and its
margin) is the reseller's. The margin is per unit of the product, in the product's
currency, and is read when the cart is priced: a changed margin changes the price the
shopper sees (and checkout's re-pricing catches it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Connection, Engine, Row, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError

from pacioli.commerce import errors as ce
from pacioli.commerce.catalog import load_product
from pacioli.commerce.catalog_tables import (
    commerce_catalog_items,
    commerce_catalogs,
    commerce_resellers,
)
from pacioli.ledger.domain.ids import uuid7

SLUG_SHAPE = re.compile(r"[a-z0-9][a-z0-9-]{2,62}")
TITLE_LENGTH_MAX = 200


@dataclass(frozen=True, slots=True)
class Reseller:
    merchant_id: UUID
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Catalog:
    id: UUID
    reseller_id: UUID
    slug: str
    title: str
    active: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class CatalogItem:
    catalog_id: UUID
    product_id: UUID
    margin_minor: int
    added_at: datetime


def register_reseller(engine: Engine, merchant_id: UUID) -> Reseller:
    """Give the merchant the reseller role (again: no change)."""
    t = commerce_resellers
    with engine.begin() as connection:
        connection.execute(
            insert(t).values(merchant_id=merchant_id, created_at=datetime.now(UTC))
            .on_conflict_do_nothing(index_elements=[t.c.merchant_id])
        )
        return get_reseller(connection, merchant_id)


def get_reseller(connection: Connection, merchant_id: UUID) -> Reseller:
    """Raises: NotAReseller."""
    t = commerce_resellers
    row = connection.execute(select(t).where(t.c.merchant_id == merchant_id)).first()
    if row is None:
        raise ce.NotAReseller("register as a reseller first (POST /v1/commerce/resellers)")
    return Reseller(row.merchant_id, row.created_at)


def create_catalog(engine: Engine, reseller_id: UUID, *, slug: str, title: str) -> Catalog:
    """Raises: NotAReseller, InvalidCommerceRequest, SlugTaken."""
    if not SLUG_SHAPE.fullmatch(slug):
        raise ce.InvalidCommerceRequest(
            "a slug is 3 to 63 lower-case letters, digits and hyphens, not starting with one"
        )
    if not 0 < len(title) <= TITLE_LENGTH_MAX:
        raise ce.InvalidCommerceRequest(f"a title is 1 to {TITLE_LENGTH_MAX} characters")
    t = commerce_catalogs
    try:
        with engine.begin() as connection:
            get_reseller(connection, reseller_id)
            row = connection.execute(insert(t).values(
                id=uuid7(), reseller_id=reseller_id, slug=slug, title=title, active=True,
                created_at=datetime.now(UTC),
            ).returning(t)).one()
    except IntegrityError as error:
        raise ce.SlugTaken(f"the slug {slug!r} is taken") from error
    return _catalog(row)


def update_catalog(engine: Engine, reseller_id: UUID, catalog_id: UUID, *,
                   title: str | None = None, active: bool | None = None) -> Catalog:
    """Retitle a catalog or switch it off (a switched-off link shows nothing and sells
    nothing). Raises: CatalogNotFound, InvalidCommerceRequest."""
    changes = {k: v for k, v in {"title": title, "active": active}.items() if v is not None}
    if title is not None and not 0 < len(title) <= TITLE_LENGTH_MAX:
        raise ce.InvalidCommerceRequest(f"a title is 1 to {TITLE_LENGTH_MAX} characters")
    t = commerce_catalogs
    with engine.begin() as connection:
        owned_catalog(connection, reseller_id, catalog_id)
        if changes:
            connection.execute(update(t).where(t.c.id == catalog_id).values(**changes))
        return owned_catalog(connection, reseller_id, catalog_id)


def owned_catalog(connection: Connection, reseller_id: UUID, catalog_id: UUID) -> Catalog:
    """The reseller's own catalog. Raises: CatalogNotFound (also another reseller's)."""
    t = commerce_catalogs
    row = connection.execute(
        select(t).where(t.c.id == catalog_id, t.c.reseller_id == reseller_id)
    ).first()
    if row is None:
        raise ce.CatalogNotFound(f"no catalog {catalog_id}")
    return _catalog(row)


def list_catalogs(engine: Engine, reseller_id: UUID) -> list[Catalog]:
    t = commerce_catalogs
    with engine.connect() as connection:
        rows = connection.execute(
            select(t).where(t.c.reseller_id == reseller_id).order_by(t.c.id)
        )
        return [_catalog(row) for row in rows]


def shared_catalog(connection: Connection, slug: str) -> Catalog:
    """The active catalog behind a shared link. Raises: CatalogNotFound."""
    t = commerce_catalogs
    row = connection.execute(select(t).where(t.c.slug == slug, t.c.active)).first()
    if row is None:
        raise ce.CatalogNotFound(f"no catalog at {slug!r}")
    return _catalog(row)


def set_catalog_item(engine: Engine, reseller_id: UUID, catalog_id: UUID, product_id: UUID,
                     *, margin_minor: int) -> CatalogItem:
    """Put a supplier's active product in the catalog with this margin per unit (or change
    the margin). Raises: CatalogNotFound, ProductNotFound, InvalidCommerceRequest."""
    if margin_minor < 0:
        raise ce.InvalidCommerceRequest("a margin must not be negative")
    t = commerce_catalog_items
    now = datetime.now(UTC)
    with engine.begin() as connection:
        owned_catalog(connection, reseller_id, catalog_id)
        load_product(connection, product_id, active_only=True)
        row = connection.execute(
            insert(t).values(catalog_id=catalog_id, product_id=product_id,
                             margin_minor=margin_minor, added_at=now)
            .on_conflict_do_update(index_elements=[t.c.catalog_id, t.c.product_id],
                                   set_={"margin_minor": margin_minor})
            .returning(t)
        ).one()
    return _item(row)


def remove_catalog_item(engine: Engine, reseller_id: UUID, catalog_id: UUID,
                        product_id: UUID) -> None:
    """Take a product out (carts holding it through this catalog show it unavailable).

    Raises: CatalogNotFound, ProductNotInCatalog.
    """
    t = commerce_catalog_items
    with engine.begin() as connection:
        owned_catalog(connection, reseller_id, catalog_id)
        removed = connection.execute(
            delete(t).where(t.c.catalog_id == catalog_id, t.c.product_id == product_id)
            .returning(t.c.product_id)
        ).first()
        if removed is None:
            raise ce.ProductNotInCatalog(f"catalog {catalog_id} does not list {product_id}")


def catalog_margin(connection: Connection, catalog_id: UUID, product_id: UUID) -> int:
    """The margin the catalog puts on the product. Raises: ProductNotInCatalog."""
    t = commerce_catalog_items
    row = connection.execute(
        select(t.c.margin_minor).where(t.c.catalog_id == catalog_id, t.c.product_id == product_id)
    ).first()
    if row is None:
        raise ce.ProductNotInCatalog(f"catalog {catalog_id} does not list {product_id}")
    return int(row.margin_minor)


def _catalog(row: Row) -> Catalog:
    return Catalog(row.id, row.reseller_id, row.slug, row.title, row.active, row.created_at)


def _item(row: Row) -> CatalogItem:
    return CatalogItem(row.catalog_id, row.product_id, int(row.margin_minor), row.added_at)
