"""Who is asking: user tokens, merchant keys and admin keys, as `Annotated` dependencies.

All three arrive as `Authorization: Bearer <secret>` and are told apart by their prefix:
`pat_` a user's session token, `sk_live_`/`sk_test_` a merchant's secret key, anything
else is tried as an admin key. A missing, unknown, expired or revoked credential is a
401 `unauthorized`; a merchant key whose merchant is not approved is a 403
`merchant_not_approved`. Routes declare what they accept:

    def get_me(user: CurrentUser) -> ...            # a user's token only
    def get_payment(merchant: CurrentMerchant) ...  # a merchant's key only

Write routes that create things also take `IdempotencyKeyHeader`, and routes guarded by
a second factor take `OneTimeCode` (header `Pacioli-OTP`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, TypeVar
from uuid import UUID

from argon2 import PasswordHasher
from fastapi import Depends, Header, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from pacioli.api.caches import SessionCache
from pacioli.api.deps import REPLAYED_HEADER, checked_idempotency_key
from pacioli.api.errors import Unauthorized
from pacioli.ledger import Written
from pacioli.payments import merchants, sessions
from pacioli.payments.identity_errors import MerchantNotApproved
from pacioli.payments.identity_idempotency import WriteKey

T = TypeVar("T")

OTP_HEADER = "Pacioli-OTP"


@dataclass(frozen=True, slots=True)
class AuthenticatedUser:
    """A user who presented a live session token."""

    id: UUID
    session_id: UUID
    session_expires_at: datetime

    @property
    def principal(self) -> str:
        """The user's scope for idempotency keys."""
        return f"user:{self.id}"


@dataclass(frozen=True, slots=True)
class AuthenticatedMerchant:
    """An approved merchant that presented one of its live secret keys."""

    id: UUID
    key_id: UUID
    mode: merchants.KeyMode
    owner_user_id: UUID
    name: str

    @property
    def principal(self) -> str:
        """The merchant's scope for idempotency keys."""
        return f"merchant:{self.id}"


@dataclass(frozen=True, slots=True)
class AuthenticatedAdmin:
    """An operator who presented an admin key (`pacioli admin create-key`)."""

    client_id: str

    @property
    def principal(self) -> str:
        return f"admin:{self.client_id}"


# Dependencies that only read app state are `async def`: FastAPI runs a plain `def`
# dependency on a worker thread, a hop that costs more than the dependency itself.


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_password_hasher(request: Request) -> PasswordHasher:
    return request.app.state.password_hasher


EngineDep = Annotated[Engine, Depends(get_engine)]
HasherDep = Annotated[PasswordHasher, Depends(get_password_hasher)]

_user_bearer = HTTPBearer(
    auto_error=False, scheme_name="UserToken",
    description="A user's session token (pat_...) from POST /v1/sessions.",
)
_merchant_bearer = HTTPBearer(
    auto_error=False, scheme_name="MerchantKey",
    description="A merchant's secret key (sk_live_... or sk_test_...).",
)
_any_bearer = HTTPBearer(
    auto_error=False, scheme_name="AdminKeyOrUserToken",
    description="An admin key, or a user's session token (pat_...).",
)
Credentials = HTTPAuthorizationCredentials | None


def _secret(credentials: Credentials, what: str) -> str:
    """Raises: Unauthorized (no bearer credentials)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized(f"send {what} as 'Authorization: Bearer <secret>'")
    return credentials.credentials


def _user_of(engine: Engine, token: str) -> AuthenticatedUser:
    """Raises: Unauthorized (unknown, expired or revoked token)."""
    session = sessions.find_session(engine, token)
    if session is None:
        raise Unauthorized("the session token is not valid (unknown, expired or logged out)")
    return AuthenticatedUser(session.user_id, session.id, session.expires_at)


def current_user(
    engine: EngineDep, credentials: Annotated[Credentials, Depends(_user_bearer)]
) -> AuthenticatedUser:
    """The user whose session token presents the request, looked up in the database.

    Raises: Unauthorized.
    """
    return _user_of(engine, _secret(credentials, "a session token"))


async def current_user_cached(
    request: Request, credentials: Annotated[Credentials, Depends(_user_bearer)]
) -> AuthenticatedUser:
    """The user whose session token presents the request, through the app's SessionCache
    (a session revoked by another process works here for at most its TTL).

    Raises: Unauthorized.
    """
    token = _secret(credentials, "a session token")
    cache: SessionCache = request.app.state.sessions
    session = cache.cached(token)
    if session is None and token.startswith(sessions.TOKEN_PREFIX):
        session = await run_in_threadpool(cache.look_up, token)
    if session is None:
        raise Unauthorized("the session token is not valid (unknown, expired or logged out)")
    return AuthenticatedUser(session.user_id, session.id, session.expires_at)


def current_merchant(
    engine: EngineDep, credentials: Annotated[Credentials, Depends(_merchant_bearer)]
) -> AuthenticatedMerchant:
    """The merchant whose secret key presents the request.

    Raises: Unauthorized (unknown, expired or revoked key), MerchantNotApproved.
    """
    holder = merchants.find_key_holder(engine, _secret(credentials, "a secret key"))
    if holder is None:
        raise Unauthorized("the secret key is not valid (unknown, expired or revoked)")
    merchant = holder.merchant
    if merchant.status != merchants.MerchantStatus.APPROVED:
        raise MerchantNotApproved(f"the merchant is {merchant.status}; its keys do not work yet")
    return AuthenticatedMerchant(
        merchant.id, holder.key_id, holder.mode, merchant.owner_user_id, merchant.name
    )


def admin_or_user(
    request: Request,
    engine: EngineDep,
    credentials: Annotated[Credentials, Depends(_any_bearer)],
) -> AuthenticatedAdmin | AuthenticatedUser:
    """An admin (by admin key) or a user (by session token). Raises: Unauthorized."""
    secret = _secret(credentials, "an admin key or a session token")
    if secret.startswith(sessions.TOKEN_PREFIX):
        return _user_of(engine, secret)
    client_id = request.app.state.admin_keys.client_id_of(secret)
    if client_id is None:
        raise Unauthorized("the key is neither an admin key nor a live session token")
    return AuthenticatedAdmin(client_id)


CurrentUser = Annotated[AuthenticatedUser, Depends(current_user_cached)]
CurrentMerchant = Annotated[AuthenticatedMerchant, Depends(current_merchant)]
AdminOrUser = Annotated[AuthenticatedAdmin | AuthenticatedUser, Depends(admin_or_user)]


# The header as sent; `checked_idempotency_key` refuses a missing or malformed one.
IdempotencyKeyValue = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Required: 1-255 characters, unique per write and caller."
        " A retry with the same key and body returns the first result.",
    ),
]


async def idempotency_key(idempotency_key: IdempotencyKeyValue = None) -> str:
    """Raises: IdempotencyKeyRequired, InvalidIdempotencyKey."""
    return checked_idempotency_key(idempotency_key)


IdempotencyKeyHeader = Annotated[str, Depends(idempotency_key)]

OneTimeCode = Annotated[
    str | None,
    Header(
        alias=OTP_HEADER,
        description="The 6-digit code of the user's authenticator, where an action needs"
        " a second factor.",
    ),
]


def write_key(principal: str, key: str) -> WriteKey:
    return WriteKey(principal, key)


def result(response: Response, written: Written[T]) -> T:
    """The written value, marking the response when it is a replay."""
    if written.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return written.value
