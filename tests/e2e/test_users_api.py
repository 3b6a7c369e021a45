"""Sign-up, login, logout, /v1/me and TOTP enrolment through HTTP, and who may call what."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pyotp
from sqlalchemy import update

from pacioli.payments.sessions import user_sessions
from tests.e2e.conftest import (
    PASSWORD,
    assert_problem,
    log_in,
    sign_up,
    signed_up_user,
)


def _email() -> str:
    return f"u-{uuid.uuid4().hex[:12]}@Example.COM"


def test_sign_up_stores_a_lower_case_email_and_never_returns_the_password(client):
    email = _email()
    response = sign_up(client, email=email, password=PASSWORD, display_name="Grace")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["email"] == email.lower()
    assert body["display_name"] == "Grace"
    assert "password" not in response.text and PASSWORD not in response.text


def test_sign_up_with_a_phone_number_normalizes_it_to_e164(client):
    phone = f"+1 415 {uuid.uuid4().int % 10**7:07d}"
    response = sign_up(client, phone=phone, password=PASSWORD)
    assert response.status_code == 201, response.text
    assert response.json()["phone"] == phone.replace(" ", "")
    assert log_in(client, phone=phone.replace(" ", "")).status_code == 201


def test_a_duplicate_email_in_any_case_is_email_taken(client):
    email = _email()
    assert sign_up(client, email=email, password=PASSWORD).status_code == 201
    assert_problem(sign_up(client, email=email.upper(), password=PASSWORD), 409, "email_taken")


def test_bad_sign_ups_are_refused_with_their_own_codes(client):
    assert_problem(sign_up(client, email=_email(), password="short"), 422, "weak_password")
    assert_problem(sign_up(client, email="not-an-email", password=PASSWORD), 422,
                   "invalid_email")
    assert_problem(sign_up(client, phone="+12", password=PASSWORD), 422, "invalid_phone")
    assert_problem(sign_up(client, phone="4155550100", password=PASSWORD), 422,
                   "invalid_phone")
    assert_problem(sign_up(client, password=PASSWORD), 422, "email_or_phone_required")


def test_sign_up_needs_an_idempotency_key(client):
    response = client.post("/v1/users", json={"email": _email(), "password": PASSWORD})
    assert_problem(response, 422, "idempotency_key_required")


def test_a_retried_sign_up_returns_the_first_user_and_a_changed_one_conflicts(client):
    email, key = _email(), uuid.uuid4().hex
    body = {"email": email, "password": PASSWORD}
    first = client.post("/v1/users", json=body, headers={"Idempotency-Key": key})
    again = client.post("/v1/users", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    changed = client.post("/v1/users", json={**body, "email": _email()},
                          headers={"Idempotency-Key": key})
    assert_problem(changed, 409, "idempotency_key_reused")


def test_login_gives_an_opaque_token_that_reads_me(client):
    user = signed_up_user(client)
    assert user.token.startswith("pat_")
    me = user.get("/v1/me")
    assert me.status_code == 200, me.text
    assert me.json()["id"] == user.id
    assert me.json()["totp_enabled"] is False


def test_a_wrong_password_and_an_unknown_email_are_the_same_invalid_credentials(client):
    user = signed_up_user(client)
    wrong = assert_problem(log_in(client, "not the password", email=user.email), 401,
                           "invalid_credentials")
    unknown = assert_problem(log_in(client, email=_email()), 401, "invalid_credentials")
    assert wrong["detail"] == unknown["detail"]


def test_logout_revokes_the_token_but_not_other_sessions(client):
    user = signed_up_user(client)
    other_token = log_in(client, email=user.email).json()["token"]
    assert user.delete("/v1/sessions/current").status_code == 204
    assert_problem(user.get("/v1/me"), 401, "unauthorized")
    assert_problem(user.delete("/v1/sessions/current"), 401, "unauthorized")
    other = client.get("/v1/me", headers={"Authorization": f"Bearer {other_token}"})
    assert other.status_code == 200


def test_an_expired_token_is_unauthorized(client, engine):
    user = signed_up_user(client)
    with engine.begin() as connection:
        connection.execute(
            update(user_sessions)
            .where(user_sessions.c.user_id == uuid.UUID(user.id))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert_problem(user.get("/v1/me"), 401, "unauthorized")


def test_me_without_a_token_or_with_a_made_up_one_is_unauthorized(client):
    assert_problem(client.get("/v1/me"), 401, "unauthorized")
    forged = {"Authorization": "Bearer pat_" + "A" * 43}
    assert_problem(client.get("/v1/me", headers=forged), 401, "unauthorized")


def test_a_user_token_does_not_reach_ledger_endpoints(client, user, api):
    wallet = api.open_account()
    for path in ("/v1/accounts", f"/v1/accounts/{wallet['id']}", "/v1/transfers",
                 "/v1/assets"):
        response = user.get(path)
        assert_problem(response, 401, "unauthorized")
        assert wallet["id"] not in response.text
    assert_problem(user.post("/v1/accounts", {"asset": "USD", "normal_side": "credit"}),
                   401, "unauthorized")


def test_an_admin_key_is_not_a_user_token(client, admin_key):
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {admin_key}"})
    assert_problem(response, 401, "unauthorized")


# Second factor.


def test_totp_enrolment_is_confirmed_with_a_first_code(user):
    enrolment = user.post("/v1/me/totp")
    assert enrolment.status_code == 201, enrolment.text
    secret = enrolment.json()["secret"]
    assert enrolment.json()["otpauth_uri"].startswith("otpauth://totp/Pacioli:")
    assert user.get("/v1/me").json()["totp_enabled"] is False
    confirmed = user.post("/v1/me/totp/confirm", {"code": pyotp.TOTP(secret).now()})
    assert confirmed.status_code == 200, confirmed.text
    assert user.get("/v1/me").json()["totp_enabled"] is True
    assert_problem(user.post("/v1/me/totp"), 409, "totp_already_enrolled")


def test_a_wrong_confirmation_code_leaves_totp_off(user):
    secret = user.post("/v1/me/totp").json()["secret"]
    wrong = f"{(int(pyotp.TOTP(secret).now()) + 1) % 10**6:06d}"
    assert_problem(user.post("/v1/me/totp/confirm", {"code": wrong}), 403,
                   "invalid_second_factor")
    assert user.get("/v1/me").json()["totp_enabled"] is False


def test_confirming_without_enrolling_is_totp_not_enrolled(user):
    assert_problem(user.post("/v1/me/totp/confirm", {"code": "123456"}), 409,
                   "totp_not_enrolled")


def test_re_enrolling_before_confirming_replaces_the_secret(user):
    first = user.post("/v1/me/totp").json()["secret"]
    second = user.post("/v1/me/totp").json()["secret"]
    assert first != second
    assert_problem(user.post("/v1/me/totp/confirm", {"code": pyotp.TOTP(first).now()}),
                   403, "invalid_second_factor")
    assert user.post("/v1/me/totp/confirm",
                     {"code": pyotp.TOTP(second).now()}).status_code == 200


def test_logging_out_everywhere_revokes_every_token(client):
    user = signed_up_user(client)
    other_token = log_in(client, email=user.email).json()["token"]
    assert client.delete("/v1/sessions", headers=user.headers()).status_code == 204
    assert_problem(user.get("/v1/me"), 401, "unauthorized")
    assert_problem(client.get("/v1/me", headers={"Authorization": f"Bearer {other_token}"}),
                   401, "unauthorized")


def test_a_user_lists_only_the_merchants_they_own(client, user):
    other = signed_up_user(client)
    mine = user.post("/v1/merchants", {"name": "Mine"}).json()["merchant"]
    other.post("/v1/merchants", {"name": "Theirs"})
    listed = user.get("/v1/me/merchants").json()["data"]
    assert [m["id"] for m in listed] == [mine["id"]]


# Every route checks who is asking.

PUBLIC_OPERATIONS = {
    ("post", "/v1/users"),
    ("post", "/v1/sessions"),
    # Shoppers browse the marketplace and resellers' shops, and fill a guest cart, before
    # they have an account (docs/commerce.md).
    ("get", "/v1/catalog/products"),
    ("get", "/v1/catalog/products/{product_id}"),
    ("get", "/v1/shops/{slug}"),
    ("get", "/v1/shops/{slug}/products"),
    ("get", "/v1/shops/{slug}/products/{product_id}"),
    ("post", "/v1/carts/guest"),
    # The exchange's market data is public, as on Coinbase (docs/exchange.md).
    ("get", "/v1/exchange/markets"),
    ("get", "/v1/exchange/markets/{symbol}"),
    ("get", "/v1/exchange/markets/{symbol}/l1"),
    ("get", "/v1/exchange/markets/{symbol}/l2"),
    ("get", "/v1/exchange/markets/{symbol}/l3"),
    ("get", "/v1/exchange/markets/{symbol}/trades"),
    ("get", "/v1/exchange/markets/{symbol}/stream"),
}


def test_every_v1_route_but_sign_up_and_login_refuses_an_anonymous_caller(client, app):
    """A guard for routes added later: only the public operations answer without a
    credential (gateway callbacks prove themselves with a signature instead)."""
    checked = 0
    for path, operations in app.openapi()["paths"].items():
        if not path.startswith("/v1/") or path.startswith("/v1/gateways/"):
            continue
        concrete = path
        for name in ("account_id", "transfer_id", "merchant_id", "key_id", "payment_id",
                     "request_id", "quote_id"):
            concrete = concrete.replace("{" + name + "}", str(uuid.uuid4()))
        concrete = concrete.replace("{currency}", "USD")
        for method in operations:
            if (method, path) in PUBLIC_OPERATIONS:
                continue
            response = client.request(method.upper(), concrete)
            assert response.status_code == 401, f"{method.upper()} {path}: {response.text}"
            assert response.json()["code"] == "unauthorized"
            checked += 1
    assert checked >= 30
