"""History through HTTP: one list of a user's (or merchant's) movements across flows, with
names, categories, filters and cursors, and monthly spending; each sees only their own."""

from __future__ import annotations

import uuid

import pytest

from pacioli.ledger import credit, debit
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.payments.chart import Chart, Purpose
from tests.e2e.conftest import (
    UserApi,
    assert_problem,
    registered_merchant,
    signed_up_user,
)


@pytest.fixture
def story(api, client, fund):
    """Ada pays Bob, Bob pays back, Ada pays a cafe and a taxi; one payment fails."""
    ada = signed_up_user(client, display_name="Ada")
    bob = signed_up_user(client, display_name="Bob")
    fund(ada, 200_00)
    cafe = registered_merchant(api, name="Cafe Lisboa")
    taxi = registered_merchant(api, name="Taxi Co")

    def send(payer: UserApi, payee: UserApi, amount: str, note: str = ""):
        return payer.post("/v1/p2p/payments", {"to": {"user_id": payee.id}, "amount": amount,
                                               "currency": "USD", "note": note})

    def pay(shop, category_code: str, amount: str):
        code = shop.post("/v1/merchants/me/qr-codes", {
            "currency": "USD", "city": "Lisbon", "country_code": "PT",
            "category_code": category_code}).json()
        response = ada.post("/v1/qr/payments", {"payload": code["payload"], "amount": amount})
        assert response.status_code == 201, response.text

    assert send(ada, bob, "10.00", "lunch").status_code == 201
    assert send(bob, ada, "3.00", "coffee").status_code == 201
    pay(cafe, "5814", "20.00")
    pay(taxi, "4121", "15.00")
    assert send(ada, bob, "9000.00").status_code == 422
    return {"ada": ada, "bob": bob, "cafe": cafe, "taxi": taxi}


def rows(response) -> list[tuple]:
    assert response.status_code == 200, response.text
    return [(e["kind"], e["direction"], e["amount"], e["counterparty"]["name"], e["category"],
             e["status"]) for e in response.json()["data"]]


def test_a_user_sees_every_flow_newest_first_with_names_and_categories(story):
    response = story["ada"].get("/v1/me/transactions")

    assert rows(response) == [
        ("p2p", "out", "9000.00", "Bob", "transfers", "failed"),
        ("qr_payment", "out", "15.00", "Taxi Co", "transport", "succeeded"),
        ("qr_payment", "out", "20.00", "Cafe Lisboa", "food", "succeeded"),
        ("p2p", "in", "3.00", "Bob", "transfers", "succeeded"),
        ("p2p", "out", "10.00", "Bob", "transfers", "succeeded"),
    ]
    first = response.json()["data"][-1]
    assert (first["note"], first["currency"], first["counterparty"]["kind"]) == (
        "lunch", "USD", "user")
    assert first["counterparty"]["id"] == story["bob"].id


def test_the_payee_sees_the_mirror_without_the_failed_payment(story):
    assert rows(story["bob"].get("/v1/me/transactions")) == [
        ("p2p", "out", "3.00", "Ada", "transfers", "succeeded"),
        ("p2p", "in", "10.00", "Ada", "transfers", "succeeded"),
    ]


def test_filters_by_kind_direction_currency_status_and_time(story):
    ada = story["ada"]
    everything = ada.get("/v1/me/transactions").json()["data"]

    def kinds(**params):
        return [(k, d) for k, d, *_ in rows(ada.get("/v1/me/transactions", params))]

    assert kinds(kind="qr_payment") == [("qr_payment", "out")] * 2
    assert kinds(kind=["p2p", "qr_payment"], direction="in") == [("p2p", "in")]
    assert kinds(status="failed") == [("p2p", "out")]
    assert kinds(currency="EUR") == []
    taxi_at = everything[1]["occurred_at"]
    assert kinds(**{"from": taxi_at, "to": everything[0]["occurred_at"]}) == [
        ("qr_payment", "out")]
    assert_problem(ada.get("/v1/me/transactions", {"kind": "lottery"}), 422,
                   "validation_error")


def test_the_cursor_walks_every_entry_once(story):
    ada = story["ada"]
    everything = [e["id"] for e in ada.get("/v1/me/transactions").json()["data"]]
    walked, params = [], {"limit": 2}
    while True:
        page = ada.get("/v1/me/transactions", params).json()
        walked += [e["id"] for e in page["data"]]
        if not page["has_more"]:
            break
        params = {"limit": 2, "starting_after": page["next_cursor"]}

    assert walked == everything and len(walked) == 5
    assert_problem(ada.get("/v1/me/transactions", {"starting_after": "nonsense"}), 422,
                   "invalid_history_query")


