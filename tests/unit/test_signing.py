"""Callback signatures: HMAC-SHA256 over "t.body", verified in constant time within 5 minutes."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pacioli.gateways.base import InvalidSignature
from pacioli.gateways.signing import compute_signature, parse_header, sign, verify

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"payment.authorized"}'
NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)


def test_header_is_timestamp_and_hmac_of_timestamp_dot_body():
    header = sign(SECRET, BODY, NOW)
    t = int(NOW.timestamp())
    expected = hmac.new(SECRET.encode(), f"{t}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={t},v1={expected}"


def test_a_fresh_genuine_signature_verifies_and_returns_its_timestamp():
    header = sign(SECRET, BODY, NOW)
    assert verify(SECRET, BODY, header, NOW + timedelta(seconds=299)) == int(NOW.timestamp())


def test_a_changed_body_is_refused():
    header = sign(SECRET, BODY, NOW)
    with pytest.raises(InvalidSignature, match="does not match"):
        verify(SECRET, BODY + b" ", header, NOW)


def test_another_secret_is_refused():
    header = sign("whsec_other", BODY, NOW)
    with pytest.raises(InvalidSignature) as caught:
        verify(SECRET, BODY, header, NOW)
    assert caught.value.code == "invalid_signature"


def test_a_signature_older_than_five_minutes_is_refused_as_a_replay():
    header = sign(SECRET, BODY, NOW)
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(SECRET, BODY, header, NOW + timedelta(seconds=301))


def test_a_signature_from_too_far_in_the_future_is_refused():
    header = sign(SECRET, BODY, NOW + timedelta(minutes=6))
    with pytest.raises(InvalidSignature, match="tolerance"):
        verify(SECRET, BODY, header, NOW)


@pytest.mark.parametrize("header", [None, "", "v1=abc", "t=123", "t=abc,v1=00", "garbage"])
def test_a_missing_or_malformed_header_is_refused(header):
    with pytest.raises(InvalidSignature):
        verify(SECRET, BODY, header, NOW)


def test_any_one_of_several_v1_signatures_may_match_during_secret_rotation():
    t = int(NOW.timestamp())
    header = f"t={t},v1={compute_signature('whsec_old', t, BODY)},v1=" + compute_signature(
        SECRET, t, BODY)
    assert verify(SECRET, BODY, header, NOW) == t
    assert parse_header(header)[0] == t
    assert len(parse_header(header)[1]) == 2


@given(st.binary(max_size=512), st.text(min_size=1, max_size=40), st.data())
def test_any_body_verifies_and_any_one_byte_change_does_not(body, secret, data):
    header = sign(secret, body, NOW)
    assert verify(secret, body, header, NOW) == int(NOW.timestamp())
    changed = data.draw(st.binary(max_size=513).filter(lambda other: other != body))
    with pytest.raises(InvalidSignature):
        verify(secret, changed, header, NOW)
