"""TOTP codes and the verification window: RFC 6238 vectors, drift, reuse."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pyotp
import pytest

from pacioli.payments.totp import STEP_SECONDS, code_at, matching_step, step_of

# RFC 6238 appendix B's SHA-1 secret; its 8-digit codes end in the 6-digit ones below.
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
NOW = datetime(2026, 11, 24, 18, 0, 10, tzinfo=UTC)


@pytest.mark.parametrize(
    ("unix_time", "code"),
    [(59, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")],
)
def test_codes_match_the_rfc_6238_vectors(unix_time, code):
    assert code_at(RFC_SECRET, unix_time // STEP_SECONDS) == code


def test_codes_match_what_an_authenticator_app_shows():
    secret = pyotp.random_base32()
    assert code_at(secret, step_of(NOW)) == pyotp.TOTP(secret).at(NOW)


def test_the_current_step_and_one_either_side_are_accepted():
    secret = pyotp.random_base32()
    current = step_of(NOW)
    for step in (current - 1, current, current + 1):
        assert matching_step(secret, code_at(secret, step), now=NOW, last_used_step=None) == step


def test_codes_two_steps_away_are_refused():
    secret = pyotp.random_base32()
    current = step_of(NOW)
    for step in (current - 2, current + 2):
        code = code_at(secret, step)
        # A code may repeat by chance within the window; only test codes that do not.
        if code not in {code_at(secret, s) for s in range(current - 1, current + 2)}:
            assert matching_step(secret, code, now=NOW, last_used_step=None) is None


def test_a_code_is_not_accepted_twice():
    secret = pyotp.random_base32()
    code = code_at(secret, step_of(NOW))
    used = matching_step(secret, code, now=NOW, last_used_step=None)
    assert used == step_of(NOW)
    assert matching_step(secret, code, now=NOW, last_used_step=used) is None
    later = NOW + timedelta(seconds=STEP_SECONDS)
    assert matching_step(secret, code, now=later, last_used_step=used) is None


def test_an_older_code_is_refused_once_a_newer_one_was_used():
    secret = pyotp.random_base32()
    current = step_of(NOW)
    previous = code_at(secret, current - 1)
    assert matching_step(secret, previous, now=NOW, last_used_step=current) is None


def test_another_secrets_code_and_malformed_codes_are_refused():
    secret = RFC_SECRET
    window = {code_at(secret, s) for s in range(step_of(NOW) - 1, step_of(NOW) + 2)}
    others = [code_at(pyotp.random_base32(), step_of(NOW)) for _ in range(5)]
    for code in [c for c in others if c not in window]:
        assert matching_step(secret, code, now=NOW, last_used_step=None) is None
    for code in ("", "12345", "1234567", "abcdef", " " + code_at(secret, step_of(NOW))):
        assert matching_step(secret, code, now=NOW, last_used_step=None) is None
