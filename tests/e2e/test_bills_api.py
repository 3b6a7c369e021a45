"""Bill payments through HTTP, as users with their own tokens: the biller registry, every
sandbox outcome, each amount rule, replays, concurrent double-spends and refreshes, who
sees what, and a clean ledger check at the end."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import httpx
import pytest

from pacioli.ledger.service.reconcile import check_ledger
from tests.e2e.conftest import UserApi, assert_problem, signed_up_user


def ref(prefix: str = "ACC") -> str:
    """A customer reference no other test uses, with a magic prefix."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def wallet(user: UserApi, currency: str = "USD") -> dict:
    response = user.get(f"/v1/me/wallets/{currency}")
    assert response.status_code == 200, response.text
    return response.json()


def fetch(user: UserApi, biller_id: str, reference: str) -> dict:
    response = user.get(f"/v1/billers/{biller_id}/bills/{reference}")
    assert response.status_code == 200, response.text
    return response.json()


def pay(user: UserApi, biller_id: str, reference: str, amount: str, currency: str = "USD",
        *, key: str | None = None) -> httpx.Response:
    body = {"biller_id": biller_id, "customer_reference": reference, "amount": amount,
            "currency": currency}
    return user.post("/v1/bill-payments", body, key=key)


def paid(user: UserApi, biller_id: str, reference: str, amount: str | None = None) -> dict:
    """Pay (the whole bill when no amount is given); the payment must be recorded."""
    if amount is None:
        amount = fetch(user, biller_id, reference)["amount"]
    response = pay(user, biller_id, reference, amount)
    assert response.status_code == 201, response.text
    return response.json()


def refresh(user: UserApi, payment_id: str) -> dict:
    response = user.post(f"/v1/bill-payments/{payment_id}/refresh")
    assert response.status_code == 200, response.text
    return response.json()


# The registry and bills.


def test_a_user_lists_billers_with_their_rules_and_filters_by_category(user):
    everything = user.get("/v1/billers")
    water = user.get("/v1/billers", {"category": "water"})

    assert everything.status_code == 200, everything.text
    assert {b["category"] for b in everything.json()} == {
        "electricity", "mobile", "credit_card", "water"}
    assert water.json() == [{
        "id": "sandbox_water", "name": "Sandbox Water Works", "category": "water",
        "presentment": "fetch_then_pay", "amount_rule": "any", "currency": "USD",
        "customer_reference_label": "Connection id",
    }]
    assert user.get("/v1/billers/sandbox_card").json()["amount_rule"] == "minimum"
    assert_problem(user.get("/v1/billers", {"category": "gas"}), 422, "validation_error")
    assert_problem(user.get("/v1/billers/sandbox_gas"), 404, "biller_not_found")


def test_a_user_fetches_a_bill_by_customer_reference(user):
    customer = ref()

    bill = fetch(user, "sandbox_card", customer)

    assert bill["customer_reference"] == customer and bill["currency"] == "USD"
    assert Decimal(bill["minimum_due"]) < Decimal(bill["amount"])
    assert bill == fetch(user, "sandbox_card", customer)
    assert fetch(user, "sandbox_power", customer)["minimum_due"] == fetch(
        user, "sandbox_power", customer)["amount"]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/billers/sandbox_power/bills/NONE-1234", 404, "bill_not_found"),
        ("/v1/billers/sandbox_gas/bills/ACC-1234", 404, "biller_not_found"),
        ("/v1/billers/sandbox_mobile_prepaid/bills/ACC-1234", 422, "bill_fetch_not_supported"),
        ("/v1/billers/sandbox_power/bills/AC", 422, "invalid_customer_reference"),
    ],
)
def test_fetching_a_bill_that_cannot_be_fetched_is_a_problem(user, path, status, code):
    assert_problem(user.get(path), status, code)


# Paying, and every sandbox outcome.


def test_a_bill_is_pending_until_the_biller_confirms_then_taken(user, fund):
    fund(user, 500_00)
    customer = ref()
    bill = fetch(user, "sandbox_power", customer)

    payment = paid(user, "sandbox_power", customer, bill["amount"])

    assert payment["status"] == "pending" and payment["biller_reference"]
    assert payment["bill_reference"] == bill["bill_reference"]
    held = wallet(user)
    assert Decimal(held["available"]) == Decimal("500.00") - Decimal(bill["amount"])
    assert held["posted"] == "500.00" and held["pending_out"] == bill["amount"]

    settled = refresh(user, payment["id"])

    assert settled["status"] == "succeeded" and settled["completed_at"]
    assert user.get(f"/v1/bill-payments/{payment['id']}").json() == settled
    after = wallet(user)
    assert after["posted"] == after["available"] == held["available"]
    assert after["pending_out"] == "0.00"