def test_monthly_spending_sums_what_succeeded_per_category(story):
    ada = story["ada"]
    month = ada.get("/v1/me/transactions").json()["data"][0]["occurred_at"][:7]

    response = ada.get("/v1/me/spending", {"month": month})

    assert response.status_code == 200, response.text
    assert response.json() == {"months": [{"month": month, "currencies": [{
        "currency": "USD", "total": "45.00",
        "categories": [{"category": "food", "amount": "20.00"},
                       {"category": "transfers", "amount": "10.00"},
                       {"category": "transport", "amount": "15.00"}],
    }]}]}
    ranged = ada.get("/v1/me/spending", {"from_month": "2020-01", "to_month": "2020-02"})
    assert ranged.json() == {"months": [{"month": "2020-01", "currencies": []},
                                        {"month": "2020-02", "currencies": []}]}
    assert_problem(ada.get("/v1/me/spending", {"month": "2026-13"}), 422,
                   "invalid_history_query")


def test_a_merchant_sees_its_own_payments_with_the_payers_name(story):
    cafe = story["cafe"].get("/v1/merchants/me/transactions")

    assert [(e["kind"], e["direction"], e["amount"], e["fee"], e["counterparty"]["name"])
            for e in cafe.json()["data"]] == [("qr_payment", "in", "20.00", "0.12", "Ada")]
    assert [e["amount"] for e in
            story["taxi"].get("/v1/merchants/me/transactions").json()["data"]] == ["15.00"]


def test_strangers_see_nothing_and_need_the_right_credentials(api, client, story):
    stranger = signed_up_user(client)
    other_shop = registered_merchant(api, name="Elsewhere")

    assert stranger.get("/v1/me/transactions").json() == {
        "data": [], "has_more": False, "next_cursor": None}
    assert other_shop.get("/v1/merchants/me/transactions").json()["data"] == []
    assert_problem(story["cafe"].get("/v1/me/transactions"), 401, "unauthorized")
    assert_problem(story["ada"].get("/v1/merchants/me/transactions"), 401, "unauthorized")
    assert_problem(client.get("/v1/me/spending"), 401, "unauthorized")


def test_cashback_shows_in_the_users_and_the_funding_merchants_history(api, client, fund, app,
                                                                       engine):
    ada = signed_up_user(client, display_name="Ada")
    fund(ada, 50_00)
    shop = registered_merchant(api, name="Green Grocer")
    chart = Chart(engine, app.state.ledger)
    app.state.ledger.transfer(
        [debit(chart.platform(Purpose.BANK_SETTLEMENT, "USD"), 5_00),
         credit(chart.merchant_balance(uuid.UUID(shop.id), "USD"), 5_00)],
        idempotency_key=uuid.uuid4().hex,
    )
    shop.post("/v1/merchants/me/promotions/fundings", {"amount": "5.00", "currency": "USD"})
    shop.post("/v1/merchants/me/offers", {"currency": "USD", "cashback_bps": 1000,
                                          "cap": "1.00"})
    code = shop.post("/v1/merchants/me/qr-codes", {
        "currency": "USD", "city": "Lisbon", "country_code": "PT",
        "category_code": "5411"}).json()
    assert ada.post("/v1/qr/payments", {"payload": code["payload"],
                                        "amount": "8.00"}).status_code == 201

    mine = rows(ada.get("/v1/me/transactions"))
    theirs = [(e["kind"], e["direction"], e["amount"], e["counterparty"]["name"])
              for e in shop.get("/v1/merchants/me/transactions").json()["data"]]

    assert mine == [
        ("cashback", "in", "0.80", "Green Grocer", "cashback", "succeeded"),
        ("qr_payment", "out", "8.00", "Green Grocer", "food", "succeeded"),
    ]
    assert theirs == [("cashback", "out", "0.80", "Ada"), ("qr_payment", "in", "8.00", "Ada"),
                      ("promotion_funding", "out", "5.00", "Pacioli promotions pool")]
    assert ada.get("/v1/me/wallets/USD").json()["available"] == "42.80"


def test_the_ledger_check_is_clean_after_the_history_tests(engine):
    report = check_ledger(engine)

    assert report.clean, report.to_dict()
