"""QR payments through HTTP: a merchant makes codes with its key, users scan and pay them."""

from __future__ import annotations

import pytest

from pacioli.gateways import qr
from tests.e2e.conftest import (
    MerchantApi,
    assert_problem,
    registered_merchant,
    signed_up_user,
)


@pytest.fixture
def shop(api) -> MerchantApi:
    return registered_merchant(api, name="Cafe Lisboa")


def make_code(shop: MerchantApi, **fields) -> dict:
    body = {"currency": "USD", "city": "Lisbon", "country_code": "PT", **fields}
    response = shop.post("/v1/merchants/me/qr-codes", body)
    assert response.status_code == 201, response.text
    return response.json()


def test_a_user_scans_and_pays_a_static_code_and_the_merchant_is_credited(user, shop, fund):
    fund(user, 100_00)
    code = make_code(shop)
    assert code["kind"] == "static" and qr.decode_emvco(code["payload"]).crc_valid

    scanned = user.post("/v1/qr/scan", {"payload": code["payload"]})
    paid = user.post("/v1/qr/payments", {"payload": code["payload"], "amount": "20.00"})

    assert scanned.status_code == 200, scanned.text
    assert scanned.json() == {"merchant_name": "Cafe Lisboa", "kind": "static",
                              "currency": "USD", "amount": None, "payable": True,
                              "reason": None}
    assert paid.status_code == 201, paid.text
    assert (paid.json()["amount"], paid.json()["fee"]) == ("20.00", "0.12")
    assert user.get("/v1/me/wallets/USD").json()["available"] == "80.00"
    # The merchant's share waits for the settlement run (docs/settlement.md).
    [usd] = shop.get("/v1/merchants/me/balances").json()
    assert (usd["currency"], usd["available"], usd["pending_settlement"]) == (
        "USD", "0.00", "19.88")
    listed = shop.get("/v1/merchants/me/qr-payments").json()["data"]
    assert [p["id"] for p in listed] == [paid.json()["id"]]


def test_a_dynamic_code_is_paid_once_and_retries_replay(client, user, shop, fund):
    fund(user, 100_00)
    code = make_code(shop, amount="12.50", reference="order-7", expires_in_seconds=300)
    other = signed_up_user(client)
    fund(other, 100_00)

    first = user.post("/v1/qr/payments", {"payload": code["payload"]}, key="pay-1")
    retry = user.post("/v1/qr/payments", {"payload": code["payload"]}, key="pay-1")
    second_payer = other.post("/v1/qr/payments", {"payload": code["payload"]})

    assert first.status_code == 201 and retry.status_code == 201
    assert retry.headers.get("Idempotent-Replayed") == "true"
    assert retry.json()["id"] == first.json()["id"]
    assert_problem(second_payer, 409, "qr_code_already_used")
    assert shop.get(f"/v1/merchants/me/qr-codes/{code['id']}").json()["status"] == "used"
    assert user.get("/v1/me/wallets/USD").json()["available"] == "87.50"
    assert other.get("/v1/me/wallets/USD").json()["available"] == "100.00"


@pytest.mark.parametrize(
    ("payload_of", "body", "status", "code"),
    [
        (lambda c: c["payload"][:-1] + ("0" if c["payload"][-1] != "0" else "1"), {}, 422,
         "qr_crc_mismatch"),
        (lambda c: "hello", {}, 422, "qr_unsupported"),
        (lambda c: c["payload"], {}, 422, "validation_error"),  # a static code needs an amount
        (lambda c: c["payload"], {"amount": "1.001"}, 422, "invalid_amount"),
        (lambda c: c["payload"], {"amount": "500.00"}, 422, "insufficient_funds"),
    ],
)
def test_bad_qr_payments_are_problems_and_move_nothing(user, shop, fund, payload_of, body,
                                                       status, code):
    fund(user, 10_00)
    made = make_code(shop)

    response = user.post("/v1/qr/payments", {"payload": payload_of(made), **body})

    assert_problem(response, status, code)
    assert user.get("/v1/me/wallets/USD").json()["available"] == "10.00"


def test_a_revoked_code_cannot_be_paid(user, shop, fund):
    fund(user, 10_00)
    code = make_code(shop)
    revoked = shop.post(f"/v1/merchants/me/qr-codes/{code['id']}/revoke")

    response = user.post("/v1/qr/payments", {"payload": code["payload"], "amount": "1.00"})

    assert revoked.json()["status"] == "revoked"
    assert_problem(response, 422, "qr_code_revoked")
    assert user.post("/v1/qr/scan", {"payload": code["payload"]}).json()["reason"] == (
        "qr_code_revoked"
    )


def test_images_render_as_png_and_svg(shop):
    code = make_code(shop, amount="3.00")
    png = shop.get(f"/v1/merchants/me/qr-codes/{code['id']}/image.png")
    svg = shop.get(f"/v1/merchants/me/qr-codes/{code['id']}/image.svg")

    assert png.headers["content-type"] == "image/png"
    assert png.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert svg.headers["content-type"].startswith("image/svg+xml") and b"<svg" in svg.content


def test_merchants_see_only_their_own_codes_and_users_need_tokens(client, api, user, shop):
    code = make_code(shop)
    rival = registered_merchant(api, name="Rival")

    assert_problem(rival.get(f"/v1/merchants/me/qr-codes/{code['id']}"), 404,
                   "qr_code_not_found")
    assert rival.get("/v1/merchants/me/qr-codes").json()["data"] == []
    assert_problem(user.post("/v1/merchants/me/qr-codes", {"currency": "USD", "city": "X",
                                                           "country_code": "PT"}),
                   401, "unauthorized")
    assert_problem(client.post("/v1/qr/payments", json={"payload": code["payload"]},
                               headers=shop.headers("k")), 401, "unauthorized")


def test_an_inr_code_comes_with_a_upi_link_that_pays_it(user, shop, fund):
    fund(user, 500_00, "INR")
    code = make_code(shop, currency="INR", amount="120.00", city="Bengaluru",
                     country_code="IN")

    paid = user.post("/v1/qr/payments", {"payload": code["upi_link"]})

    assert code["upi_link"].startswith("upi://pay?")
    assert paid.status_code == 201, paid.text
    assert user.get("/v1/me/wallets/INR").json()["available"] == "380.00"
