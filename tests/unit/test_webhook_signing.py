"""Webhook signatures, checked with the `standardwebhooks` package (not our own code)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from pacioli.gateways.webhooks import SECRET_BYTES, new_secret, signature_headers

BODY = '{"data":{"amount":"10.50"},"timestamp":"2026-11-24T20:00:00+00:00","type":"x"}'


def test_new_secrets_are_whsec_prefixed_base64_of_32_random_bytes():
    first, second = new_secret(), new_secret()
    assert first.startswith("whsec_") and second.startswith("whsec_")
    assert len(base64.b64decode(first.removeprefix("whsec_"))) == SECRET_BYTES
    assert first != second


def test_a_receiver_verifies_our_signature_with_the_standardwebhooks_package():
    secret = new_secret()
    headers = signature_headers("evt_1", BODY, [secret], datetime.now(UTC))

    assert Webhook(secret).verify(BODY, headers)["data"] == {"amount": "10.50"}
    assert headers["webhook-id"] == "evt_1"
    assert headers["webhook-signature"].startswith("v1,")


def test_a_receiver_with_another_secret_refuses_the_request():
    headers = signature_headers("evt_1", BODY, [new_secret()], datetime.now(UTC))

    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, headers)


def test_a_changed_body_or_id_fails_verification():
    secret = new_secret()
    headers = signature_headers("evt_1", BODY, [secret], datetime.now(UTC))

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY.replace("10.50", "99.50"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY, {**headers, "webhook-id": "evt_2"})


def test_two_secrets_give_two_space_separated_signatures_each_verifying():
    new, old = new_secret(), new_secret()
    headers = signature_headers("evt_1", BODY, [new, old], datetime.now(UTC))

    assert len(headers["webhook-signature"].split(" ")) == 2
    Webhook(new).verify(BODY, headers)
    Webhook(old).verify(BODY, headers)


def test_the_timestamp_header_is_the_sending_time_in_unix_seconds():
    sent_at = datetime.now(UTC).replace(microsecond=654321)
    headers = signature_headers("evt_1", BODY, [new_secret()], sent_at)

    assert headers["webhook-timestamp"] == str(int(sent_at.timestamp()))


def test_a_receiver_refuses_a_signature_older_than_its_tolerance():
    secret = new_secret()
    headers = signature_headers("evt_1", BODY, [secret],
                                datetime.now(UTC) - timedelta(minutes=10))

    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(BODY, headers)


def test_non_ascii_bodies_verify():
    secret = new_secret()
    body = '{"data":{"reference":"Café №5"}}'
    headers = signature_headers("evt_1", body, [secret], datetime.now(UTC))

    assert Webhook(secret).verify(body.encode(), headers)["data"]["reference"] == "Café №5"
