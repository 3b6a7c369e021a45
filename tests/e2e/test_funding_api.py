"""Linked cards and bank accounts, top-ups and withdrawals through HTTP: every sandbox card
and bank outcome, callbacks through the signed callback route (twice and out of order),
refreshes, concurrent withdrawals from one wallet, the second factor, what another user
may not see, card numbers kept out of every table and log, and a clean ledger check.

The module runs its own app whose sandbox gateway has a clock the tests move forward.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text

from pacioli.api.app import create_app
from pacioli.gateways.sandbox import SandboxGateway, SandboxSettings, magic
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.payments import totp
from tests.e2e.conftest import (
    E2E_PASSWORD_HASHER,
    UserApi,
    assert_problem,
    enrolled_totp,
    signed_up_user,
)

SECRET = "whsec_funding_e2e"


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(autouse=True)
def _clock_starts_now(clock: Clock) -> None:
    clock.now = datetime.now(UTC)


@pytest.fixture(scope="module")
def funding_app(engine, clock) -> FastAPI:
    app = create_app(engine, password_hasher=E2E_PASSWORD_HASHER)
    settings = SandboxSettings(callback_base_url="http://testserver", signing_secret=SECRET)
    app.state.gateway = SandboxGateway(engine, settings, clock=clock)
    app.state.gateway_secrets = {"sandbox": SECRET}
    return app


@pytest.fixture(scope="module")
def fclient(funding_app) -> Iterator[TestClient]:
    with TestClient(funding_app) as client:
        yield client


@pytest.fixture
def gateway(funding_app) -> SandboxGateway:
    return funding_app.state.gateway


@pytest.fixture
def send(fclient):
    def send(url: str, body: bytes, headers) -> int:
        return fclient.post(urlsplit(url).path, content=body, headers=dict(headers)).status_code

    return send


@pytest.fixture
def user(fclient) -> UserApi:
    return signed_up_user(fclient, display_name="Grace")


def link_card(user: UserApi, number: str = magic.CARD_SUCCEEDS, **fields) -> dict:
    body = {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123", **fields}
    response = user.post("/v1/me/cards", body)
    assert response.status_code == 201, response.text
    return response.json()


def link_bank(user: UserApi, number: str = magic.BANK_SUCCEEDS, **headers: str) -> dict:
    body = {"account_number": number, "routing_number": magic.ROUTING_NUMBER}
    response = user.post("/v1/me/bank-accounts", body, **headers)
    assert response.status_code == 201, response.text
    return response.json()


def top_up(user: UserApi, source: dict, amount: str = "25.00", *, kind: str = "card",
           key: str | None = None):
    body = {f"{kind}_id": source["id"], "amount": amount, "currency": "USD"}
    return user.post("/v1/me/topups", body, key=key)


def topped_up(user: UserApi, source: dict, amount: str = "25.00", **kw) -> dict:
    response = top_up(user, source, amount, **kw)
    assert response.status_code == 201, response.text
    return response.json()


def withdraw(user: UserApi, bank: dict, amount: str = "40.00", *, key: str | None = None,
             **headers: str):
    body = {"bank_account_id": bank["id"], "amount": amount, "currency": "USD"}
    return user.post("/v1/me/withdrawals", body, key=key, **headers)


def wallet(user: UserApi) -> dict:
    response = user.get("/v1/me/wallets/USD")
    assert response.status_code == 200, response.text
    return response.json()


def fund(user: UserApi, amount: str) -> None:
    assert topped_up(user, link_card(user), amount)["status"] == "succeeded"


def deliver(gateway: SandboxGateway, send, reference: str, clock: Clock,
            order=list) -> list[int]:
    """Apply due outcomes, then send the object's events (in `order`) to the route."""
    gateway.apply_due_outcomes(clock())
    events = [e.event_id for e in gateway.events_for(reference)]
    return [gateway.send_event(event_id, send, datetime.now(UTC)) for event_id in order(events)]


# Cards.


def test_a_linked_card_shows_brand_and_last_four_only(user):
    card = link_card(user, magic.CARD_SUCCEEDS)
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"],
            card["status"]) == ("visa", "4242", 12, 2040, "active")
    assert "number" not in card and "cvc" not in card and "token" not in card
    assert user.get("/v1/me/cards").json()["data"] == [card]
    assert user.get(f"/v1/me/cards/{card['id']}").json() == card


