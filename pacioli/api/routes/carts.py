"""/v1/carts: shoppers' carts, for signed-in users (session token) and guests (the
`X-Cart-Token` a guest cart is made with).

A user's current cart is the same on every device. A request carrying both a user's
token and a guest token merges the guest cart into the user's (the first cart call after
logging in does it; `POST /v1/carts/merge` does it explicitly). Edits of existing lines,
coupons and the region carry the `version` the client last saw; a stale one is a 409
`stale_cart_version`. Someone else's cart is a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pacioli.api.auth import EngineDep, current_user_cached
from pacioli.api.deps import ScalesDep
from pacioli.api.errors import Unauthorized
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.carts import (
    CartItemAdd,
    CartItemUpdate,
    CartPublic,
    CartUpdate,
    CouponApply,
    GuestCartPublic,
    MergePublic,
)
from pacioli.commerce import cart_edits, carts
from pacioli.commerce.cart_view import view_cart, viewer
from pacioli.commerce.carts import CartAccess
from pacioli.commerce.errors import CartNotFound
from pacioli.commerce.settings import commerce_settings

router = APIRouter(tags=["commerce: carts"])
CART_TOKEN_HEADER = "X-Cart-Token"

_shopper_bearer = HTTPBearer(
    auto_error=False, scheme_name="ShopperToken",
    description="A user's session token (pat_...); guests send X-Cart-Token instead.",
)


async def cart_access(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_shopper_bearer)],
    cart_token: Annotated[str | None, Header(alias=CART_TOKEN_HEADER, max_length=200)] = None,
) -> CartAccess:
    """The user (a valid session token) and/or guest token asking. Raises: Unauthorized.

    An asyncio dependency: the session comes from the app's session cache when it can
    (like every user route's, docs/users.md), so a cart request makes no thread hop and
    no session read of its own."""
    user_id = None
    if credentials is not None:
        user_id = (await current_user_cached(request, credentials)).id
    if user_id is None and cart_token is None:
        raise Unauthorized(f"send a session token or the {CART_TOKEN_HEADER} header")
    return CartAccess(user_id=user_id, guest_token=cart_token)


Access = Annotated[CartAccess, Depends(cart_access)]


def _idle() -> int:
    return commerce_settings().cart_idle_seconds


def _public(engine, cart_id: UUID, scales) -> CartPublic:
    with engine.connect() as connection:
        view = view_cart(connection, cart_id, now=datetime.now(UTC))
    return CartPublic.of(view, scales, idle_seconds=_idle())


@router.post(f"{API_PREFIX}/carts/guest", status_code=201,
             summary="Start a guest cart (no account needed)")
def create_guest_cart(engine: EngineDep, scales: ScalesDep) -> GuestCartPublic:
    made = carts.new_guest_cart(engine)
    return GuestCartPublic(cart=_public(engine, made.cart.id, scales), token=made.token)


@router.get(f"{API_PREFIX}/carts/current",
            summary="The caller's current cart (a guest cart is merged in at login)")
def get_current_cart(access: Access, engine: EngineDep, scales: ScalesDep) -> CartPublic:
    if access.user_id is None:
        cart = carts.guest_cart(engine, access.guest_token, idle_seconds=_idle())
        return _public(engine, cart.id, scales)
    if access.guest_token is not None:
        try:
            merged = cart_edits.merge_guest_cart(engine, access.user_id, access.guest_token,
                                                 idle_seconds=_idle())
            return _public(engine, merged.cart.id, scales)
        except CartNotFound:
            pass  # The guest cart was merged already (or expired): the user's cart stands.
    cart = carts.user_cart(engine, access.user_id, idle_seconds=_idle())
    return _public(engine, cart.id, scales)


@router.post(f"{API_PREFIX}/carts/merge",
             summary="Merge the guest cart of X-Cart-Token into the user's cart")
def merge_carts(access: Access, engine: EngineDep, scales: ScalesDep) -> MergePublic:
    if access.user_id is None or access.guest_token is None:
        raise Unauthorized(f"send a session token and the {CART_TOKEN_HEADER} header")
    merged = cart_edits.merge_guest_cart(engine, access.user_id, access.guest_token,
                                         idle_seconds=_idle())
    return MergePublic(cart=_public(engine, merged.cart.id, scales),
                       skipped_line_ids=list(merged.skipped_line_ids))


@router.get(f"{API_PREFIX}/carts/{{cart_id}}", summary="A cart with prices and availability")
def get_cart(cart_id: UUID, access: Access, engine: EngineDep, scales: ScalesDep) -> CartPublic:
    with engine.connect() as connection:
        carts.visible_cart(connection, cart_id, access)
    return _public(engine, cart_id, scales)


@router.patch(f"{API_PREFIX}/carts/{{cart_id}}", summary="Set where the cart ships")
def update_cart(cart_id: UUID, body: CartUpdate, access: Access, engine: EngineDep,
                scales: ScalesDep) -> CartPublic:
    cart = cart_edits.set_region(engine, cart_id, access, region=body.region,
                                 expected_version=body.version, idle_seconds=_idle())
    return _public(engine, cart.id, scales)


@router.post(f"{API_PREFIX}/carts/{{cart_id}}/items", status_code=201,
             summary="Add units of a product variant")
def add_item(cart_id: UUID, body: CartItemAdd, access: Access, engine: EngineDep,
             scales: ScalesDep) -> CartPublic:
    view = cart_edits.add_item(
        engine, cart_id, access, variant_id=body.variant_id, quantity=body.quantity,
        catalog_slug=body.catalog_slug, expected_version=body.version, idle_seconds=_idle(),
        answer=viewer(datetime.now(UTC)))
    return CartPublic.of(view, scales, idle_seconds=_idle())


@router.patch(f"{API_PREFIX}/carts/{{cart_id}}/items/{{line_id}}",
              summary="Change a line's quantity, or save it for later (or move it back)")
def update_item(cart_id: UUID, line_id: UUID, body: CartItemUpdate, access: Access,
                engine: EngineDep, scales: ScalesDep) -> CartPublic:
    if body.quantity is not None:
        cart = cart_edits.set_quantity(engine, cart_id, access, line_id, quantity=body.quantity,
                                       expected_version=body.version, idle_seconds=_idle())
    else:
        cart = cart_edits.set_saved_for_later(
            engine, cart_id, access, line_id, saved=body.saved_for_later,
            expected_version=body.version, idle_seconds=_idle())
    return _public(engine, cart.id, scales)


@router.delete(f"{API_PREFIX}/carts/{{cart_id}}/items/{{line_id}}", summary="Remove a line")
def remove_item(cart_id: UUID, line_id: UUID, access: Access, engine: EngineDep,
                scales: ScalesDep,
                version: Annotated[int, Query(description="The cart version seen.")]) -> CartPublic:
    cart = cart_edits.remove_item(engine, cart_id, access, line_id, expected_version=version,
                                  idle_seconds=_idle())
    return _public(engine, cart.id, scales)


@router.put(f"{API_PREFIX}/carts/{{cart_id}}/coupon", summary="Put a coupon on the cart")
def apply_coupon(cart_id: UUID, body: CouponApply, access: Access, engine: EngineDep,
                 scales: ScalesDep) -> CartPublic:
    cart = cart_edits.apply_coupon(engine, cart_id, access, code=body.code,
                                   expected_version=body.version, idle_seconds=_idle())
    return _public(engine, cart.id, scales)


@router.delete(f"{API_PREFIX}/carts/{{cart_id}}/coupon", summary="Take the coupon off")
def remove_coupon(cart_id: UUID, access: Access, engine: EngineDep, scales: ScalesDep,
                  version: Annotated[int, Query(description="The cart version seen.")]
                  ) -> CartPublic:
    cart = cart_edits.remove_coupon(engine, cart_id, access, expected_version=version,
                                    idle_seconds=_idle())
    return _public(engine, cart.id, scales)
