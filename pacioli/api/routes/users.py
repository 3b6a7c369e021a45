"""/v1/users, /v1/sessions and /v1/me: sign up, log in and out, the caller's account, TOTP."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response

from pacioli.api.auth import (
    CurrentUser,
    EngineDep,
    HasherDep,
    IdempotencyKeyHeader,
    result,
    write_key,
)
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.merchants import MerchantList, MerchantPublic
from pacioli.api.schemas.users import (
    MePublic,
    SessionCreate,
    SessionPublic,
    TotpConfirm,
    TotpEnrolmentPublic,
    TotpPublic,
    UserCreate,
    UserPublic,
)
from pacioli.commerce import cart_edits
from pacioli.commerce.errors import CartNotFound
from pacioli.commerce.settings import commerce_settings
from pacioli.payments import merchants, sessions, totp, users
from pacioli.payments.identity_errors import ContactRequired
from pacioli.payments.identity_idempotency import ANONYMOUS

router = APIRouter(prefix=API_PREFIX, tags=["users"])


@router.post("/users", status_code=201, summary="Sign up with an email or phone and a password")
def sign_up(
    body: UserCreate,
    engine: EngineDep,
    hasher: HasherDep,
    key: IdempotencyKeyHeader,
    response: Response,
) -> UserPublic:
    written = users.sign_up(
        engine, email=body.email, phone=body.phone, password=body.password.get_secret_value(),
        display_name=body.display_name, write_key=write_key(ANONYMOUS, key), hasher=hasher,
    )
    return UserPublic.of(result(response, written))


@router.post("/sessions", status_code=201, summary="Log in: a bearer token for the user")
def log_in(
    body: SessionCreate,
    engine: EngineDep,
    hasher: HasherDep,
    cart_token: Annotated[
        str | None,
        Header(alias="X-Cart-Token", max_length=200,
               description="A guest cart to merge into the user's cart on logging in."),
    ] = None,
) -> SessionPublic:
    if (body.email is None) == (body.phone is None):
        raise ContactRequired("log in with exactly one of email and phone")
    user, session = sessions.log_in(
        engine, login=body.email or body.phone or "", password=body.password.get_secret_value(),
        hasher=hasher,
    )
    if cart_token is not None:
        # The shopper's guest cart joins their cart now; GET /v1/carts/current merges it
        # too, so a login that skipped this (or a cart already merged) loses nothing.
        with contextlib.suppress(CartNotFound):
            cart_edits.merge_guest_cart(
                engine, user.id, cart_token, idle_seconds=commerce_settings().cart_idle_seconds
            )
    return SessionPublic(
        id=session.id, token=session.token, expires_at=session.expires_at,
        user=UserPublic.of(user),
    )


@router.delete("/sessions/current", status_code=204, summary="Log out: revoke this token")
def log_out(user: CurrentUser, engine: EngineDep, request: Request) -> Response:
    sessions.revoke_session(engine, user.session_id)
    request.app.state.sessions.forget_session(user.session_id)
    return Response(status_code=204)


@router.delete("/sessions", status_code=204, summary="Log out everywhere: revoke every token")
def log_out_everywhere(user: CurrentUser, engine: EngineDep, request: Request) -> Response:
    sessions.revoke_all_sessions(engine, user.id)
    request.app.state.sessions.forget_user(user.id)
    return Response(status_code=204)


@router.get("/me", summary="The caller's own account")
def get_me(user: CurrentUser, engine: EngineDep) -> MePublic:
    return MePublic.of_me(
        users.get_user(engine, user.id), totp_enabled=totp.is_enrolled(engine, user.id)
    )


@router.get("/me/merchants", summary="The merchants the caller owns")
def list_my_merchants(user: CurrentUser, engine: EngineDep) -> MerchantList:
    return MerchantList(
        data=[MerchantPublic.of(m) for m in merchants.merchants_of(engine, user.id)]
    )


@router.post("/me/totp", status_code=201, summary="Enrol an authenticator (TOTP)")
def enrol_totp(user: CurrentUser, engine: EngineDep) -> TotpEnrolmentPublic:
    me = users.get_user(engine, user.id)
    enrolment = totp.enrol(engine, user.id, account_name=me.email or me.phone or str(me.id))
    return TotpEnrolmentPublic(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)


@router.post("/me/totp/confirm", summary="Confirm the authenticator with a first code")
def confirm_totp(body: TotpConfirm, user: CurrentUser, engine: EngineDep) -> TotpPublic:
    totp.confirm(engine, user.id, body.code)
    return TotpPublic(enabled=True)
