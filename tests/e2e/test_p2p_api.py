"""Wallets, P2P payments and money requests through HTTP, as users with their own tokens."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest

from tests.e2e.conftest import UserApi, assert_problem, signed_up_user


@pytest.fixture
def bob(client) -> UserApi:
    return signed_up_user(client, display_name="Bob", phone=f"+4420{uuid.uuid4().int % 10**8:08d}")


def wallet(user: UserApi, currency: str = "USD") -> dict:
    response = user.get(f"/v1/me/wallets/{currency}")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_user_pays_another_by_email_and_both_see_it(user, bob, fund):
    fund(user, 10_000)

    response = user.post("/v1/p2p/payments",
                         {"to": {"email": bob.email}, "amount": "25.50", "currency": "USD",
                          "note": "dinner"})

    assert response.status_code == 201, response.text
    payment = response.json()
    assert payment["status"] == "succeeded" and payment["direction"] == "sent"
    assert payment["payee"] == {"user_id": bob.id, "display_name": "Bob"}
    assert payment["payer"]["display_name"] == "Ada"
    assert wallet(user)["available"] == "74.50"
    assert wallet(bob)["available"] == "25.50"
    received = bob.get(f"/v1/p2p/payments/{payment['id']}").json()
    assert received["direction"] == "received" and received["note"] == "dinner"


def test_a_user_pays_another_by_phone_and_by_id(user, bob, fund):
    fund(user, 1_000)

    by_phone = user.post("/v1/p2p/payments", {"to": {"phone": bob.user["phone"]},
                                              "amount": "1.00", "currency": "USD"})
    by_id = user.post("/v1/p2p/payments", {"to": {"user_id": bob.id}, "amount": "2.00",
                                           "currency": "USD"})

    assert by_phone.status_code == 201 and by_id.status_code == 201
    assert wallet(bob)["available"] == "3.00"


def test_a_retried_payment_is_replayed_not_repeated(user, bob, fund):
    fund(user, 1_000)
    body = {"to": {"user_id": bob.id}, "amount": "4.00", "currency": "USD"}

    first = user.post("/v1/p2p/payments", body, key="retry-me")
    second = user.post("/v1/p2p/payments", body, key="retry-me")
    other = user.post("/v1/p2p/payments", {**body, "amount": "5.00"}, key="retry-me")

    assert first.status_code == 201 and second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.json()["id"] == first.json()["id"]
    assert_problem(other, 409, "idempotency_key_reused")
    assert wallet(bob)["available"] == "4.00"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"amount": "1.001"}, 422, "invalid_amount"),
        ({"amount": "0"}, 422, "invalid_amount"),
        ({"amount": "-1.00"}, 422, "invalid_amount"),
        ({"amount": 1.5}, 422, "invalid_amount"),
        ({"currency": "XXX"}, 422, "unknown_asset"),
        ({"amount": "500.00"}, 422, "insufficient_funds"),
        ({"to": {"email": "nobody@example.com"}}, 404, "recipient_not_found"),
        ({"to": {"user_id": str(uuid.uuid4())}}, 404, "recipient_not_found"),
        ({"to": {}}, 422, "validation_error"),
        ({"note": "x" * 281}, 422, "validation_error"),
    ],
)
def test_bad_payments_are_problems_and_move_nothing(user, bob, fund, body, status, code):
    fund(user, 10_000)
    request = {"to": {"user_id": bob.id}, "amount": "1.00", "currency": "USD", **body}

    assert_problem(user.post("/v1/p2p/payments", request), status, code)
    assert wallet(user)["available"] == "100.00"
    assert wallet(bob)["available"] == "0.00"


def test_paying_yourself_is_refused(user, fund):
    fund(user, 1_000)
    response = user.post("/v1/p2p/payments", {"to": {"user_id": user.id}, "amount": "1.00",
                                              "currency": "USD"})
    assert_problem(response, 422, "payment_to_self")


def test_payments_need_a_user_token_and_an_idempotency_key(client, user, bob, api):
    body = {"to": {"user_id": bob.id}, "amount": "1.00", "currency": "USD"}
    no_token = client.post("/v1/p2p/payments", json=body, headers={"Idempotency-Key": "k"})
    admin = client.post("/v1/p2p/payments", json=body, headers=api.headers("k"))
    no_key = client.post("/v1/p2p/payments", json=body, headers=user.headers())

    assert_problem(no_token, 401, "unauthorized")
    assert_problem(admin, 401, "unauthorized")
    assert_problem(no_key, 422, "idempotency_key_required")


def test_nobody_else_sees_a_payment_or_a_wallet(client, user, bob, fund):
    fund(user, 1_000)
    payment = user.post("/v1/p2p/payments", {"to": {"user_id": bob.id}, "amount": "1.00",
                                             "currency": "USD"}).json()
    mallory = signed_up_user(client)

    assert_problem(mallory.get(f"/v1/p2p/payments/{payment['id']}"), 404, "payment_not_found")
    assert mallory.get("/v1/p2p/payments").json()["data"] == []
    assert wallet(mallory)["available"] == "0.00"
    assert mallory.get("/v1/me/wallets").json() == []


def test_concurrent_payments_from_one_wallet_never_overdraw_it(client, user, fund):
    fund(user, 1_000)  # 10.00 USD: room for exactly five payments of 2.00
    payees = [signed_up_user(client) for _ in range(10)]
    statuses: list[int] = []

    def send(payee):
        response = user.post("/v1/p2p/payments", {"to": {"user_id": payee.id},
                                                  "amount": "2.00", "currency": "USD"})
        statuses.append(response.status_code)

    threads = [threading.Thread(target=send, args=(payee,)) for payee in payees]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201] * 5 + [422] * 5
    assert wallet(user)["available"] == "0.00"
    assert sum(Decimal(wallet(p)["available"]) for p in payees) == Decimal("10.00")


def test_payments_list_newest_first_with_a_cursor(user, bob, fund):
    fund(user, 1_000)
    ids = [
        user.post("/v1/p2p/payments", {"to": {"user_id": bob.id}, "amount": f"{n}.00",
                                       "currency": "USD"}).json()["id"]
        for n in (1, 2, 3)
    ]

    first = user.get("/v1/p2p/payments", {"limit": 2}).json()
    rest = user.get("/v1/p2p/payments", {"limit": 2, "starting_after": first["next_cursor"]})

    assert [p["id"] for p in first["data"]] == ids[::-1][:2] and first["has_more"]
    assert [p["id"] for p in rest.json()["data"]] == ids[:1]
    assert [w["currency"] for w in user.get("/v1/me/wallets").json()] == ["USD"]


def test_a_money_request_is_paid_by_the_payer(user, bob, fund):
    fund(bob, 5_000)
    asked = user.post("/v1/p2p/requests", {"from": {"email": bob.email}, "amount": "12.00",
                                           "currency": "USD", "note": "tickets"})
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]

    open_for_bob = bob.get("/v1/p2p/requests", {"status": "open"}).json()["data"]
    paid = bob.post(f"/v1/p2p/requests/{request_id}/pay")

    assert [r["id"] for r in open_for_bob] == [request_id]
    assert open_for_bob[0]["role"] == "payer"
    assert paid.status_code == 201, paid.text
    assert paid.json()["request_id"] == request_id
    assert user.get(f"/v1/p2p/requests/{request_id}").json()["status"] == "paid"
    assert wallet(user)["available"] == "12.00"
    assert_problem(bob.post(f"/v1/p2p/requests/{request_id}/pay"), 409, "money_request_not_open")
    assert wallet(user)["available"] == "12.00"


def test_a_money_request_can_be_declined_or_cancelled_by_the_right_party(client, user, bob):
    asked = user.post("/v1/p2p/requests", {"from": {"user_id": bob.id}, "amount": "1.00",
                                           "currency": "USD"}).json()
    other = user.post("/v1/p2p/requests", {"from": {"user_id": bob.id}, "amount": "2.00",
                                           "currency": "USD"}).json()
    mallory = signed_up_user(client)

    assert_problem(mallory.get(f"/v1/p2p/requests/{asked['id']}"), 404,
                   "money_request_not_found")
    assert_problem(mallory.post(f"/v1/p2p/requests/{asked['id']}/pay"), 404,
                   "money_request_not_found")
    assert_problem(user.post(f"/v1/p2p/requests/{asked['id']}/decline"), 404,
                   "money_request_not_found")
    declined = bob.post(f"/v1/p2p/requests/{asked['id']}/decline")
    cancelled = user.post(f"/v1/p2p/requests/{other['id']}/cancel")

    assert declined.status_code == 200 and declined.json()["status"] == "declined"
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    assert_problem(bob.post(f"/v1/p2p/requests/{asked['id']}/pay"), 409,
                   "money_request_not_open")