def test_linking_a_card_replays_with_the_same_key_and_refuses_another_card(user):
    body = {"number": magic.CARD_SUCCEEDS, "exp_month": 1, "exp_year": 2041, "cvc": "321"}
    first = user.post("/v1/me/cards", body, key="card-1")
    again = user.post("/v1/me/cards", body, key="card-1")
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = {**body, "number": magic.CARD_DECLINED}
    assert_problem(user.post("/v1/me/cards", other, key="card-1"), 409, "idempotency_key_reused")
    assert len(user.get("/v1/me/cards").json()["data"]) == 1


@pytest.mark.parametrize(("fields", "code"), [
    ({"number": "4242424242424241"}, "invalid_card_number"),
    ({"exp_year": 2020}, "card_expired"),
    ({"exp_month": 13}, "invalid_card_expiry"),
    ({"cvc": "12"}, "invalid_cvc"),
    ({"number": 4242424242424242}, "validation_error"),
])
def test_an_invalid_card_is_refused_without_echoing_it(user, fields, code):
    body = {"number": magic.CARD_SUCCEEDS, "exp_month": 12, "exp_year": 2040, "cvc": "123",
            **fields}
    response = user.post("/v1/me/cards", body)
    assert_problem(response, 422, code)
    assert str(body["number"]) not in response.text
    assert user.get("/v1/me/cards").json()["data"] == []


def test_a_removed_card_is_listed_no_more_and_cannot_top_up(user):
    card = link_card(user)
    removed = user.delete(f"/v1/me/cards/{card['id']}")
    assert removed.json()["status"] == "removed"
    assert user.get("/v1/me/cards").json()["data"] == []
    assert_problem(top_up(user, card), 422, "instrument_removed")


def test_the_card_number_and_cvc_never_reach_a_table_row_or_a_log(
    user, engine, caplog, gateway, send, clock
):
    number, cvc = magic.CARD_ASYNC_SUCCEEDS, "479"
    caplog.set_level(logging.DEBUG)
    card = link_card(user, number, cvc=cvc)
    topup = topped_up(user, card)
    clock.advance(3)
    deliver(gateway, send, topup["gateway_reference"], clock)
    assert user.get(f"/v1/me/topups/{topup['id']}").json()["status"] == "succeeded"

    with engine.connect() as connection:
        tables = connection.execute(text(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )).scalars().all()

        def holders(value: str) -> list[str]:
            return [t for t in tables if connection.execute(text(
                f'SELECT count(*) FROM "{t}" AS r WHERE r::text LIKE :pattern'
            ), {"pattern": f"%{value}%"}).scalar()]

        assert "funding_instruments" in holders(card["id"])  # the scan finds what is kept
        assert holders(number) == []
    for record in caplog.records:
        assert number not in record.getMessage()
        assert number not in str(record.__dict__)
        assert cvc not in [str(v) for v in record.__dict__.values()]


# Top-ups from cards.


@pytest.mark.parametrize(("number", "status", "failure_code"), [
    (magic.CARD_SUCCEEDS, "succeeded", None),
    (magic.CARD_DECLINED, "failed", "card_declined"),
    (magic.CARD_INSUFFICIENT_FUNDS, "failed", "insufficient_funds"),
    (magic.CARD_EXPIRED, "failed", "expired_card"),
    (magic.CARD_PROCESSING_ERROR, "failed", "processing_error"),
])
def test_each_synchronous_card_outcome_credits_or_voids(user, number, status, failure_code):
    topup = topped_up(user, link_card(user, number), "25.00")
    assert (topup["status"], topup["failure_code"]) == (status, failure_code)
    balance = "25.00" if status == "succeeded" else "0.00"
    got = wallet(user)
    assert (got["available"], got["posted"], got["pending_in"]) == (balance, balance, "0.00")


def test_a_3ds_card_is_credited_once_by_its_signed_callback(user, gateway, send, clock):
    topup = topped_up(user, link_card(user, magic.CARD_ASYNC_SUCCEEDS))
    assert topup["status"] == "pending"
    assert (wallet(user)["available"], wallet(user)["pending_in"]) == ("0.00", "25.00")

    clock.advance(3)
    assert deliver(gateway, send, topup["gateway_reference"], clock) == [200]
    # The capture queued its own event; everything delivered again changes nothing.
    assert deliver(gateway, send, topup["gateway_reference"], clock) == [200, 200]
    assert deliver(gateway, send, topup["gateway_reference"], clock) == [200, 200]

    assert user.get(f"/v1/me/topups/{topup['id']}").json()["status"] == "succeeded"
    assert (wallet(user)["available"], wallet(user)["pending_in"]) == ("25.00", "0.00")


