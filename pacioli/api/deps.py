"""FastAPI dependencies, each behind an `Annotated` alias the routes declare.

`LedgerDep` and `ScalesDep` hand out the app's ledger and asset scales; `AdminClient`
authenticates the bearer admin key; `IdempotentWrite` adds the Idempotency-Key header
and marks replayed responses; `PageLimit` and `MetadataFilter` read list parameters.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Header, Query, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine

from pacioli.api.admin_keys import find_admin_key
from pacioli.api.errors import (
    IdempotencyKeyRequired,
    InvalidIdempotencyKey,
    InvalidRequest,
    Unauthorized,
)
from pacioli.api.schemas.money import AssetScales
from pacioli.ledger import Ledger, Written

T = TypeVar("T")

IDEMPOTENCY_KEY_LENGTH_MAX = 255
REPLAYED_HEADER = "Idempotent-Replayed"
PAGE_LIMIT_DEFAULT = 50
PAGE_LIMIT_MAX = 200
# A revoked key keeps working for at most this long in a process that saw it recently.
ADMIN_KEY_CACHE_TTL_S = 5.0
ADMIN_KEY_CACHE_SIZE_MAX = 10_000


async def get_ledger(request: Request) -> Ledger:
    return request.app.state.ledger


async def get_asset_scales(request: Request) -> AssetScales:
    return request.app.state.asset_scales


LedgerDep = Annotated[Ledger, Depends(get_ledger)]
ScalesDep = Annotated[AssetScales, Depends(get_asset_scales)]


# Authentication.


class AdminKeyCache:
    """Admin key lookups, remembered for a few seconds so each request need not query.

    Only hits are cached (by the key's digest, never its plaintext), so a new key works
    at once and a revoked one stops within ADMIN_KEY_CACHE_TTL_S.
    """

    def __init__(self, engine: Engine, *, ttl_s: float = ADMIN_KEY_CACHE_TTL_S) -> None:
        self._engine = engine
        self._ttl_s = ttl_s
        self._hits: dict[bytes, tuple[str, float]] = {}

    def client_id_of(self, key: str) -> str | None:
        digest = hashlib.sha256(key.encode()).digest()
        now = time.monotonic()
        hit = self._hits.get(digest)
        if hit is not None and now - hit[1] < self._ttl_s:
            return hit[0]
        key_id = find_admin_key(self._engine, key)
        if key_id is None:
            self._hits.pop(digest, None)
            return None
        if len(self._hits) >= ADMIN_KEY_CACHE_SIZE_MAX:
            self._hits.clear()
        self._hits[digest] = (str(key_id), now)
        return str(key_id)


_bearer = HTTPBearer(
    auto_error=False, description="An admin key made by `pacioli admin create-key`."
)


def admin_client(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str:
    """The id of the admin key presenting the request; the ledger's client id.

    Raises: Unauthorized.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("send an admin key as 'Authorization: Bearer <key>'")
    client_id = request.app.state.admin_keys.client_id_of(credentials.credentials)
    if client_id is None:
        raise Unauthorized("the admin key is not valid")
    return client_id


AdminClient = Annotated[str, Depends(admin_client)]


# Idempotent writes.


@dataclass(frozen=True, slots=True)
class Write:
    """A write request's client id and idempotency key, and its response headers."""

    client_id: str
    key: str
    response: Response

    def result(self, written: Written[T]) -> T:
        """The written value, marking the response when the ledger replayed it."""
        if written.replayed:
            self.response.headers[REPLAYED_HEADER] = "true"
        return written.value


def idempotent_write(
    client_id: AdminClient,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Required on every write: 1-255 characters, unique per write."
            " A retry with the same key and body returns the first result.",
        ),
    ] = None,
) -> Write:
    """Raises: IdempotencyKeyRequired, InvalidIdempotencyKey."""
    return Write(client_id, checked_idempotency_key(idempotency_key), response)


def checked_idempotency_key(idempotency_key: str | None) -> str:
    """The Idempotency-Key header's value, present and within its length limit.

    Raises: IdempotencyKeyRequired, InvalidIdempotencyKey.
    """
    if not idempotency_key:
        raise IdempotencyKeyRequired("write requests need an Idempotency-Key header")
    if len(idempotency_key) > IDEMPOTENCY_KEY_LENGTH_MAX:
        raise InvalidIdempotencyKey(
            f"the Idempotency-Key header has {len(idempotency_key)} characters;"
            f" the limit is {IDEMPOTENCY_KEY_LENGTH_MAX}"
        )
    return idempotency_key


IdempotentWrite = Annotated[Write, Depends(idempotent_write)]


# Lists.

PageLimit = Annotated[
    int, Query(ge=1, le=PAGE_LIMIT_MAX, description=f"At most {PAGE_LIMIT_MAX} items.")
]

_METADATA_PARAM = re.compile(r"metadata\[(.+)\]")


def metadata_filter(request: Request) -> dict[str, str]:
    """`metadata[key]=value` query parameters; values match metadata values as strings.

    Raises: InvalidRequest (the same key given twice).
    """
    wanted: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        match = _METADATA_PARAM.fullmatch(name)
        if match is None:
            continue
        if match[1] in wanted:
            raise InvalidRequest(f"metadata[{match[1]}] is given more than once")
        wanted[match[1]] = value
    return wanted


MetadataFilter = Annotated[dict[str, str], Depends(metadata_filter)]
