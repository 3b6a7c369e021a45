"""Settlements through HTTP: a merchant's pending settlement and balance, refunds before
settlement, the settlement list and report, payouts settled by signed callbacks through
the callback route, schedules set by an admin, and what another merchant may not see.

The module runs its own app whose sandbox gateway has a clock the tests move forward;
the settlement run itself is a worker's job, so the tests call it directly.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from pacioli.api.app import create_app
from pacioli.gateways.sandbox import SandboxGateway, SandboxSettings, magic
from pacioli.ledger import credit, debit
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.settlement import Settlement
from tests.e2e.conftest import (
    E2E_PASSWORD_HASHER,
    Api,
    MerchantApi,
    UserApi,
    assert_problem,
    registered_merchant,
    signed_up_user,
)

SECRET = "whsec_settlement_e2e"


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def settlement_app(engine, clock) -> FastAPI:
    app = create_app(engine, password_hasher=E2E_PASSWORD_HASHER)
    settings = SandboxSettings(callback_base_url="http://testserver", signing_secret=SECRET)
    app.state.gateway = SandboxGateway(engine, settings, clock=clock)
    app.state.gateway_secrets = {"sandbox": SECRET}
    return app


@pytest.fixture(scope="module")
def sclient(settlement_app) -> Iterator[TestClient]:
    with TestClient(settlement_app) as client:
        yield client


@pytest.fixture
def sapi(sclient, admin_key) -> Api:
    return Api(sclient, admin_key)


@dataclass
class Harness:
    """What a worker would do, on the test's app: run the cycle, deliver callbacks."""

    app: FastAPI
    client: TestClient
    clock: Clock

    def run_cycle(self) -> None:
        app = self.app
        settlement = Settlement(app.state.engine, app.state.ledger,
                                Chart(app.state.engine, app.state.ledger), app.state.gateway)
        settlement.run_cycle(datetime.now(UTC) + timedelta(seconds=1))

    def send(self, url: str, body: bytes, headers) -> int:
        return self.client.post(urlsplit(url).path, content=body,
                                headers=dict(headers)).status_code

    def deliver(self, reference: str) -> list[int]:
        gateway: SandboxGateway = self.app.state.gateway
        self.clock.now += timedelta(seconds=5)  # the payout's outcome is due
        gateway.apply_due_outcomes(self.clock())
        return [gateway.send_event(event.event_id, self.send, datetime.now(UTC))
                for event in gateway.events_for(reference)]

    def fund(self, user: UserApi, amount_minor: int, currency: str = "USD") -> None:
        ledger = self.app.state.ledger
        chart = Chart(self.app.state.engine, ledger)
        ledger.transfer(
            [debit(chart.platform(Purpose.BANK_SETTLEMENT, currency), amount_minor),
             credit(chart.wallet(uuid.UUID(user.id), currency), amount_minor)],
            idempotency_key=uuid.uuid4().hex,
        )


@pytest.fixture
def harness(settlement_app, sclient, clock) -> Harness:
    return Harness(settlement_app, sclient, clock)


def merchant_paid_same_day(sapi: Api, account_number: str = magic.BANK_SUCCEEDS) -> MerchantApi:
    """A merchant with a payable settlement account, settled T+0 (set by the admin)."""
    shop = registered_merchant(sapi, name="Cafe Lisboa")
    account = shop.put("/v1/merchants/me/settlement-account",
                       {"account_holder": "Cafe Lisboa", "account_number": account_number,
                        "routing_number": magic.ROUTING_NUMBER})
    assert account.status_code == 200, account.text
    schedule = sapi.client.put(f"/v1/merchants/{shop.id}/settlement-schedule",
                               json={"cycle_days": 0}, headers=sapi.headers())
    assert schedule.status_code == 200, schedule.text
    return shop


def pay(harness: Harness, shop: MerchantApi, amount: str, currency: str = "USD") -> dict:
    payer = signed_up_user(harness.client)
    harness.fund(payer, int(Decimal(amount) * 100) + 100_00, currency)
    code = shop.post("/v1/merchants/me/qr-codes",
                     {"currency": currency, "city": "Lisbon", "country_code": "PT"})
    assert code.status_code == 201, code.text
    paid = payer.post("/v1/qr/payments", {"payload": code.json()["payload"], "amount": amount})
    assert paid.status_code == 201, paid.text
    return paid.json()


def balances(shop: MerchantApi) -> dict[str, tuple[str, str]]:
    response = shop.get("/v1/merchants/me/balances")
    assert response.status_code == 200, response.text
    return {b["currency"]: (b["available"], b["pending_settlement"]) for b in response.json()}