def test_a_biller_failure_refunds_the_user_exactly(user, fund):
    fund(user, 500_00)
    payment = paid(user, "sandbox_card", ref("FAIL"), "120.00")
    assert wallet(user)["available"] == "380.00"

    refunded = refresh(user, payment["id"])

    assert refunded["status"] == "refunded" and refunded["failure_code"] == "biller_rejected"
    assert wallet(user)["available"] == wallet(user)["posted"] == "500.00"


def test_a_payment_the_biller_keeps_pending_stays_held_across_refreshes(user, fund):
    fund(user, 100_00)
    payment = paid(user, "sandbox_water", ref("PEND"), "30.00")

    checks = [refresh(user, payment["id"]) for _ in range(3)]

    assert {c["status"] for c in checks} == {"pending"} and checks[-1]["checked_at"]
    assert wallet(user)["available"] == "70.00" and wallet(user)["posted"] == "100.00"


def test_a_lost_answer_is_submitted_again_by_a_refresh_and_paid_once(user, fund):
    fund(user, 100_00)
    payment = paid(user, "sandbox_mobile_prepaid", ref("LOST"), "25.00")
    assert payment["status"] == "pending" and payment["biller_reference"] is None

    settled = refresh(user, payment["id"])
    again = refresh(user, payment["id"])

    assert settled["status"] == "succeeded" and settled["biller_reference"]
    assert again == settled
    assert wallet(user)["available"] == wallet(user)["posted"] == "75.00"


def test_a_direct_payment_to_an_unknown_reference_is_refunded_at_once(user, fund):
    fund(user, 100_00)

    payment = paid(user, "sandbox_mobile_prepaid", ref("NONE"), "15.00")

    assert payment["status"] == "refunded" and payment["failure_code"] == "bill_not_found"
    assert wallet(user)["available"] == wallet(user)["posted"] == "100.00"


def test_each_amount_rule_takes_what_it_should(user, fund):
    fund(user, 2_000_00)
    card, power = ref(), ref()
    card_bill = fetch(user, "sandbox_card", card)

    at_minimum = pay(user, "sandbox_card", card, card_bill["minimum_due"])
    above_total = pay(user, "sandbox_card", card, str(Decimal(card_bill["amount"]) + 1))
    exact = pay(user, "sandbox_power", power, fetch(user, "sandbox_power", power)["amount"])
    any_amount = pay(user, "sandbox_water", ref(), "0.01")
    prepaid = pay(user, "sandbox_mobile_prepaid", "+14155550100", "10.00")

    for response in (at_minimum, above_total, exact, any_amount, prepaid):
        assert response.status_code == 201, response.text
        assert response.json()["status"] == "pending"


def shift(amount: str, cents: int) -> str:
    return str(Decimal(amount) + Decimal(cents) / 100)


# (biller, customer reference, amount from the bill, currency, status, code)
BAD_PAYMENTS = [
    ("sandbox_power", None, lambda bill: "1.001", "USD", 422, "invalid_amount"),
    ("sandbox_power", None, lambda bill: "0", "USD", 422, "invalid_amount"),
    ("sandbox_power", None, lambda bill: "-5.00", "USD", 422, "invalid_amount"),
    ("sandbox_power", None, lambda bill: 5, "USD", 422, "invalid_amount"),
    ("sandbox_power", None, lambda bill: bill["amount"], "XXX", 422, "unknown_asset"),
    ("sandbox_power", None, lambda bill: bill["amount"], "EUR", 422, "currency_not_accepted"),
    ("sandbox_power", None, lambda bill: shift(bill["amount"], -1), "USD", 422,
     "amount_not_allowed"),
    ("sandbox_power", None, lambda bill: shift(bill["amount"], 1), "USD", 422,
     "amount_not_allowed"),
    ("sandbox_card", None, lambda bill: shift(bill["minimum_due"], -1), "USD", 422,
     "amount_not_allowed"),
    ("sandbox_gas", "ACC-1234", lambda bill: "1.00", "USD", 404, "biller_not_found"),
    ("sandbox_power", "NONE-0001", lambda bill: "1.00", "USD", 404, "bill_not_found"),
    ("sandbox_power", "a b", lambda bill: "1.00", "USD", 422, "invalid_customer_reference"),
    ("sandbox_power", None, lambda bill: bill["amount"], None, 422, "validation_error"),
    ("sandbox_water", None, lambda bill: "900.00", "USD", 422, "insufficient_funds"),
]


@pytest.mark.parametrize(("biller_id", "customer", "amount_of", "currency", "status", "code"),
                         BAD_PAYMENTS)
def test_bad_bill_payments_are_problems_and_move_nothing(
    user, fund, biller_id, customer, amount_of, currency, status, code
):
    fund(user, 500_00)
    bill = None
    if customer is None:
        customer = ref()
        bill = fetch(user, biller_id, customer)
    body = {"biller_id": biller_id, "customer_reference": customer,
            "amount": amount_of(bill), "currency": currency}

    response = user.post("/v1/bill-payments", body)

    assert_problem(response, status, code)
    assert wallet(user)["available"] == wallet(user)["posted"] == "500.00"
    assert user.get("/v1/bill-payments", {"status": "pending"}).json()["data"] == []


