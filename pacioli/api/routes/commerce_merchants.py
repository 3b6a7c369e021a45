"""/v1/commerce/suppliers, /v1/commerce/resellers and /v1/reseller/catalogs: a merchant
takes a commerce role (with its merchant key), a supplier sets its low-stock threshold
and shipping, and a reseller builds catalogs of suppliers' products with its margin and
shares them by link (`/v1/shops/{slug}`). Another reseller's catalog is a 404.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from pacioli.api.auth import CurrentMerchant, EngineDep
from pacioli.api.deps import ScalesDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.catalog import (
    CatalogCreate,
    CatalogItemPublic,
    CatalogItemSet,
    CatalogPublic,
    CatalogUpdate,
    ResellerPublic,
    ShippingRatePublic,
    ShippingRateSet,
    SupplierPublic,
    SupplierRegister,
    SupplierUpdate,
)
from pacioli.commerce import catalog, resellers

router = APIRouter(tags=["commerce: suppliers and resellers"])


# Suppliers.


@router.post(f"{API_PREFIX}/commerce/suppliers", status_code=201,
             summary="Register the calling merchant as a supplier (again: no change)")
def register_supplier(body: SupplierRegister, merchant: CurrentMerchant,
                      engine: EngineDep) -> SupplierPublic:
    return SupplierPublic.of(catalog.register_supplier(
        engine, merchant.id, low_stock_threshold=body.low_stock_threshold))


@router.get(f"{API_PREFIX}/commerce/suppliers/me", summary="The calling supplier")
def get_supplier(merchant: CurrentMerchant, engine: EngineDep) -> SupplierPublic:
    with engine.connect() as connection:
        return SupplierPublic.of(catalog.get_supplier(connection, merchant.id))


@router.patch(f"{API_PREFIX}/commerce/suppliers/me", summary="Change the low-stock threshold")
def update_supplier(body: SupplierUpdate, merchant: CurrentMerchant,
                    engine: EngineDep) -> SupplierPublic:
    return SupplierPublic.of(
        catalog.set_low_stock_threshold(engine, merchant.id, body.low_stock_threshold))


@router.put(f"{API_PREFIX}/commerce/suppliers/me/shipping/{{currency}}",
            summary="Set the supplier's flat shipping in a currency, free from a threshold")
def set_shipping(currency: str, body: ShippingRateSet, merchant: CurrentMerchant,
                 engine: EngineDep, scales: ScalesDep) -> ShippingRatePublic:
    fee_minor = scales.to_minor(body.fee, currency, allow_zero=True)
    free_minor = (None if body.free_above is None
                  else scales.to_minor(body.free_above, currency, allow_zero=True))
    catalog.set_shipping_rate(engine, merchant.id, currency, fee_minor=fee_minor,
                              free_above_minor=free_minor)
    return ShippingRatePublic(
        currency=currency, fee=scales.to_major(fee_minor, currency),
        free_above=None if free_minor is None else scales.to_major(free_minor, currency),
    )


# Resellers.


@router.post(f"{API_PREFIX}/commerce/resellers", status_code=201,
             summary="Register the calling merchant as a reseller (again: no change)")
def register_reseller(merchant: CurrentMerchant, engine: EngineDep) -> ResellerPublic:
    return ResellerPublic.of(resellers.register_reseller(engine, merchant.id))


@router.post(f"{API_PREFIX}/reseller/catalogs", status_code=201,
             summary="Make a catalog, shared at /v1/shops/{slug}")
def create_catalog(body: CatalogCreate, merchant: CurrentMerchant,
                   engine: EngineDep) -> CatalogPublic:
    return CatalogPublic.of(
        resellers.create_catalog(engine, merchant.id, slug=body.slug, title=body.title))


@router.get(f"{API_PREFIX}/reseller/catalogs", summary="The reseller's catalogs")
def list_catalogs(merchant: CurrentMerchant, engine: EngineDep) -> list[CatalogPublic]:
    with engine.connect() as connection:
        resellers.get_reseller(connection, merchant.id)
    return [CatalogPublic.of(c) for c in resellers.list_catalogs(engine, merchant.id)]


@router.patch(f"{API_PREFIX}/reseller/catalogs/{{catalog_id}}",
              summary="Retitle a catalog or switch its link off")
def update_catalog(catalog_id: UUID, body: CatalogUpdate, merchant: CurrentMerchant,
                   engine: EngineDep) -> CatalogPublic:
    with engine.connect() as connection:
        resellers.get_reseller(connection, merchant.id)
    return CatalogPublic.of(resellers.update_catalog(
        engine, merchant.id, catalog_id, title=body.title, active=body.active))


@router.put(f"{API_PREFIX}/reseller/catalogs/{{catalog_id}}/items/{{product_id}}",
            summary="Put a supplier's product in the catalog with a margin per unit")
def set_catalog_item(catalog_id: UUID, product_id: UUID, body: CatalogItemSet,
                     merchant: CurrentMerchant, engine: EngineDep,
                     scales: ScalesDep) -> CatalogItemPublic:
    with engine.connect() as connection:
        resellers.get_reseller(connection, merchant.id)
        resellers.owned_catalog(connection, merchant.id, catalog_id)
        currency = catalog.load_product(connection, product_id, active_only=True).currency
    margin_minor = scales.to_minor(body.margin, currency, allow_zero=True)
    item = resellers.set_catalog_item(engine, merchant.id, catalog_id, product_id,
                                      margin_minor=margin_minor)
    return CatalogItemPublic.of(item, currency, scales)


@router.delete(f"{API_PREFIX}/reseller/catalogs/{{catalog_id}}/items/{{product_id}}",
               status_code=204, summary="Take a product out of the catalog")
def remove_catalog_item(catalog_id: UUID, product_id: UUID, merchant: CurrentMerchant,
                        engine: EngineDep) -> Response:
    with engine.connect() as connection:
        resellers.get_reseller(connection, merchant.id)
    resellers.remove_catalog_item(engine, merchant.id, catalog_id, product_id)
    return Response(status_code=204)
