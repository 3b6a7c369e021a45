"""/v1/merchants/me/webhook-endpoints and /v1/merchants/me/webhook-deliveries.

The calling merchant (by its secret key) manages its own endpoints, reads its
deliveries with their attempts, asks for redeliveries and sends test events. Another
merchant's endpoint or delivery is a 404, as if it did not exist.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response

from pacioli.api.auth import CurrentMerchant, IdempotencyKeyHeader, result, write_key
from pacioli.api.deps import PAGE_LIMIT_DEFAULT, PageLimit
from pacioli.api.errors import InvalidRequest
from pacioli.api.routes import API_PREFIX
from pacioli.api.schemas.common import Page
from pacioli.api.schemas.webhooks import (
    WebhookDeliveryPublic,
    WebhookEndpointCreate,
    WebhookEndpointList,
    WebhookEndpointPublic,
    WebhookEndpointUpdate,
    WebhookSecretRotate,
)
from pacioli.payments.webhooks import UNSET, DeliveryStatus, Webhooks

router = APIRouter(prefix=f"{API_PREFIX}/merchants/me", tags=["webhooks"])


def get_webhooks(request: Request) -> Webhooks:
    """The app's webhook service: `app.state.webhooks` if set, else one from the settings."""
    webhooks = getattr(request.app.state, "webhooks", None)
    if webhooks is None:
        webhooks = request.app.state.webhooks = Webhooks.from_settings(request.app.state.engine)
    return webhooks


WebhooksDep = Annotated[Webhooks, Depends(get_webhooks)]


@router.post("/webhook-endpoints", status_code=201,
             summary="Register a webhook endpoint; its signing secret is shown once")
def create_endpoint(
    body: WebhookEndpointCreate,
    merchant: CurrentMerchant,
    webhooks: WebhooksDep,
    key: IdempotencyKeyHeader,
    response: Response,
) -> WebhookEndpointPublic:
    written = webhooks.register_endpoint(
        merchant.id, url=body.url, event_types=body.event_types, description=body.description,
        enabled=body.enabled, write_key=write_key(merchant.principal, key),
    )
    return WebhookEndpointPublic.of(result(response, written))


@router.get("/webhook-endpoints", summary="The merchant's webhook endpoints")
def list_endpoints(merchant: CurrentMerchant, webhooks: WebhooksDep) -> WebhookEndpointList:
    return WebhookEndpointList(
        data=[WebhookEndpointPublic.of(e) for e in webhooks.list_endpoints(merchant.id)]
    )


@router.get("/webhook-endpoints/{endpoint_id}", summary="One webhook endpoint")
def get_endpoint(
    endpoint_id: UUID, merchant: CurrentMerchant, webhooks: WebhooksDep
) -> WebhookEndpointPublic:
    return WebhookEndpointPublic.of(webhooks.get_endpoint(merchant.id, endpoint_id))


@router.patch("/webhook-endpoints/{endpoint_id}",
              summary="Change an endpoint's URL, event types, description or enabled")
def update_endpoint(
    endpoint_id: UUID, body: WebhookEndpointUpdate, merchant: CurrentMerchant,
    webhooks: WebhooksDep,
) -> WebhookEndpointPublic:
    sent = body.model_fields_set
    for field in ("url", "enabled"):
        if field in sent and getattr(body, field) is None:
            raise InvalidRequest(f"{field}: may not be null")
    endpoint = webhooks.update_endpoint(
        merchant.id, endpoint_id,
        url=body.url if "url" in sent else UNSET,
        event_types=body.event_types if "event_types" in sent else UNSET,
        description=body.description if "description" in sent else UNSET,
        enabled=body.enabled if "enabled" in sent else UNSET,
    )
    return WebhookEndpointPublic.of(endpoint)


@router.delete("/webhook-endpoints/{endpoint_id}", status_code=204,
               summary="Delete an endpoint, its deliveries and their attempts")
def delete_endpoint(
    endpoint_id: UUID, merchant: CurrentMerchant, webhooks: WebhooksDep
) -> Response:
    webhooks.delete_endpoint(merchant.id, endpoint_id)
    return Response(status_code=204)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret",
             summary="A new signing secret (shown once); the old one signs for a grace period")
def rotate_secret(
    endpoint_id: UUID,
    merchant: CurrentMerchant,
    webhooks: WebhooksDep,
    key: IdempotencyKeyHeader,
    response: Response,
    body: WebhookSecretRotate | None = None,
) -> WebhookEndpointPublic:
    grace = body.grace_period_seconds if body is not None else None
    written = webhooks.rotate_secret(
        merchant.id, endpoint_id, grace_period_s=grace,
        write_key=write_key(merchant.principal, key),
    )
    return WebhookEndpointPublic.of(result(response, written))


@router.post("/webhook-endpoints/{endpoint_id}/test", status_code=201,
             summary="Send a webhook_endpoint.test event to the endpoint now")
def send_test_event(
    endpoint_id: UUID,
    merchant: CurrentMerchant,
    webhooks: WebhooksDep,
    key: IdempotencyKeyHeader,
    response: Response,
) -> WebhookDeliveryPublic:
    written = webhooks.send_test_event(
        merchant.id, endpoint_id, write_key=write_key(merchant.principal, key)
    )
    return WebhookDeliveryPublic.of(result(response, written))


@router.get("/webhook-endpoints/{endpoint_id}/deliveries",
            summary="An endpoint's deliveries with their attempts, newest first")
def list_deliveries(
    endpoint_id: UUID,
    merchant: CurrentMerchant,
    webhooks: WebhooksDep,
    limit: PageLimit = PAGE_LIMIT_DEFAULT,
    starting_after: UUID | None = None,
    status: DeliveryStatus | None = None,
) -> Page[WebhookDeliveryPublic]:
    rows = webhooks.list_deliveries(merchant.id, endpoint_id, limit=limit + 1,
                                    starting_after=starting_after, status=status)
    return Page.of(rows, limit, WebhookDeliveryPublic.of, lambda delivery: delivery.id)


@router.get("/webhook-deliveries/{delivery_id}", summary="One delivery with its attempts")
def get_delivery(
    delivery_id: UUID, merchant: CurrentMerchant, webhooks: WebhooksDep
) -> WebhookDeliveryPublic:
    return WebhookDeliveryPublic.of(webhooks.get_delivery(merchant.id, delivery_id))


@router.post("/webhook-deliveries/{delivery_id}/redeliver",
             summary="Attempt a delivery again now, with the same webhook-id")
def redeliver(
    delivery_id: UUID,
    merchant: CurrentMerchant,
    webhooks: WebhooksDep,
    key: IdempotencyKeyHeader,
    response: Response,
) -> WebhookDeliveryPublic:
    written = webhooks.redeliver(
        merchant.id, delivery_id, write_key=write_key(merchant.principal, key)
    )
    return WebhookDeliveryPublic.of(result(response, written))
