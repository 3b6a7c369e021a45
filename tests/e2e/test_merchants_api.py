"""Merchants through HTTP: registration and review, keys and rotation, the settlement
account and its second factor, and every cross-tenant attempt (404/403/401, never data)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pacioli.payments import totp
from tests.e2e.conftest import (
    MerchantApi,
    assert_problem,
    enrolled_totp,
    registered_merchant,
    signed_up_user,
)

IBAN = "GB82 WEST 1234 5698 7654 32"
OTHER_IBAN = "DE89370400440532013000"
ACH = {"account_number": "000123456789", "routing_number": "021000021"}


def _code(secret: str, steps_ahead: int = 0) -> str:
    return totp.code_at(secret, totp.step_of(datetime.now(UTC)) + steps_ahead)


# Registration and review.


def test_an_admin_registers_an_approved_merchant_whose_key_works_at_once(api, user):
    merchant = registered_merchant(api, user)
    assert merchant.merchant["status"] == "approved"
    assert merchant.secret.startswith("sk_test_")
    me = merchant.get("/v1/merchants/me")
    assert me.status_code == 200, me.text
    assert me.json()["id"] == merchant.id
    assert me.json()["owner_user_id"] == user.id
    assert me.json()["settlement_account"] is None


def test_a_live_mode_merchant_gets_an_sk_live_key(api):
    merchant = registered_merchant(api, mode="live")
    assert merchant.secret.startswith("sk_live_")
    assert merchant.get("/v1/merchants/me").json()["mode"] == "live"


def test_an_admin_must_name_an_existing_owner(api):
    assert_problem(api.post("/v1/merchants", {"name": "Nobody's"}), 422, "validation_error")
    response = api.post("/v1/merchants", {"name": "Ghost", "owner_user_id": str(uuid.uuid4())})
    assert_problem(response, 404, "user_not_found")


def test_a_self_serve_merchant_waits_for_review_before_its_key_works(client, api, user):
    response = user.post("/v1/merchants", {"name": "Ada's Bakery"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["merchant"]["status"] == "pending_review"
    merchant = MerchantApi(client, body["merchant"], body["api_key"]["secret"])
    assert_problem(merchant.get("/v1/merchants/me"), 403, "merchant_not_approved")
    approved = api.post(f"/v1/merchants/{merchant.id}/approve")
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"
    assert merchant.get("/v1/merchants/me").status_code == 200
    assert api.post(f"/v1/merchants/{merchant.id}/approve").status_code == 200
    assert_problem(api.post(f"/v1/merchants/{merchant.id}/reject"), 409,
                   "merchant_already_reviewed")


def test_a_rejected_merchant_key_never_works(client, api, user):
    body = user.post("/v1/merchants", {"name": "Dodgy Ltd"}).json()
    merchant = MerchantApi(client, body["merchant"], body["api_key"]["secret"])
    assert api.post(f"/v1/merchants/{merchant.id}/reject").json()["status"] == "rejected"
    assert_problem(merchant.get("/v1/merchants/me"), 403, "merchant_not_approved")


def test_a_user_cannot_approve_merchants_or_register_one_for_someone_else(api, user):
    other = signed_up_user(api.client)
    pending = user.post("/v1/merchants", {"name": "Mine"}).json()["merchant"]
    assert_problem(user.post(f"/v1/merchants/{pending['id']}/approve"), 401, "unauthorized")
    assert api.get(f"/v1/merchants/{pending['id']}").json()["status"] == "pending_review"
    response = user.post("/v1/merchants", {"name": "Theirs", "owner_user_id": other.id})
    assert_problem(response, 422, "validation_error")


def test_a_retried_registration_returns_the_merchant_without_showing_the_key_again(user):
    key = uuid.uuid4().hex
    first = user.post("/v1/merchants", {"name": "Once"}, key=key)
    again = user.post("/v1/merchants", {"name": "Once"}, key=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["merchant"] == first.json()["merchant"]
    assert first.json()["api_key"]["secret"] and again.json()["api_key"] is None
    assert_problem(user.post("/v1/merchants", {"name": "Twice"}, key=key), 409,
                   "idempotency_key_reused")


def test_idempotency_keys_are_scoped_per_user(client, user):
    other = signed_up_user(client)
    key = uuid.uuid4().hex
    mine = user.post("/v1/merchants", {"name": "Same key"}, key=key)
    theirs = other.post("/v1/merchants", {"name": "Same key"}, key=key)
    assert mine.status_code == theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    assert mine.json()["merchant"]["id"] != theirs.json()["merchant"]["id"]


# Who may see what.


def test_only_the_owner_and_admins_can_read_a_merchant(api, user):
    merchant = registered_merchant(api, user)
    stranger = signed_up_user(api.client)
    assert user.get(f"/v1/merchants/{merchant.id}").status_code == 200
    assert api.get(f"/v1/merchants/{merchant.id}").status_code == 200
    response = stranger.get(f"/v1/merchants/{merchant.id}")
    assert_problem(response, 404, "merchant_not_found")
    assert "Corner Shop" not in response.text


def test_a_merchant_key_cannot_touch_another_merchants_keys(api):
    mine, theirs = registered_merchant(api), registered_merchant(api)
    their_key_id = theirs.get("/v1/merchants/me").json()["key_id"]
    assert_problem(mine.delete(f"/v1/merchants/me/api-keys/{their_key_id}"), 404,
                   "api_key_not_found")
    assert theirs.get("/v1/merchants/me").status_code == 200
    listed = mine.get("/v1/merchants/me/api-keys").json()["data"]
    assert their_key_id not in {k["id"] for k in listed}


def test_a_merchant_sees_only_its_own_settlement_account(api):
    mine, theirs = registered_merchant(api), registered_merchant(api)
    assert theirs.put("/v1/merchants/me/settlement-account",
                      {"account_holder": "Theirs", "iban": IBAN}).status_code == 200
    assert_problem(mine.get("/v1/merchants/me/settlement-account"), 404,
                   "settlement_account_not_found")


def test_credentials_of_one_kind_do_not_pass_for_another(client, api, user):
    merchant = registered_merchant(api, user)
    assert_problem(merchant.get("/v1/me"), 401, "unauthorized")
    assert_problem(merchant.get("/v1/accounts"), 401, "unauthorized")
    assert_problem(merchant.post("/v1/merchants", {"name": "x"}), 401, "unauthorized")
    assert_problem(user.get("/v1/merchants/me"), 401, "unauthorized")
    assert_problem(api.get("/v1/merchants/me"), 401, "unauthorized")
    assert_problem(client.get("/v1/merchants/me"), 401, "unauthorized")


# Keys.


def test_keys_are_listed_without_their_secrets(api):
    merchant = registered_merchant(api)
    response = merchant.get("/v1/merchants/me/api-keys")
    assert response.status_code == 200
    [key] = response.json()["data"]
    assert key["secret"] is None
    assert key["last4"] == merchant.secret[-4:]
    assert merchant.secret not in response.text


def test_rotating_with_no_grace_stops_the_old_key_at_once(client, api):
    merchant = registered_merchant(api)
    response = merchant.post("/v1/merchants/me/api-keys", {"expire_current_after_seconds": 0})
    assert response.status_code == 201, response.text
    new_secret = response.json()["secret"]
    assert new_secret.startswith("sk_test_") and new_secret != merchant.secret
    assert_problem(merchant.get("/v1/merchants/me"), 401, "unauthorized")
    renewed = MerchantApi(client, merchant.merchant, new_secret)
    assert renewed.get("/v1/merchants/me").status_code == 200


def test_rotating_with_a_grace_period_keeps_both_keys_working_until_it_ends(client, api):
    merchant = registered_merchant(api)
    response = merchant.post("/v1/merchants/me/api-keys",
                             {"expire_current_after_seconds": 3600})
    renewed = MerchantApi(client, merchant.merchant, response.json()["secret"])
    assert merchant.get("/v1/merchants/me").status_code == 200
    assert renewed.get("/v1/merchants/me").status_code == 200
    keys = {k["last4"]: k for k in renewed.get("/v1/merchants/me/api-keys").json()["data"]}
    assert keys[merchant.secret[-4:]]["expires_at"] is not None
    assert keys[renewed.secret[-4:]]["expires_at"] is None


def test_a_grace_period_beyond_the_limit_is_refused(api):
    merchant = registered_merchant(api)
    response = merchant.post("/v1/merchants/me/api-keys",
                             {"expire_current_after_seconds": 10**9})
    assert_problem(response, 422, "validation_error")
    assert len(merchant.get("/v1/merchants/me/api-keys").json()["data"]) == 1


def test_a_retried_key_creation_makes_one_key(api):
    merchant = registered_merchant(api)
    key = uuid.uuid4().hex
    first = merchant.post("/v1/merchants/me/api-keys", {}, key=key)
    again = merchant.post("/v1/merchants/me/api-keys", {}, key=key)
    assert first.json()["id"] == again.json()["id"]
    assert again.json()["secret"] is None
    assert len(merchant.get("/v1/merchants/me/api-keys").json()["data"]) == 2


def test_a_revoked_key_is_unauthorized(client, api):
    merchant = registered_merchant(api)
    spare = MerchantApi(
        client, merchant.merchant, merchant.post("/v1/merchants/me/api-keys", {}).json()["secret"]
    )
    key_id = merchant.get("/v1/merchants/me").json()["key_id"]
    revoked = spare.delete(f"/v1/merchants/me/api-keys/{key_id}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert_problem(merchant.get("/v1/merchants/me"), 401, "unauthorized")
    assert spare.get("/v1/merchants/me").status_code == 200


# The settlement account.


def test_the_first_settlement_account_is_set_without_a_code_and_shown_masked(api):
    merchant = registered_merchant(api)
    response = merchant.put("/v1/merchants/me/settlement-account",
                            {"account_holder": "Corner Shop Ltd", "iban": IBAN})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["scheme"] == "iban"
    assert body["account_number_masked"] == "GB" + "*" * 16 + "5432"
    assert "WEST1234" not in response.text
    shown = merchant.get("/v1/merchants/me").json()["settlement_account"]
    assert shown["account_number_masked"].endswith("5432")


def test_a_us_account_and_routing_number_are_accepted(api):
    merchant = registered_merchant(api)
    response = merchant.put("/v1/merchants/me/settlement-account",
                            {"account_holder": "Shop", **ACH})
    assert response.status_code == 200, response.text
    assert response.json()["account_number_masked"] == "********6789"
    assert response.json()["routing_number"] == "021000021"


def test_malformed_bank_details_are_refused(api):
    merchant = registered_merchant(api)
    path = "/v1/merchants/me/settlement-account"
    bad = [
        {"account_holder": "Shop", "iban": "GB82 WEST 1234 5698 7654 33"},
        {"account_holder": "Shop", "account_number": "000123456789",
         "routing_number": "021000022"},
        {"account_holder": "Shop", "account_number": "12", "routing_number": "021000021"},
        {"account_holder": "Shop", "iban": IBAN, **ACH},
        {"account_holder": "   ", "iban": IBAN},
    ]
    for body in bad:
        assert_problem(merchant.put(path, body), 422, "invalid_bank_account")
    assert_problem(merchant.get(path), 404, "settlement_account_not_found")


def test_replacing_the_settlement_account_needs_the_owners_code(api, user):
    merchant = registered_merchant(api, user)
    path = "/v1/merchants/me/settlement-account"
    assert merchant.put(path, {"account_holder": "Shop", "iban": IBAN}).status_code == 200
    change = {"account_holder": "Attacker", "iban": OTHER_IBAN}
    # The owner has no authenticator yet: a change cannot be authorized at all.
    assert_problem(merchant.put(path, change), 403, "second_factor_required")
    secret = enrolled_totp(user)
    assert_problem(merchant.put(path, change), 403, "second_factor_required")
    wrong = f"{(int(_code(secret)) + 1) % 10**6:06d}"
    assert_problem(merchant.put(path, change, **{"Pacioli-OTP": wrong}), 403,
                   "invalid_second_factor")
    assert merchant.get(path).json()["account_number_masked"].startswith("GB")
    code = _code(secret, 1)
    changed = merchant.put(path, change, **{"Pacioli-OTP": code})
    assert changed.status_code == 200, changed.text
    assert changed.json()["account_number_masked"].startswith("DE")
    # The same code cannot authorize a second change.
    again = {"account_holder": "Attacker", **ACH}
    assert_problem(merchant.put(path, again, **{"Pacioli-OTP": code}), 403,
                   "invalid_second_factor")


def test_sending_the_same_settlement_account_again_needs_no_code(api):
    merchant = registered_merchant(api)
    path = "/v1/merchants/me/settlement-account"
    body = {"account_holder": "Shop", "iban": IBAN}
    first = merchant.put(path, body)
    again = merchant.put(path, {**body, "iban": IBAN.replace(" ", "").lower()})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()


def test_another_users_code_does_not_authorize_the_change(api, user):
    merchant = registered_merchant(api, user)
    path = "/v1/merchants/me/settlement-account"
    merchant.put(path, {"account_holder": "Shop", "iban": IBAN})
    enrolled_totp(user)
    stranger = signed_up_user(api.client)
    stranger_secret = enrolled_totp(stranger)
    response = merchant.put(path, {"account_holder": "X", "iban": OTHER_IBAN},
                            **{"Pacioli-OTP": _code(stranger_secret, 1)})
    assert_problem(response, 403, "invalid_second_factor")