# Idempotency and concurrency.


def test_a_retried_bill_payment_is_replayed_not_repeated(user, fund):
    fund(user, 100_00)
    customer = ref()

    first = pay(user, "sandbox_water", customer, "10.00", key="pay-water")
    second = pay(user, "sandbox_water", customer, "10.00", key="pay-water")
    other = pay(user, "sandbox_water", customer, "11.00", key="pay-water")

    assert first.status_code == second.status_code == 201
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert second.json()["id"] == first.json()["id"]
    assert_problem(other, 409, "idempotency_key_reused")
    assert wallet(user)["available"] == "90.00"


def test_an_exact_bill_cannot_be_paid_twice(user, fund):
    fund(user, 1_000_00)
    customer = ref()
    paid(user, "sandbox_power", customer)

    again = pay(user, "sandbox_power", customer, fetch(user, "sandbox_power", customer)["amount"])

    assert_problem(again, 409, "bill_already_paid")


def test_bill_payments_need_a_user_token_and_an_idempotency_key(client, user, api):
    body = {"biller_id": "sandbox_water", "customer_reference": ref(), "amount": "1.00",
            "currency": "USD"}
    no_token = client.post("/v1/bill-payments", json=body, headers={"Idempotency-Key": "k"})
    admin = client.post("/v1/bill-payments", json=body, headers=api.headers("k"))
    no_key = client.post("/v1/bill-payments", json=body, headers=user.headers())

    assert_problem(no_token, 401, "unauthorized")
    assert_problem(admin, 401, "unauthorized")
    assert_problem(no_key, 422, "idempotency_key_required")
    assert_problem(client.get("/v1/billers"), 401, "unauthorized")


def test_concurrent_bill_payments_never_overdraw_one_wallet(user, fund):
    fund(user, 100_00)  # room for exactly five payments of 20.00
    statuses: list[int] = []

    def attempt() -> None:
        statuses.append(pay(user, "sandbox_water", ref(), "20.00").status_code)

    threads = [threading.Thread(target=attempt) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [201] * 5 + [422] * 5
    assert wallet(user)["available"] == "0.00"
    pending = user.get("/v1/bill-payments", {"status": "pending"}).json()["data"]
    assert {refresh(user, p["id"])["status"] for p in pending} == {"succeeded"}
    assert wallet(user)["posted"] == "0.00"


def test_concurrent_refreshes_settle_a_payment_once(user, fund):
    fund(user, 100_00)
    payment = paid(user, "sandbox_water", ref(), "40.00")
    results: list[dict] = []

    def attempt() -> None:
        results.append(refresh(user, payment["id"]))

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {(r["status"], r["settlement_transfer_id"]) for r in results} == {
        ("succeeded", results[0]["settlement_transfer_id"])}
    assert wallet(user)["available"] == wallet(user)["posted"] == "60.00"


# Who sees what, and lists.


def test_nobody_else_sees_or_refreshes_a_bill_payment(client, user, fund):
    fund(user, 100_00)
    payment = paid(user, "sandbox_water", ref(), "5.00")
    mallory = signed_up_user(client)

    assert_problem(mallory.get(f"/v1/bill-payments/{payment['id']}"), 404,
                   "bill_payment_not_found")
    assert_problem(mallory.post(f"/v1/bill-payments/{payment['id']}/refresh"), 404,
                   "bill_payment_not_found")
    assert mallory.get("/v1/bill-payments").json()["data"] == []
    assert user.get(f"/v1/bill-payments/{payment['id']}").json()["status"] == "pending"


def test_bill_payments_list_newest_first_with_a_cursor(user, fund):
    fund(user, 100_00)
    ids = [paid(user, "sandbox_water", ref(), f"{n}.00")["id"] for n in (1, 2, 3)]
    refresh(user, ids[0])

    first = user.get("/v1/bill-payments", {"limit": 2}).json()
    rest = user.get("/v1/bill-payments", {"limit": 2, "starting_after": first["next_cursor"]})
    succeeded = user.get("/v1/bill-payments", {"status": "succeeded"}).json()

    assert [p["id"] for p in first["data"]] == ids[::-1][:2] and first["has_more"]
    assert [p["id"] for p in rest.json()["data"]] == ids[:1]
    assert [p["id"] for p in succeeded["data"]] == ids[:1]


def test_the_ledger_check_is_clean_after_the_bill_payment_tests(engine):
    """Runs last in this module: every hold above was posted, voided or left pending
    without breaking an invariant."""
    report = check_ledger(engine)
    assert report.clean, report.to_dict()