def test_callbacks_delivered_by_the_sandbox_settle_a_top_up(user, gateway, send, clock):
    topup = topped_up(user, link_card(user, magic.CARD_ASYNC_SUCCEEDS))
    clock.advance(3)
    gateway.deliver_due(clock(), send)
    gateway.deliver_due(clock(), send)  # the capture's own event
    assert user.get(f"/v1/me/topups/{topup['id']}").json()["status"] == "succeeded"
    assert wallet(user)["available"] == "25.00"


def test_a_3ds_decline_voids_the_hold(user, gateway, send, clock):
    topup = topped_up(user, link_card(user, magic.CARD_ASYNC_DECLINED))
    clock.advance(3)
    deliver(gateway, send, topup["gateway_reference"], clock)
    settled = user.get(f"/v1/me/topups/{topup['id']}").json()
    assert (settled["status"], settled["failure_code"]) == ("failed", "card_declined")
    assert (wallet(user)["available"], wallet(user)["pending_in"]) == ("0.00", "0.00")


def test_the_timeout_card_is_voided_by_a_refresh_after_the_deadline(user, gateway, clock):
    topup = topped_up(user, link_card(user, magic.CARD_TIMEOUT))
    path = f"/v1/me/topups/{topup['id']}/refresh"
    assert user.post(path).json()["status"] == "pending"
    clock.advance(gateway.settings.authorization_timeout_seconds + 1)
    refreshed = user.post(path).json()
    assert (refreshed["status"], refreshed["failure_code"]) == ("failed", "timeout")
    assert user.post(path).json() == refreshed
    assert (wallet(user)["available"], wallet(user)["pending_in"]) == ("0.00", "0.00")


def test_a_later_event_first_does_not_let_the_earlier_one_regress(user, gateway, send, clock):
    topup = topped_up(user, link_card(user, magic.CARD_ASYNC_SUCCEEDS))
    clock.advance(3)
    assert user.post(f"/v1/me/topups/{topup['id']}/refresh").json()["status"] == "succeeded"
    reversed_order = deliver(gateway, send, topup["gateway_reference"], clock,
                             order=lambda ids: list(reversed(ids)))
    assert reversed_order == [200, 200]
    assert user.get(f"/v1/me/topups/{topup['id']}").json()["status"] == "succeeded"
    assert wallet(user)["available"] == "25.00"


def test_an_unreachable_gateway_leaves_the_top_up_pending_and_credits_nothing(user):
    topup = topped_up(user, link_card(user), "5.03")  # the sandbox's magic amount 503
    assert (topup["status"], topup["gateway_reference"]) == ("pending", None)
    assert user.post(f"/v1/me/topups/{topup['id']}/refresh").json()["status"] == "pending"
    assert wallet(user)["available"] == "0.00"


def test_a_top_up_replays_with_its_key_and_moves_money_once(user):
    card = link_card(user)
    first = top_up(user, card, "10.00", key="t-1")
    again = top_up(user, card, "10.00", key="t-1")
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(top_up(user, card, "11.00", key="t-1"), 409, "idempotency_key_reused")
    assert wallet(user)["available"] == "10.00"


@pytest.mark.parametrize(("body", "code"), [
    ({"amount": "1.001"}, "invalid_amount"),
    ({"amount": 10}, "invalid_amount"),
    ({"currency": "XXX"}, "unknown_asset"),
    ({"bank_account_id": str(uuid.uuid4())}, "validation_error"),
])
def test_bad_top_up_requests_are_refused(user, body, code):
    card = link_card(user)
    request = {"card_id": card["id"], "amount": "10.00", "currency": "USD", **body}
    assert_problem(user.post("/v1/me/topups", request), 422, code)
    assert user.get("/v1/me/topups").json()["data"] == []


# Top-ups from bank accounts.


@pytest.mark.parametrize(("number", "status", "failure_code"), [
    (magic.BANK_SUCCEEDS, "succeeded", None),
    (magic.BANK_ACCOUNT_CLOSED, "failed", "account_closed"),
    (magic.BANK_INSUFFICIENT_FUNDS, "failed", "insufficient_funds"),
])
def test_a_bank_top_up_is_pending_until_its_callback(
    user, gateway, send, clock, number, status, failure_code
):
    bank = link_bank(user, number)
    topup = topped_up(user, bank, kind="bank_account")
    assert topup["status"] == "pending"
    clock.advance(3)
    assert deliver(gateway, send, topup["gateway_reference"], clock) == [200]
    assert deliver(gateway, send, topup["gateway_reference"], clock) == [200]  # a duplicate
    settled = user.get(f"/v1/me/topups/{topup['id']}").json()
    assert (settled["status"], settled["failure_code"]) == (status, failure_code)
    balance = "25.00" if status == "succeeded" else "0.00"
    assert (wallet(user)["available"], wallet(user)["pending_in"]) == (balance, "0.00")


