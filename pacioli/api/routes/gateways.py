"""Gateway callbacks: `POST /v1/gateways/{name}/callbacks`, signed by the gateway.

No API key: the HMAC signature is the authentication. The route reads the raw body
(the signature covers its exact bytes), hands it to `gateways.callbacks.record_callback`
and answers 200 `{"received": true, "duplicate": ...}`. A bad or stale signature is a
401 problem `invalid_signature`; an unknown gateway name a 404 `gateway_not_found`.

Which gateways exist, and their signing secrets, come from `app.state.gateway_secrets`
(a mapping name -> secret) when the app sets it, and otherwise from the sandbox's
settings (PACIOLI_SANDBOX_SIGNING_SECRET).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from fastapi import APIRouter, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from pacioli.gateways.base import GatewayNotFound, InvalidCallback
from pacioli.gateways.callbacks import record_callback
from pacioli.gateways.sandbox.settings import get_sandbox_settings

router = APIRouter(prefix="/v1/gateways", tags=["gateways"])

# A callback body larger than this is not a gateway event; refuse before verifying it.
CALLBACK_BODY_BYTES_MAX = 64 * 1024


class CallbackAck(BaseModel):
    received: bool
    duplicate: bool


def gateway_secrets(request: Request) -> Mapping[str, str]:
    """The signing secret of each gateway this app accepts callbacks from."""
    configured = getattr(request.app.state, "gateway_secrets", None)
    if configured is not None:
        return configured
    return {"sandbox": get_sandbox_settings().signing_secret}


@router.post(
    "/{name}/callbacks",
    summary="Receive a signed gateway callback",
    response_model=CallbackAck,
    responses={
        401: {"description": "Bad, missing or stale signature (invalid_signature)."},
        404: {"description": "Unknown gateway (gateway_not_found)."},
        422: {"description": "A signed body that is not a gateway event (invalid_callback)."},
    },
)
async def receive_callback(name: str, request: Request) -> CallbackAck:
    secret = gateway_secrets(request).get(name)
    if secret is None:
        raise GatewayNotFound(f"No gateway named {name!r} sends callbacks here.")
    body = await request.body()
    if len(body) > CALLBACK_BODY_BYTES_MAX:
        raise InvalidCallback("The callback body is too large.")
    receipt = await run_in_threadpool(
        record_callback, request.app.state.engine, name, request.headers, body, secret,
        datetime.now(UTC),
    )
    return CallbackAck(received=True, duplicate=receipt.duplicate)
