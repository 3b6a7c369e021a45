"""/v1/admin/commerce/... (an admin's coupons, order promotions and tax rates) and
/v1/supplier/promotions (a supplier's catalogue discounts on its own products).

Coupons and order promotions are the platform's, so admin keys manage them; a
catalogue discount is a supplier's price decision, so its merchant key does. Withdrawing
is switching off (`/deactivate`), so a past price can always be explained.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from pacioli.api.auth import CurrentMerchant, EngineDep
from pacioli.api.deps import AdminClient, PageLimit, ScalesDep
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.promotions import (
    CataloguePromotionCreate,
    CouponCreate,
    CouponPublic,
    OrderPromotionCreate,
    PromotionPublic,
    TaxRatePublic,
    TaxRateSet,
)
from pacioli.commerce import catalog, promotion_admin, taxes

router = APIRouter(tags=["commerce: promotions and tax"])
ADMIN = f"{API_PREFIX}/admin/commerce"


# Coupons (admin).


@router.post(f"{ADMIN}/coupons", status_code=201, summary="Make a coupon code")
def create_coupon(body: CouponCreate, _: AdminClient, engine: EngineDep,
                  scales: ScalesDep) -> CouponPublic:
    coupon = promotion_admin.create_coupon(
        engine, body.code, body.terms(scales), usage_limit_total=body.usage_limit_total,
        usage_limit_per_user=body.usage_limit_per_user)
    return CouponPublic.of(coupon, scales)


@router.get(f"{ADMIN}/coupons", summary="Coupons, by code")
def list_coupons(_: AdminClient, engine: EngineDep, scales: ScalesDep, limit: PageLimit = 50,
                 starting_after: str | None = None) -> Page[CouponPublic]:
    coupons = promotion_admin.list_coupons(engine, limit=limit + 1,
                                           starting_after=starting_after)
    return Page.of(coupons, limit, lambda c: CouponPublic.of(c, scales), lambda c: c.code)


@router.get(f"{ADMIN}/coupons/{{code}}", summary="One coupon and how often it was used")
def get_coupon(code: str, _: AdminClient, engine: EngineDep,
               scales: ScalesDep) -> CouponPublic:
    return CouponPublic.of(promotion_admin.get_coupon(engine, code), scales)


@router.post(f"{ADMIN}/coupons/{{code}}/deactivate", summary="Withdraw a coupon")
def deactivate_coupon(code: str, _: AdminClient, engine: EngineDep,
                      scales: ScalesDep) -> CouponPublic:
    return CouponPublic.of(promotion_admin.set_coupon_active(engine, code, active=False), scales)


# Order promotions (admin).


@router.post(f"{ADMIN}/promotions", status_code=201,
             summary="Make an automatic order promotion")
def create_order_promotion(body: OrderPromotionCreate, _: AdminClient, engine: EngineDep,
                           scales: ScalesDep) -> PromotionPublic:
    promotion = promotion_admin.create_promotion(
        engine, name=body.name, scope="order", target_id=None, terms=body.terms(scales),
        supplier_id=None)
    return PromotionPublic.of(promotion, scales)


@router.get(f"{ADMIN}/promotions", summary="The platform's order promotions")
def list_order_promotions(_: AdminClient, engine: EngineDep,
                          scales: ScalesDep) -> list[PromotionPublic]:
    return [PromotionPublic.of(p, scales)
            for p in promotion_admin.list_promotions(engine, supplier_id=None)]


@router.post(f"{ADMIN}/promotions/{{promotion_id}}/deactivate",
             summary="Withdraw an order promotion")
def deactivate_order_promotion(promotion_id: UUID, _: AdminClient, engine: EngineDep,
                               scales: ScalesDep) -> PromotionPublic:
    promotion = promotion_admin.set_promotion_active(engine, promotion_id, active=False,
                                                     supplier_id=None)
    return PromotionPublic.of(promotion, scales)


# Tax rates (admin).


@router.put(f"{ADMIN}/tax-rates/{{category}}/{{region}}",
            summary="Set the tax rate of a category in a region ('*' matches any)")
def set_tax_rate(category: str, region: str, body: TaxRateSet, _: AdminClient,
                 engine: EngineDep) -> TaxRatePublic:
    return TaxRatePublic.of(taxes.set_tax_rate(engine, category, region, body.rate_bps))


@router.delete(f"{ADMIN}/tax-rates/{{category}}/{{region}}", status_code=204,
               summary="Remove a tax rate")
def remove_tax_rate(category: str, region: str, _: AdminClient, engine: EngineDep) -> Response:
    taxes.remove_tax_rate(engine, category, region)
    return Response(status_code=204)


@router.get(f"{ADMIN}/tax-rates", summary="The tax rate table")
def list_tax_rates(_: AdminClient, engine: EngineDep) -> list[TaxRatePublic]:
    return [TaxRatePublic.of(rate) for rate in taxes.list_tax_rates(engine)]


# Catalogue discounts (suppliers).


@router.post(f"{API_PREFIX}/supplier/promotions", status_code=201,
             summary="Discount one of the supplier's products or variants")
def create_catalogue_promotion(body: CataloguePromotionCreate, merchant: CurrentMerchant,
                               engine: EngineDep, scales: ScalesDep) -> PromotionPublic:
    _require_supplier(engine, merchant.id)
    promotion = promotion_admin.create_promotion(
        engine, name=body.name, scope=body.scope, target_id=body.target_id,
        terms=body.terms(scales), supplier_id=merchant.id)
    return PromotionPublic.of(promotion, scales)


@router.get(f"{API_PREFIX}/supplier/promotions", summary="The supplier's catalogue discounts")
def list_catalogue_promotions(merchant: CurrentMerchant, engine: EngineDep,
                              scales: ScalesDep) -> list[PromotionPublic]:
    _require_supplier(engine, merchant.id)
    return [PromotionPublic.of(p, scales)
            for p in promotion_admin.list_promotions(engine, supplier_id=merchant.id)]


@router.post(f"{API_PREFIX}/supplier/promotions/{{promotion_id}}/deactivate",
             summary="Withdraw a catalogue discount")
def deactivate_catalogue_promotion(promotion_id: UUID, merchant: CurrentMerchant,
                                   engine: EngineDep, scales: ScalesDep) -> PromotionPublic:
    _require_supplier(engine, merchant.id)
    promotion = promotion_admin.set_promotion_active(engine, promotion_id, active=False,
                                                     supplier_id=merchant.id)
    return PromotionPublic.of(promotion, scales)


def _require_supplier(engine, merchant_id: UUID) -> None:
    with engine.connect() as connection:
        catalog.get_supplier(connection, merchant_id)