def settlements(shop: MerchantApi, **params) -> dict:
    response = shop.get("/v1/merchants/me/settlements", params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_merchant_is_settled_paid_out_and_reads_the_report(sapi, harness):
    shop = merchant_paid_same_day(sapi)
    first = pay(harness, shop, "20.00")
    pay(harness, shop, "5.00")
    refund = shop.post(f"/v1/merchants/me/qr-payments/{first['id']}/refunds",
                       {"amount": "2.00"}, key="refund-1")
    replay = shop.post(f"/v1/merchants/me/qr-payments/{first['id']}/refunds",
                       {"amount": "2.00"}, key="refund-1")
    assert refund.status_code == 201, refund.text
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert (refund.json()["source"], refund.json()["fee_returned"]) == (
        "pending_settlement", "0.01")
    # 25.00 less fees 0.12 + 0.03, less the refund 2.00 with its 0.01 of fee given back.
    assert balances(shop) == {"USD": ("0.00", "22.86")}

    harness.run_cycle()
    [pending] = settlements(shop)["data"]
    assert pending["status"] == "payout_pending" and balances(shop) == {"USD": ("0.00", "0.00")}
    assert harness.deliver(pending["payout_reference"]) == [200]

    report = shop.get(f"/v1/merchants/me/settlements/{pending['id']}")
    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["status"], body["gross"], body["fees"], body["refunds"], body["net"]) == (
        "paid", "25.00", "0.14", "2.00", "22.86")
    assert body["item_count"] == len(body["items"]) == 3
    assert sum(Decimal(item["net"]) for item in body["items"]) == Decimal("22.86")
    assert {item["source_kind"] for item in body["items"]} == {"qr_payment", "qr_refund"}
    assert balances(shop) == {"USD": ("0.00", "0.00")}


def test_a_failed_payout_leaves_the_net_in_the_merchant_balance(sapi, harness):
    shop = merchant_paid_same_day(sapi, magic.BANK_ACCOUNT_CLOSED)
    pay(harness, shop, "10.00")

    harness.run_cycle()
    [pending] = settlements(shop)["data"]
    harness.deliver(pending["payout_reference"])

    failed = shop.get(f"/v1/merchants/me/settlements/{pending['id']}").json()
    assert (failed["status"], failed["failure_code"], failed["net"]) == (
        "failed", "account_closed", "9.94")
    assert balances(shop) == {"USD": ("9.94", "0.00")}
    # A refund now comes out of the settled balance.
    paid = shop.get("/v1/merchants/me/qr-payments").json()["data"][0]
    refund = shop.post(f"/v1/merchants/me/qr-payments/{paid['id']}/refunds", {})
    assert refund.status_code == 201, refund.text
    assert (refund.json()["source"], refund.json()["amount"]) == ("merchant_balance", "10.00")
    assert balances(shop) == {"USD": ("0.00", "0.00")}
    assert_problem(shop.post(f"/v1/merchants/me/qr-payments/{paid['id']}/refunds", {}),
                   422, "refund_exceeds_payment")


def test_settlements_are_listed_newest_first_a_page_at_a_time(sapi, harness):
    shop = merchant_paid_same_day(sapi)
    pay(harness, shop, "3.00")
    pay(harness, shop, "4.00", currency="EUR")
    harness.run_cycle()

    first = settlements(shop, limit=1)
    second = settlements(shop, limit=1, starting_after=first["next_cursor"])

    assert first["has_more"] and not second["has_more"]
    currencies = {first["data"][0]["currency"], second["data"][0]["currency"]}
    assert currencies == {"USD", "EUR"}
    assert [s["currency"] for s in settlements(shop, currency="EUR")["data"]] == ["EUR"]


def test_a_merchant_sees_only_its_own_settlements_and_refunds(sapi, harness):
    shop = merchant_paid_same_day(sapi)
    paid = pay(harness, shop, "6.00")
    harness.run_cycle()
    [mine] = settlements(shop)["data"]
    rival = registered_merchant(sapi, name="Rival")

    assert_problem(rival.get(f"/v1/merchants/me/settlements/{mine['id']}"), 404,
                   "settlement_not_found")
    assert settlements(rival)["data"] == []
    assert_problem(rival.post(f"/v1/merchants/me/qr-payments/{paid['id']}/refunds", {}),
                   404, "payment_not_found")
    assert_problem(shop.get(f"/v1/merchants/me/settlements/{uuid.uuid4()}"), 404,
                   "settlement_not_found")


def test_a_settlement_schedule_is_set_by_an_admin_only(sapi, harness):
    shop = registered_merchant(sapi)
    path = f"/v1/merchants/{shop.id}/settlement-schedule"

    assert shop.get("/v1/merchants/me/settlement-schedule").json()["cycle_days"] == 1
    assert_problem(sapi.client.put(path, json={"cycle_days": 31}, headers=sapi.headers()),
                   422, "validation_error")
    assert_problem(sapi.client.put(path, json={"cycle_days": 2}, headers=shop.headers()),
                   401, "unauthorized")
    assert sapi.client.put(path, json={"cycle_days": 2},
                           headers=sapi.headers()).json()["cycle_days"] == 2
    assert shop.get("/v1/merchants/me/settlement-schedule").json()["cycle_days"] == 2
    assert sapi.client.put(path, json={"cycle_days": None},
                           headers=sapi.headers()).json()["cycle_days"] == 1
    assert_problem(sapi.client.put(f"/v1/merchants/{uuid.uuid4()}/settlement-schedule",
                                   json={"cycle_days": 0}, headers=sapi.headers()),
                   404, "merchant_not_found")


def test_the_ledger_checks_clean_after_settlements(engine, sapi, harness):
    shop = merchant_paid_same_day(sapi)
    pay(harness, shop, "8.00")
    harness.run_cycle()
    [pending] = settlements(shop)["data"]
    harness.deliver(pending["payout_reference"])

    assert check_ledger(engine).clean