def test_a_card_id_naming_a_bank_account_is_not_found(user):
    bank = link_bank(user)
    assert_problem(top_up(user, bank, kind="card"), 404, "instrument_not_found")


# Withdrawals.


def test_a_withdrawal_holds_then_posts_when_paid_out(user, gateway, send, clock):
    fund(user, "100.00")
    withdrawal = withdraw(user, link_bank(user), "40.00").json()
    assert withdrawal["status"] == "pending"
    got = wallet(user)
    assert (got["available"], got["posted"], got["pending_out"]) == ("60.00", "100.00", "40.00")
    clock.advance(3)
    assert deliver(gateway, send, withdrawal["gateway_reference"], clock) == [200]
    assert deliver(gateway, send, withdrawal["gateway_reference"], clock) == [200]
    assert user.get(f"/v1/me/withdrawals/{withdrawal['id']}").json()["status"] == "succeeded"
    got = wallet(user)
    assert (got["available"], got["posted"], got["pending_out"]) == ("60.00", "60.00", "0.00")


def test_a_failed_payout_releases_the_funds(user, gateway, send, clock):
    fund(user, "100.00")
    withdrawal = withdraw(user, link_bank(user, magic.BANK_ACCOUNT_CLOSED)).json()
    clock.advance(3)
    deliver(gateway, send, withdrawal["gateway_reference"], clock)
    settled = user.get(f"/v1/me/withdrawals/{withdrawal['id']}").json()
    assert (settled["status"], settled["failure_code"]) == ("failed", "account_closed")
    assert (wallet(user)["available"], wallet(user)["posted"]) == ("100.00", "100.00")


def test_a_withdrawal_settles_by_refresh(user, clock):
    fund(user, "100.00")
    withdrawal = withdraw(user, link_bank(user)).json()
    path = f"/v1/me/withdrawals/{withdrawal['id']}/refresh"
    clock.advance(3)
    assert user.post(path).json()["status"] == "succeeded"
    assert user.post(path).json()["status"] == "succeeded"
    assert wallet(user)["posted"] == "60.00"


def test_insufficient_funds_refuse_a_withdrawal_and_move_nothing(user):
    fund(user, "10.00")
    assert_problem(withdraw(user, link_bank(user), "10.01"), 422, "insufficient_funds")
    assert wallet(user)["available"] == "10.00"


def test_concurrent_withdrawals_cannot_overdraw_one_wallet(user, clock):
    fund(user, "100.00")
    bank = link_bank(user)
    statuses: list[int] = []

    def attempt() -> None:
        statuses.append(withdraw(user, bank, "30.00").status_code)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201] * 3 + [422] * 5
    assert wallet(user)["available"] == "10.00"
    clock.advance(3)
    pending = user.get("/v1/me/withdrawals", {"status": "pending"}).json()["data"]
    assert {user.post(f"/v1/me/withdrawals/{w['id']}/refresh").json()["status"]
            for w in pending} == {"succeeded"}
    assert wallet(user)["posted"] == "10.00"


# The second factor.


def current_code(secret: str, offset: int = 0) -> str:
    return totp.code_at(secret, totp.step_of(datetime.now(UTC)) + offset)


def test_an_enrolled_user_needs_a_code_to_link_a_payout_destination(user):
    secret = enrolled_totp(user)
    body = {"account_number": magic.BANK_SUCCEEDS, "routing_number": magic.ROUTING_NUMBER}
    assert_problem(user.post("/v1/me/bank-accounts", body), 403, "second_factor_required")
    wrong = "000000" if current_code(secret) != "000000" else "111111"
    assert_problem(user.post("/v1/me/bank-accounts", body, **{"Pacioli-OTP": wrong}),
                   403, "invalid_second_factor")
    assert user.get("/v1/me/bank-accounts").json()["data"] == []
    linked = link_bank(user, **{"Pacioli-OTP": current_code(secret)})
    assert user.get("/v1/me/bank-accounts").json()["data"] == [linked]


