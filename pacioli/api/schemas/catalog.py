"""Suppliers, resellers, products, variants, stock and reseller catalogs on the wire.

Prices are decimal strings in major units of the product's currency
(`{"amount": "19.99", "currency": "USD"}` in responses); `api/schemas/money.py` converts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import (
    BaseModel,
    Field,
    SerializeAsAny,
    StrictBool,
    StrictInt,
    StrictStr,
    model_validator,
)

from pacioli.api.schemas.common import RequestModel
from pacioli.api.schemas.money import AmountStr, AssetScales
from pacioli.commerce.catalog import Product, Supplier, Variant
from pacioli.commerce.catalog_search import Listing
from pacioli.commerce.resellers import Catalog, CatalogItem, Reseller


class MoneyPublic(BaseModel):
    amount: str
    currency: str

    @classmethod
    def of(cls, amount_minor: int, currency: str, scales: AssetScales) -> MoneyPublic:
        return cls(amount=scales.to_major(amount_minor, currency), currency=currency)


# Roles.


class SupplierRegister(RequestModel):
    low_stock_threshold: StrictInt | None = Field(
        None, ge=0, description="Notify when a variant's available stock falls below this.")


class SupplierUpdate(RequestModel):
    low_stock_threshold: StrictInt = Field(ge=0)


class SupplierPublic(BaseModel):
    merchant_id: UUID
    low_stock_threshold: int
    created_at: datetime

    @classmethod
    def of(cls, supplier: Supplier) -> SupplierPublic:
        return cls(merchant_id=supplier.merchant_id,
                   low_stock_threshold=supplier.low_stock_threshold,
                   created_at=supplier.created_at)


class ShippingRateSet(RequestModel):
    fee: AmountStr = Field(description="Flat shipping per order from this supplier.")
    free_above: AmountStr | None = Field(
        None, description="Free when this supplier's discounted lines reach this amount.")


class ShippingRatePublic(BaseModel):
    currency: str
    fee: str
    free_above: str | None


class ResellerPublic(BaseModel):
    merchant_id: UUID
    created_at: datetime

    @classmethod
    def of(cls, reseller: Reseller) -> ResellerPublic:
        return cls(merchant_id=reseller.merchant_id, created_at=reseller.created_at)


# Products.


class VariantCreate(RequestModel):
    sku: StrictStr = Field(min_length=1, max_length=200)
    price: AmountStr
    stock: StrictInt = Field(0, ge=0, description="Units available to sell.")
    size: StrictStr | None = Field(None, max_length=200)
    colour: StrictStr | None = Field(None, max_length=200)
    low_stock_threshold: StrictInt | None = Field(None, ge=0)


class ProductCreate(RequestModel):
    name: StrictStr = Field(min_length=1, max_length=200)
    description: StrictStr = Field("", max_length=5000)
    brand: StrictStr = Field("", max_length=200)
    category: StrictStr = Field("general", min_length=1, max_length=200,
                                description="The tax rate table's category.")
    currency: StrictStr
    image_urls: list[StrictStr] = Field(default_factory=list, max_length=20)
    attributes: dict[str, Any] = Field(default_factory=dict)
    variants: list[VariantCreate] = Field(min_length=1, max_length=100)


class ProductUpdate(RequestModel):
    name: StrictStr | None = Field(None, min_length=1, max_length=200)
    description: StrictStr | None = Field(None, max_length=5000)
    brand: StrictStr | None = Field(None, max_length=200)
    category: StrictStr | None = Field(None, min_length=1, max_length=200)
    image_urls: list[StrictStr] | None = Field(None, max_length=20)
    attributes: dict[str, Any] | None = None
    active: StrictBool | None = None


class VariantUpdate(RequestModel):
    price: AmountStr | None = None
    active: StrictBool | None = None
    low_stock_threshold: StrictInt | None = Field(None, ge=0)


class StockSet(RequestModel):
    """Exactly one: the available units, or a change to them (negative removes)."""

    available: StrictInt | None = Field(None, ge=0)
    adjust_by: StrictInt | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> StockSet:
        if (self.available is None) == (self.adjust_by is None):
            raise ValueError("give exactly one of available and adjust_by")
        return self


class VariantPublic(BaseModel):
    id: UUID
    sku: str
    size: str | None
    colour: str | None
    price: MoneyPublic
    stock_available: int
    in_stock: bool
    active: bool

    @classmethod
    def of(cls, variant: Variant, currency: str, scales: AssetScales,
           margin_minor: int = 0) -> VariantPublic:
        return cls(
            id=variant.id, sku=variant.sku, size=variant.size, colour=variant.colour,
            price=MoneyPublic.of(variant.price_minor + margin_minor, currency, scales),
            stock_available=variant.stock_available, in_stock=variant.stock_available > 0,
            active=variant.active,
        )


class SupplierVariantPublic(VariantPublic):
    """A variant as its supplier sees it: with reserved and sold units."""

    stock_reserved: int
    stock_sold: int
    low_stock_threshold: int | None

    @classmethod
    def of(cls, variant: Variant, currency: str, scales: AssetScales,
           margin_minor: int = 0) -> SupplierVariantPublic:
        base = VariantPublic.of(variant, currency, scales).model_dump()
        return cls(**base, stock_reserved=variant.stock_reserved, stock_sold=variant.stock_sold,
                   low_stock_threshold=variant.low_stock_threshold)


class ProductPublic(BaseModel):
    id: UUID
    supplier_id: UUID
    name: str
    description: str
    brand: str
    category: str
    currency: str
    image_urls: list[str]
    attributes: dict[str, Any]
    active: bool
    created_at: datetime
    updated_at: datetime
    # A supplier's own products show SupplierVariantPublic (with reserved and sold units).
    variants: list[SerializeAsAny[VariantPublic]]
    catalog_slug: str | None = Field(
        None, description="The reseller catalog whose prices (margin included) are shown.")

    @classmethod
    def of(cls, product: Product, scales: AssetScales, *, margin_minor: int = 0,
           catalog_slug: str | None = None, supplier_view: bool = False) -> ProductPublic:
        variant_type = SupplierVariantPublic if supplier_view else VariantPublic
        return cls(
            id=product.id, supplier_id=product.supplier_id, name=product.name,
            description=product.description, brand=product.brand, category=product.category,
            currency=product.currency, image_urls=list(product.image_urls),
            attributes=product.attributes, active=product.active,
            created_at=product.created_at, updated_at=product.updated_at,
            variants=[variant_type.of(v, product.currency, scales, margin_minor)
                      for v in product.variants],
            catalog_slug=catalog_slug,
        )

    @classmethod
    def of_listing(cls, listing: Listing, scales: AssetScales,
                   catalog_slug: str | None = None) -> ProductPublic:
        return cls.of(listing.product, scales, margin_minor=listing.margin_minor,
                      catalog_slug=catalog_slug)


# Reseller catalogs.


class CatalogCreate(RequestModel):
    slug: StrictStr = Field(description="3-63 of a-z, 0-9 and '-': the shared link's name.")
    title: StrictStr = Field(min_length=1, max_length=200)


class CatalogUpdate(RequestModel):
    title: StrictStr | None = Field(None, min_length=1, max_length=200)
    active: StrictBool | None = None


class CatalogPublic(BaseModel):
    id: UUID
    reseller_id: UUID
    slug: str
    title: str
    active: bool
    share_path: str = Field(description="The public link shoppers browse and buy through.")
    created_at: datetime

    @classmethod
    def of(cls, catalog: Catalog) -> CatalogPublic:
        return cls(id=catalog.id, reseller_id=catalog.reseller_id, slug=catalog.slug,
                   title=catalog.title, active=catalog.active,
                   share_path=f"/v1/shops/{catalog.slug}", created_at=catalog.created_at)


class CatalogItemSet(RequestModel):
    margin: AmountStr = Field(description="Per unit, in the product's currency; may be 0.")


class CatalogItemPublic(BaseModel):
    catalog_id: UUID
    product_id: UUID
    margin: MoneyPublic
    added_at: datetime

    @classmethod
    def of(cls, item: CatalogItem, currency: str, scales: AssetScales) -> CatalogItemPublic:
        return cls(catalog_id=item.catalog_id, product_id=item.product_id,
                   margin=MoneyPublic.of(item.margin_minor, currency, scales),
                   added_at=item.added_at)
