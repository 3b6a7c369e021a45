"""Offers and cashback through HTTP: merchants and the platform fund pools and make
offers, users' QR payments earn cashback once, and a pool never pays more than it holds."""

from __future__ import annotations

import threading
import uuid

import pytest

from pacioli.ledger import credit, debit
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.payments.chart import Chart, Purpose
from tests.e2e.conftest import (
    MerchantApi,
    UserApi,
    assert_problem,
    registered_merchant,
    signed_up_user,
)


@pytest.fixture
def credit_to(app, engine):
    """Credit a user's wallet or a merchant's balance from the platform's bank account."""
    def credit_to(who: UserApi | MerchantApi, amount_minor: int, currency: str = "USD"):
        chart = Chart(engine, app.state.ledger)
        account = (chart.wallet(uuid.UUID(who.id), currency) if isinstance(who, UserApi)
                   else chart.merchant_balance(uuid.UUID(who.id), currency))
        app.state.ledger.transfer(
            [debit(chart.platform(Purpose.BANK_SETTLEMENT, currency), amount_minor),
             credit(account, amount_minor)],
            idempotency_key=uuid.uuid4().hex,
        )

    return credit_to


@pytest.fixture
def shop(api) -> MerchantApi:
    return registered_merchant(api, name="Cafe Lisboa")


def static_code(shop: MerchantApi) -> str:
    response = shop.post("/v1/merchants/me/qr-codes",
                         {"currency": "USD", "city": "Lisbon", "country_code": "PT",
                          "category_code": "5814"})
    assert response.status_code == 201, response.text
    return response.json()["payload"]


def merchant_offer(shop: MerchantApi, **fields) -> dict:
    body = {"currency": "USD", "cashback_bps": 500, "cap": "2.00", **fields}
    response = shop.post("/v1/merchants/me/offers", body)
    assert response.status_code == 201, response.text
    return response.json()


def wallet(user: UserApi) -> str:
    return user.get("/v1/me/wallets/USD").json()["available"]


def pools(who) -> dict[str, str]:
    path = ("/v1/merchants/me/promotions/pools" if isinstance(who, MerchantApi)
            else "/v1/promotions/pools")
    response = who.get(path)
    assert response.status_code == 200, response.text
    return {pool["currency"]: pool["available"] for pool in response.json()}


def test_a_merchant_funds_its_pool_and_a_payment_earns_cashback_once(user, shop, credit_to):
    credit_to(shop, 30_00)
    credit_to(user, 100_00)
    funded = shop.post("/v1/merchants/me/promotions/fundings",
                       {"amount": "20.00", "currency": "USD"}, key="fund-1")
    replayed = shop.post("/v1/merchants/me/promotions/fundings",
                         {"amount": "20.00", "currency": "USD"}, key="fund-1")
    offer = merchant_offer(shop, min_payment="10.00", description="5% back")
    payload = static_code(shop)

    paid = user.post("/v1/qr/payments", {"payload": payload, "amount": "30.00"}, key="pay")
    retried = user.post("/v1/qr/payments", {"payload": payload, "amount": "30.00"}, key="pay")

    assert funded.status_code == 201 and funded.json()["status"] == "succeeded"
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert (offer["funder"], offer["merchant_id"], offer["cap"], offer["min_payment"]) == (
        "merchant", shop.id, "2.00", "10.00")
    assert paid.status_code == 201 and retried.json()["id"] == paid.json()["id"]
    assert wallet(user) == "71.50"  # 100.00 - 30.00 + 1.50
    assert pools(shop) == {"USD": "18.50"}
    # 30.00 - 20.00 funded the pool; the payment less fee waits for settlement.
    [usd] = shop.get("/v1/merchants/me/balances").json()
    assert (usd["available"], usd["pending_settlement"]) == ("10.00", "29.82")


def test_a_merchant_cannot_fund_its_pool_beyond_its_balance(shop, credit_to):
    credit_to(shop, 5_00)

    response = shop.post("/v1/merchants/me/promotions/fundings",
                         {"amount": "5.01", "currency": "USD"})

    assert_problem(response, 422, "insufficient_funds")
    assert shop.get("/v1/merchants/me/balances").json()[0]["available"] == "5.00"
    assert pools(shop) == {"USD": "0.00"}