def test_a_withdrawal_above_the_threshold_needs_a_code_and_below_it_none(user):
    secret = enrolled_totp(user)
    bank = link_bank(user, **{"Pacioli-OTP": current_code(secret)})
    fund(user, "2500.00")
    assert withdraw(user, bank, "1000.00").status_code == 201  # at the threshold: no code
    assert_problem(withdraw(user, bank, "1000.01"), 403, "second_factor_required")
    assert_problem(withdraw(user, bank, "1000.01", **{"Pacioli-OTP": current_code(secret)}),
                   403, "invalid_second_factor")  # spent on linking the account
    accepted = withdraw(user, bank, "1000.01", key="big",
                        **{"Pacioli-OTP": current_code(secret, 1)})
    assert accepted.status_code == 201, accepted.text
    replay = withdraw(user, bank, "1000.01", key="big")  # a replay needs no new code
    assert replay.json()["id"] == accepted.json()["id"]
    assert len(user.get("/v1/me/withdrawals").json()["data"]) == 2


def test_without_an_authenticator_a_large_withdrawal_is_refused(user):
    bank = link_bank(user)  # no authenticator: linking needs no code
    fund(user, "2000.00")
    assert_problem(withdraw(user, bank, "1500.00"), 403, "second_factor_required")
    assert wallet(user)["available"] == "2000.00"


# Who sees what.


def test_another_user_sees_and_uses_none_of_it(user, fclient):
    other = signed_up_user(fclient)
    card, bank = link_card(user), link_bank(user)
    fund(user, "50.00")
    topup = user.get("/v1/me/topups").json()["data"][0]
    withdrawal = withdraw(user, bank, "10.00").json()
    for path, code in [
        (f"/v1/me/cards/{card['id']}", "instrument_not_found"),
        (f"/v1/me/bank-accounts/{bank['id']}", "instrument_not_found"),
        (f"/v1/me/topups/{topup['id']}", "topup_not_found"),
        (f"/v1/me/withdrawals/{withdrawal['id']}", "withdrawal_not_found"),
    ]:
        assert_problem(other.get(path), 404, code)
    assert_problem(other.post(f"/v1/me/topups/{topup['id']}/refresh"), 404, "topup_not_found")
    assert_problem(other.post(f"/v1/me/withdrawals/{withdrawal['id']}/refresh"), 404,
                   "withdrawal_not_found")
    assert_problem(other.delete(f"/v1/me/cards/{card['id']}"), 404, "instrument_not_found")
    assert_problem(top_up(other, card), 404, "instrument_not_found")
    assert_problem(withdraw(other, bank), 404, "instrument_not_found")
    for listing in ("cards", "bank-accounts", "topups", "withdrawals"):
        assert other.get(f"/v1/me/{listing}").json()["data"] == []
    assert user.get(f"/v1/me/cards/{card['id']}").json()["status"] == "active"


def test_every_funding_route_refuses_an_anonymous_caller(fclient):
    for method, path in [("post", "/v1/me/cards"), ("get", "/v1/me/bank-accounts"),
                         ("post", "/v1/me/topups"), ("get", "/v1/me/withdrawals")]:
        assert_problem(getattr(fclient, method)(path), 401, "unauthorized")


# Replays, races and lists.


def test_concurrent_top_ups_with_one_key_charge_and_credit_once(user):
    card = link_card(user)
    responses = []

    def attempt() -> None:
        responses.append(top_up(user, card, "12.00", key="same-topup"))

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert wallet(user)["available"] == "12.00"
    assert len(user.get("/v1/me/topups").json()["data"]) == 1


def test_a_withdrawal_replays_with_its_key_and_refuses_another_body(user):
    fund(user, "100.00")
    bank = link_bank(user)
    first = withdraw(user, bank, "30.00", key="w-1")
    again = withdraw(user, bank, "30.00", key="w-1")
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(withdraw(user, bank, "31.00", key="w-1"), 409, "idempotency_key_reused")
    assert wallet(user)["available"] == "70.00"


def test_top_ups_list_newest_first_with_a_cursor_and_a_status_filter(user):
    card, declined = link_card(user), link_card(user, magic.CARD_DECLINED)
    made = [topped_up(user, source, "1.00")["id"] for source in (card, declined, card)]
    page = user.get("/v1/me/topups", {"limit": 2}).json()
    assert [t["id"] for t in page["data"]] == made[::-1][:2] and page["has_more"]
    rest = user.get("/v1/me/topups", {"limit": 2, "starting_after": page["next_cursor"]})
    assert [t["id"] for t in rest.json()["data"]] == made[:1]
    failed = user.get("/v1/me/topups", {"status": "failed"}).json()["data"]
    assert [t["id"] for t in failed] == [made[1]]


def test_the_ledger_check_is_clean_after_the_funding_tests(engine):
    report = check_ledger(engine)
    assert report.clean, report.to_dict()
