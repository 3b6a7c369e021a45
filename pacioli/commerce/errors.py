"""Commerce's expected rejections (catalog, inventory, carts, promotions), in the ledger's
four families so the API's one table maps them: InvalidCommand 422, NotFound 404,
Rejected 422, Conflict 409; `Forbidden` (403) for a merchant without the commerce role a
route needs. What belongs to another merchant or shopper is a NotFound, never a hint
that it exists."""

from __future__ import annotations

from uuid import UUID

from pacioli.ledger.domain.errors import Conflict, InvalidCommand, NotFound, Rejected
from pacioli.payments.identity_errors import Forbidden


class InvalidCommerceRequest(InvalidCommand):
    """The request is malformed (a field out of range or inconsistent with another)."""

    code = "validation_error"


class NotASupplier(Forbidden):
    """The merchant has not registered as a supplier."""

    code = "not_a_supplier"


class NotAReseller(Forbidden):
    """The merchant has not registered as a reseller."""

    code = "not_a_reseller"


class ProductNotFound(NotFound):
    """No product with this id is visible to the caller."""

    code = "product_not_found"


class VariantNotFound(NotFound):
    """No variant with this id is visible to the caller."""

    code = "variant_not_found"


class CatalogNotFound(NotFound):
    """No reseller catalog with this id or slug is visible to the caller."""

    code = "catalog_not_found"


class ProductNotInCatalog(NotFound):
    """The reseller's catalog does not list this product."""

    code = "product_not_in_catalog"


class SlugTaken(Conflict):
    """Another catalog already uses this slug."""

    code = "catalog_slug_taken"


class SkuTaken(Conflict):
    """The product already has a variant with this SKU."""

    code = "sku_taken"


class IdempotencyKeyReusedForCommerce(Conflict):
    """The Idempotency-Key was already used for a different request."""

    code = "idempotency_key_reused"


class CurrencyMismatch(Rejected):
    """The item's currency is not the cart's (a cart holds one currency)."""

    code = "currency_mismatch"


class OutOfStock(Rejected):
    """Not enough units of a variant are available."""

    code = "out_of_stock"

    def __init__(self, variant_id: UUID, detail: str | None = None) -> None:
        self.variant_id = variant_id
        super().__init__(detail or f"variant {variant_id} does not have enough units available")


class ProductUnavailable(Rejected):
    """The product or variant is no longer sold."""

    code = "product_unavailable"


class ReservationNotFound(NotFound):
    """No stock reservation has this id."""

    code = "reservation_not_found"


class ReservationNotHeld(Conflict):
    """The reservation was already committed, released or expired."""

    code = "reservation_not_held"


class CartNotFound(NotFound):
    """No cart with this id (or token) is visible to the caller."""

    code = "cart_not_found"


class CartItemNotFound(NotFound):
    """The cart has no line with this id."""

    code = "cart_item_not_found"


class StaleCart(Conflict):
    """The cart changed since the version the request was based on; read it again."""

    code = "stale_cart_version"


class CartNotActive(Conflict):
    """The cart was merged into another or expired."""

    code = "cart_not_active"


class CouponNotFound(NotFound):
    """No coupon has this code."""

    code = "coupon_not_found"


class CouponExpired(Rejected):
    """The coupon is not valid now (expired, not started yet, or withdrawn)."""

    code = "coupon_expired"


class CouponExhausted(Rejected):
    """The coupon reached its usage limit (overall or for this user)."""

    code = "coupon_exhausted"


class CouponNotApplicable(Rejected):
    """The coupon does not apply to this cart (currency or minimum subtotal)."""

    code = "coupon_not_applicable"


class CouponCodeTaken(Conflict):
    """A coupon with this code exists already."""

    code = "coupon_code_taken"


class PromotionNotFound(NotFound):
    """No promotion with this id is visible to the caller."""

    code = "promotion_not_found"