def test_concurrent_payments_never_overdraw_the_pool(client, shop, credit_to):
    credit_to(shop, 2_50)
    shop.post("/v1/merchants/me/promotions/fundings", {"amount": "2.50", "currency": "USD"})
    merchant_offer(shop, cashback_bps=1000, cap="1.00")
    payload = static_code(shop)
    payers = [signed_up_user(client) for _ in range(6)]
    for payer in payers:
        credit_to(payer, 20_00)
    statuses: list[int] = []

    def pay(payer: UserApi) -> None:
        response = payer.post("/v1/qr/payments", {"payload": payload, "amount": "10.00"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=pay, args=(payer,)) for payer in payers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [201] * 6
    assert sorted(wallet(payer) for payer in payers) == ["10.00"] * 4 + ["11.00"] * 2
    assert pools(shop) == {"USD": "0.50"}


def test_the_platform_funds_an_offer_for_one_merchant(api, user, shop, credit_to):
    credit_to(user, 50_00)
    funded = api.post("/v1/promotions/pool/fundings", {"amount": "5.00", "currency": "USD"})
    offer = api.post("/v1/promotions/offers", {"currency": "USD", "cashback_bps": 1000,
                                                "cap": "0.75", "merchant_id": shop.id,
                                                "uses_per_user_max": 1})
    payload = static_code(shop)

    first = user.post("/v1/qr/payments", {"payload": payload, "amount": "10.00"})
    second = user.post("/v1/qr/payments", {"payload": payload, "amount": "10.00"})

    assert funded.status_code == 201, funded.text
    assert offer.status_code == 201 and offer.json()["funder"] == "platform"
    assert first.status_code == 201 and second.status_code == 201
    assert wallet(user) == "30.75"  # one use per user: 0.75 once
    listed = user.get("/v1/offers", {"merchant_id": shop.id}).json()["data"]
    assert offer.json()["id"] in [o["id"] for o in listed]
    ended = api.post(f"/v1/promotions/offers/{offer.json()['id']}/end")
    assert ended.json()["status"] == "ended"
    assert offer.json()["id"] not in [
        o["id"] for o in user.get("/v1/offers", {"merchant_id": shop.id}).json()["data"]]


def test_offers_are_seen_and_ended_only_by_their_funder(api, user, shop):
    offer = merchant_offer(shop)
    other = registered_merchant(api, name="Other Shop")

    assert shop.get(f"/v1/merchants/me/offers/{offer['id']}").status_code == 200
    assert_problem(other.get(f"/v1/merchants/me/offers/{offer['id']}"), 404, "offer_not_found")
    assert_problem(other.post(f"/v1/merchants/me/offers/{offer['id']}/end"), 404,
                   "offer_not_found")
    assert_problem(api.post(f"/v1/promotions/offers/{offer['id']}/end"), 404, "offer_not_found")
    assert other.get("/v1/merchants/me/offers").json()["data"] == []
    assert [o["id"] for o in shop.get("/v1/merchants/me/offers").json()["data"]] == [
        offer["id"]]
    # Users and merchants cannot reach the platform's endpoints.
    assert_problem(user.post("/v1/promotions/offers", {"currency": "USD", "cashback_bps": 1,
                                                      "cap": "1.00"}), 401, "unauthorized")
    assert_problem(shop.post("/v1/promotions/pool/fundings",
                             {"amount": "1.00", "currency": "USD"}), 401, "unauthorized")


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"cashback_bps": 0}, "validation_error"),
        ({"cashback_bps": 10_001}, "validation_error"),
        ({"cap": "1.001"}, "invalid_amount"),
        ({"cap": 1}, "invalid_amount"),
        ({"merchant_id": str(uuid.uuid4())}, "validation_error"),  # not the merchant's to set
        ({"starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"},
         "invalid_offer"),
        ({"currency": "XXX"}, "unknown_asset"),
    ],
)
def test_a_bad_offer_is_a_problem_and_records_nothing(shop, fields, code):
    body = {"currency": "USD", "cashback_bps": 500, "cap": "2.00", **fields}

    response = shop.post("/v1/merchants/me/offers", body)

    assert_problem(response, 422, code)
    assert shop.get("/v1/merchants/me/offers").json()["data"] == []


def test_the_ledger_check_is_clean_after_the_offers_tests(engine):
    report = check_ledger(engine)

    assert report.clean, report.to_dict()
