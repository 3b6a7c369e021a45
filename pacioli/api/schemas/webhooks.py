"""Merchant webhook endpoints, deliveries and attempts on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr

from pacioli.api.schemas.common import RequestModel
from pacioli.gateways.webhooks import URL_LENGTH_MAX
from pacioli.payments.webhook_events import EVENT_TYPES
from pacioli.payments.webhooks import (
    DESCRIPTION_LENGTH_MAX,
    DeliveryStatus,
    EndpointStatus,
    IssuedSecret,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)

EVENT_TYPES_DESCRIPTION = (
    "The event types to receive, or null for all of them: " + ", ".join(EVENT_TYPES) + "."
)


class WebhookEndpointCreate(RequestModel):
    url: StrictStr = Field(max_length=URL_LENGTH_MAX,
                           description="An https URL on a public address.")
    event_types: list[StrictStr] | None = Field(
        default=None, max_length=len(EVENT_TYPES), description=EVENT_TYPES_DESCRIPTION
    )
    description: StrictStr | None = Field(default=None, max_length=DESCRIPTION_LENGTH_MAX)
    enabled: StrictBool = True


class WebhookEndpointUpdate(RequestModel):
    """Only the fields sent change; `event_types: null` means all event types."""

    url: StrictStr | None = Field(default=None, max_length=URL_LENGTH_MAX)
    event_types: list[StrictStr] | None = Field(
        default=None, max_length=len(EVENT_TYPES), description=EVENT_TYPES_DESCRIPTION
    )
    description: StrictStr | None = Field(default=None, max_length=DESCRIPTION_LENGTH_MAX)
    enabled: StrictBool | None = Field(
        default=None, description="false disables the endpoint; true enables it again."
    )


class WebhookSecretRotate(RequestModel):
    grace_period_seconds: StrictInt | None = Field(
        default=None, ge=0,
        description="How long the current secret keeps signing alongside the new one"
        " (0: it stops at once). Left out: the configured default (24 hours).",
    )


class WebhookEndpointPublic(BaseModel):
    id: UUID
    url: str
    description: str | None
    event_types: list[str] | None = Field(description="null: every event type.")
    enabled: bool
    status: EndpointStatus = Field(
        description="active; failing (a delivery failed its last attempt; a success heals"
        " it); disabled (by the merchant, or the receiver answered 410 Gone)."
    )
    disabled_reason: str | None = Field(description="merchant or gone, when disabled.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until then requests are signed with the previous secret too."
    )
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None,
        description="The signing secret (whsec_...), shown once: when the endpoint is made"
        " and when the secret is rotated (never on a replay).",
    )

    @classmethod
    def of(cls, endpoint: WebhookEndpoint | IssuedSecret) -> WebhookEndpointPublic:
        secret = endpoint.secret if isinstance(endpoint, IssuedSecret) else None
        stored = endpoint.endpoint if isinstance(endpoint, IssuedSecret) else endpoint
        return cls(
            id=stored.id, url=stored.url, description=stored.description,
            event_types=list(stored.event_types) if stored.event_types is not None else None,
            enabled=stored.enabled, status=stored.status,
            disabled_reason=stored.disabled_reason,
            previous_secret_expires_at=stored.previous_secret_expires_at,
            created_at=stored.created_at, updated_at=stored.updated_at, secret=secret,
        )


class WebhookEndpointList(BaseModel):
    data: list[WebhookEndpointPublic]


class WebhookAttemptPublic(BaseModel):
    id: UUID
    trigger: str = Field(description="scheduled, or manual (a redelivery).")
    attempted_at: datetime
    status_code: int | None = Field(description="The receiver's HTTP status, if it answered.")
    error: str | None = Field(description="Why no status came: timeout, connection_error ...")
    latency_ms: int

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> WebhookAttemptPublic:
        return cls(id=attempt.id, trigger=attempt.trigger, attempted_at=attempt.attempted_at,
                   status_code=attempt.status_code, error=attempt.error,
                   latency_ms=attempt.latency_ms)


class WebhookDeliveryPublic(BaseModel):
    id: UUID
    endpoint_id: UUID
    event_id: UUID
    webhook_id: str = Field(description="The webhook-id header, the same on every attempt.")
    event_type: str
    status: DeliveryStatus
    attempt_count: int = Field(description="Scheduled attempts made (redeliveries not"
                               " counted).")
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    payload: dict[str, Any] = Field(description="The request body sent on every attempt.")
    attempts: list[WebhookAttemptPublic] = Field(description="The latest 50, oldest first.")

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> WebhookDeliveryPublic:
        return cls(
            id=delivery.id, endpoint_id=delivery.endpoint_id, event_id=delivery.event_id,
            webhook_id=delivery.webhook_id, event_type=delivery.event_type,
            status=delivery.status, attempt_count=delivery.attempt_count,
            next_attempt_at=delivery.next_attempt_at, last_attempt_at=delivery.last_attempt_at,
            last_status_code=delivery.last_status_code, last_error=delivery.last_error,
            created_at=delivery.created_at, payload=delivery.payload,
            attempts=[WebhookAttemptPublic.of(a) for a in delivery.attempts],
        )
