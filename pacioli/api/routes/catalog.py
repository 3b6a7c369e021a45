"""/v1/catalog (shoppers browse and search products), /v1/shops/{slug} (a reseller's shared
catalog, at the reseller's prices) and /v1/supplier/products (a supplier manages its
products, variants and stock with its merchant key).

Browsing needs no credentials. A supplier sees and changes only its own products: anyone
else's is a 404; a merchant that has not registered as a supplier gets 403
`not_a_supplier`.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response

from pacioli.api.auth import CurrentMerchant, EngineDep, IdempotencyKeyHeader
from pacioli.api.deps import PAGE_LIMIT_DEFAULT, REPLAYED_HEADER, PageLimit, ScalesDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.catalog import (
    CatalogPublic,
    ProductCreate,
    ProductPublic,
    ProductUpdate,
    StockSet,
    SupplierVariantPublic,
    VariantCreate,
    VariantUpdate,
)
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.money import AssetScales
from pacioli.commerce import catalog, catalog_search, resellers
from pacioli.commerce.catalog_search import Listing, SearchFilters
from pacioli.commerce.errors import InvalidCommerceRequest

router = APIRouter(tags=["commerce: catalog"])


def search_filters(
    scales: ScalesDep,
    q: Annotated[str | None, Query(max_length=200, description="Words to find.")] = None,
    brand: str | None = None,
    size: str | None = None,
    colour: str | None = None,
    currency: str | None = None,
    min_price: Annotated[str | None, Query(description="Decimal, needs currency.")] = None,
    max_price: Annotated[str | None, Query(description="Decimal, needs currency.")] = None,
) -> SearchFilters:
    """Raises: InvalidCommerceRequest (a price without a currency), InvalidAmount,
    UnknownAsset."""
    if (min_price is not None or max_price is not None) and currency is None:
        raise InvalidCommerceRequest("a price range needs a currency")

    def minor(amount: str | None) -> int | None:
        return None if amount is None else scales.to_minor(amount, currency, allow_zero=True)

    return SearchFilters(text=q, brand=brand, size=size, colour=colour, currency=currency,
                         min_price_minor=minor(min_price), max_price_minor=minor(max_price))


Filters = Annotated[SearchFilters, Depends(search_filters)]


def _page(listings: list[Listing], limit: int, scales: AssetScales,
          catalog_slug: str | None = None, supplier_view: bool = False) -> Page[ProductPublic]:
    return Page.of(
        listings, limit,
        lambda listing: ProductPublic.of(listing.product, scales,
                                         margin_minor=listing.margin_minor,
                                         catalog_slug=catalog_slug, supplier_view=supplier_view),
        lambda listing: listing.product.id,
    )


# Shoppers.


@router.get(f"{API_PREFIX}/catalog/products", summary="Search the marketplace's products")
def search_products(
    filters: Filters, engine: EngineDep, scales: ScalesDep,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[ProductPublic]:
    with engine.connect() as connection:
        listings = catalog_search.search_products(
            connection, filters, limit=limit + 1, starting_after=starting_after)
    return _page(listings, limit, scales)


@router.get(f"{API_PREFIX}/catalog/products/{{product_id}}", summary="One product")
def get_product(product_id: UUID, engine: EngineDep, scales: ScalesDep) -> ProductPublic:
    with engine.connect() as connection:
        product = catalog.load_product(connection, product_id, active_only=True)
    return ProductPublic.of(product, scales)


@router.get(f"{API_PREFIX}/shops/{{slug}}", summary="A reseller's shared catalog")
def get_shop(slug: str, engine: EngineDep) -> CatalogPublic:
    with engine.connect() as connection:
        return CatalogPublic.of(resellers.shared_catalog(connection, slug))


@router.get(f"{API_PREFIX}/shops/{{slug}}/products",
            summary="Search a reseller's catalog, at the reseller's prices")
def search_shop(
    slug: str, filters: Filters, engine: EngineDep, scales: ScalesDep,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[ProductPublic]:
    with engine.connect() as connection:
        shop = resellers.shared_catalog(connection, slug)
        listings = catalog_search.search_products(
            connection, filters, limit=limit + 1, starting_after=starting_after,
            catalog_id=shop.id)
    return _page(listings, limit, scales, catalog_slug=slug)


@router.get(f"{API_PREFIX}/shops/{{slug}}/products/{{product_id}}",
            summary="One product of a reseller's catalog, at the reseller's price")
def get_shop_product(slug: str, product_id: UUID, engine: EngineDep,
                     scales: ScalesDep) -> ProductPublic:
    with engine.connect() as connection:
        shop = resellers.shared_catalog(connection, slug)
        margin = resellers.catalog_margin(connection, shop.id, product_id)
        product = catalog.load_product(connection, product_id, active_only=True)
    return ProductPublic.of(product, scales, margin_minor=margin, catalog_slug=slug)


# Suppliers.


@router.post(f"{API_PREFIX}/supplier/products", status_code=201,
             summary="List a product with its variants and stock")
def create_product(
    body: ProductCreate, merchant: CurrentMerchant, key: IdempotencyKeyHeader,
    engine: EngineDep, scales: ScalesDep, response: Response,
) -> ProductPublic:
    draft = catalog.ProductDraft(
        name=body.name, description=body.description, brand=body.brand,
        category=body.category, currency=body.currency, image_urls=tuple(body.image_urls),
        attributes=body.attributes,
        variants=tuple(_variant_draft(v, body.currency, scales) for v in body.variants),
    )
    product, replayed = catalog.create_product(engine, merchant.id, draft, idempotency_key=key)
    if replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return ProductPublic.of(product, scales, supplier_view=True)


@router.get(f"{API_PREFIX}/supplier/products", summary="The supplier's own products")
def list_own_products(
    merchant: CurrentMerchant, filters: Filters, engine: EngineDep, scales: ScalesDep,
    limit: PageLimit = PAGE_LIMIT_DEFAULT, starting_after: UUID | None = None,
) -> Page[ProductPublic]:
    with engine.connect() as connection:
        catalog.get_supplier(connection, merchant.id)
        listings = catalog_search.search_products(
            connection, filters, limit=limit + 1, starting_after=starting_after,
            supplier_id=merchant.id, include_inactive=True)
    return _page(listings, limit, scales, supplier_view=True)


@router.get(f"{API_PREFIX}/supplier/products/{{product_id}}", summary="One of the supplier's")
def get_own_product(product_id: UUID, merchant: CurrentMerchant, engine: EngineDep,
                    scales: ScalesDep) -> ProductPublic:
    with engine.connect() as connection:
        catalog.get_supplier(connection, merchant.id)
        product = catalog.load_product(connection, product_id, supplier_id=merchant.id)
    return ProductPublic.of(product, scales, supplier_view=True)


@router.patch(f"{API_PREFIX}/supplier/products/{{product_id}}",
              summary="Change a product's details, or withdraw it (active false)")
def update_product(product_id: UUID, body: ProductUpdate, merchant: CurrentMerchant,
                   engine: EngineDep, scales: ScalesDep) -> ProductPublic:
    _require_supplier(engine, merchant.id)
    changes = body.model_dump(exclude_none=True)
    product = catalog.update_product(engine, merchant.id, product_id, changes)
    return ProductPublic.of(product, scales, supplier_view=True)


@router.post(f"{API_PREFIX}/supplier/products/{{product_id}}/variants", status_code=201,
             summary="Add a variant to a product")
def add_variant(product_id: UUID, body: VariantCreate, merchant: CurrentMerchant,
                engine: EngineDep, scales: ScalesDep) -> SupplierVariantPublic:
    currency = _own_product_currency(engine, merchant.id, product_id)
    variant = catalog.add_variant(engine, merchant.id, product_id,
                                  _variant_draft(body, currency, scales))
    return SupplierVariantPublic.of(variant, currency, scales)


@router.patch(f"{API_PREFIX}/supplier/variants/{{variant_id}}",
              summary="Change a variant's price, threshold, or withdraw it")
def update_variant(variant_id: UUID, body: VariantUpdate, merchant: CurrentMerchant,
                   engine: EngineDep, scales: ScalesDep) -> SupplierVariantPublic:
    _require_supplier(engine, merchant.id)
    currency = _own_variant_currency(engine, merchant.id, variant_id)
    changes = body.model_dump(exclude_none=True, exclude={"price"})
    if body.price is not None:
        changes["price_minor"] = scales.to_minor(body.price, currency)
    variant = catalog.update_variant(engine, merchant.id, variant_id, changes)
    return SupplierVariantPublic.of(variant, currency, scales)


@router.put(f"{API_PREFIX}/supplier/variants/{{variant_id}}/stock",
            summary="Set a variant's available stock, or adjust it")
def set_stock(variant_id: UUID, body: StockSet, merchant: CurrentMerchant,
              engine: EngineDep, scales: ScalesDep) -> SupplierVariantPublic:
    _require_supplier(engine, merchant.id)
    currency = _own_variant_currency(engine, merchant.id, variant_id)
    variant = catalog.set_stock(engine, merchant.id, variant_id, available=body.available,
                                adjust_by=body.adjust_by)
    return SupplierVariantPublic.of(variant, currency, scales)


def _variant_draft(body: VariantCreate, currency: str,
                   scales: AssetScales) -> catalog.VariantDraft:
    return catalog.VariantDraft(
        sku=body.sku, price_minor=scales.to_minor(body.price, currency),
        stock_available=body.stock, size=body.size, colour=body.colour,
        low_stock_threshold=body.low_stock_threshold,
    )


def _require_supplier(engine, merchant_id: UUID) -> None:
    with engine.connect() as connection:
        catalog.get_supplier(connection, merchant_id)


def _own_product_currency(engine, merchant_id: UUID, product_id: UUID) -> str:
    with engine.connect() as connection:
        catalog.get_supplier(connection, merchant_id)
        return catalog.load_product(connection, product_id, supplier_id=merchant_id).currency


def _own_variant_currency(engine, merchant_id: UUID, variant_id: UUID) -> str:
    with engine.connect() as connection:
        return catalog.variant_currency(connection, merchant_id, variant_id)
