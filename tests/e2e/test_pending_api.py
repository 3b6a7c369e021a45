"""Pending transfers over HTTP: holds, posting in full or in part, voiding, deadlines."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from tests.e2e.conftest import assert_problem, move_body


def hold(api, wallet, shop, amount="50.00", **fields) -> dict:
    response = api.post("/v1/transfers", move_body(wallet["id"], shop["id"], amount,
                                                   pending=True, **fields))
    assert response.status_code == 201, response.text
    return response.json()


def test_a_pending_transfer_reserves_funds_until_its_deadline(api):
    wallet = api.funded_wallet("80.00")
    shop = api.open_account()
    before = datetime.now(UTC)
    pending = hold(api, wallet, shop, timeout_seconds=60)
    assert pending["kind"] == "pending"
    assert pending["pending_status"] == "pending"
    expires_at = datetime.fromisoformat(pending["expires_at"])
    assert before + timedelta(seconds=59) < expires_at < datetime.now(UTC) + timedelta(seconds=61)
    assert {p["layer"] for p in pending["postings"]} == {"pending"}
    balances = api.account(wallet["id"])["balances"]
    assert (balances["balance"], balances["available"], balances["debits_pending"]) == (
        "80.00", "30.00", "50.00"
    )


def test_a_pending_transfer_posted_in_part_releases_the_rest(api):
    wallet = api.funded_wallet("80.00")
    shop = api.open_account()
    pending = hold(api, wallet, shop)
    response = api.post(f"/v1/transfers/{pending['id']}/post",
                        {"amount": "30.00", "currency": "USD", "metadata": {"step": "capture"}})
    assert response.status_code == 200, response.text
    posted = response.json()
    assert posted["kind"] == "post_pending"
    assert posted["pending_id"] == pending["id"]
    assert posted["metadata"] == {"step": "capture"}
    original = api.get(f"/v1/transfers/{pending['id']}").json()
    assert original["pending_status"] == "posted"
    assert original["resolved_by_id"] == posted["id"]
    wallet_balances = api.account(wallet["id"])["balances"]
    assert (wallet_balances["balance"], wallet_balances["available"],
            wallet_balances["debits_pending"]) == ("50.00", "50.00", "0.00")
    assert api.account(shop["id"])["balances"]["balance"] == "30.00"


def test_a_pending_transfer_posted_without_a_body_posts_in_full(api):
    wallet = api.funded_wallet("80.00")
    shop = api.open_account()
    pending = hold(api, wallet, shop)
    response = api.post(f"/v1/transfers/{pending['id']}/post")
    assert response.status_code == 200, response.text
    assert api.account(shop["id"])["balances"]["balance"] == "50.00"
    again = api.post(f"/v1/transfers/{pending['id']}/post")
    assert_problem(again, 409, "pending_transfer_already_resolved")


def test_posting_more_than_is_held_is_refused(api):
    wallet = api.funded_wallet("80.00")
    shop = api.open_account()
    pending = hold(api, wallet, shop)
    response = api.post(f"/v1/transfers/{pending['id']}/post",
                        {"amount": "50.01", "currency": "USD"})
    assert_problem(response, 422, "pending_amount_exceeded")
    assert api.get(f"/v1/transfers/{pending['id']}").json()["pending_status"] == "pending"


def test_posting_an_amount_in_another_currency_is_refused(api):
    wallet = api.funded_wallet("80.00")
    shop = api.open_account()
    pending = hold(api, wallet, shop)
    response = api.post(f"/v1/transfers/{pending['id']}/post",
                        {"amount": "10", "currency": "JPY"})
    assert_problem(response, 422, "asset_mismatch")
    assert api.get(f"/v1/transfers/{pending['id']}").json()["pending_status"] == "pending"


def test_posting_malformed_amounts_is_refused(api):
    wallet = api.funded_wallet("80.00")
    shop = api.open_account()
    pending = hold(api, wallet, shop)
    path = f"/v1/transfers/{pending['id']}/post"
    assert_problem(api.post(path, {"amount": "10.00"}), 422, "validation_error")
    assert_problem(api.post(path, {"amount": 10.0, "currency": "USD"}), 422, "invalid_amount")
    assert_problem(api.post(path, {"amount": "0.001", "currency": "USD"}), 422, "invalid_amount")
    assert_problem(api.post(path, {"amount": "0", "currency": "USD"}), 422, "invalid_amount")
    assert api.get(f"/v1/transfers/{pending['id']}").json()["pending_status"] == "pending"


def test_a_voided_pending_transfer_releases_its_hold(api):
    wallet = api.funded_wallet("80.00")
    shop = api.open_account()
    pending = hold(api, wallet, shop)
    response = api.post(f"/v1/transfers/{pending['id']}/void", {"metadata": {"why": "cancel"}})
    assert response.status_code == 200, response.text
    void = response.json()
    assert void["kind"] == "void_pending" and void["pending_id"] == pending["id"]
    assert api.get(f"/v1/transfers/{pending['id']}").json()["pending_status"] == "voided"
    assert api.account(wallet["id"])["balances"]["available"] == "80.00"
    assert api.account(shop["id"])["balances"]["balance"] == "0.00"
    assert_problem(api.post(f"/v1/transfers/{pending['id']}/void"), 409,
                   "pending_transfer_already_resolved")
    assert_problem(api.post(f"/v1/transfers/{pending['id']}/post"), 409,
                   "pending_transfer_already_resolved")


def test_resolving_a_transfer_that_is_not_pending_is_a_conflict(api):
    wallet = api.funded_wallet("80.00")
    shop = api.open_account()
    posted = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="1.00").json()
    assert_problem(api.post(f"/v1/transfers/{posted['id']}/void"), 409, "transfer_not_pending")
    assert_problem(api.post(f"/v1/transfers/{posted['id']}/post"), 409, "transfer_not_pending")


def test_resolving_an_unknown_transfer_is_not_found(api):
    for action in ("post", "void"):
        response = api.post(f"/v1/transfers/{uuid.uuid4()}/{action}")
        assert_problem(response, 404, "transfer_not_found")
    partial = api.post(f"/v1/transfers/{uuid.uuid4()}/post", {"amount": "1", "currency": "USD"})
    assert_problem(partial, 404, "transfer_not_found")


def test_a_pending_transfer_cannot_be_reversed(api):
    wallet = api.funded_wallet("80.00")
    shop = api.open_account()
    pending = hold(api, wallet, shop)
    assert_problem(api.post(f"/v1/transfers/{pending['id']}/reverse"), 422,
                   "transfer_not_reversible")


def test_deadlines_that_cannot_hold_are_refused(api):
    wallet = api.funded_wallet("80.00")
    shop = api.open_account()
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    body = move_body(wallet["id"], shop["id"], "1.00", pending=True, expires_at=past)
    assert_problem(api.post("/v1/transfers", body), 422, "invalid_expiry")
    naive = datetime.now().replace(tzinfo=None) + timedelta(hours=1)
    body = move_body(wallet["id"], shop["id"], "1.00", pending=True, expires_at=naive.isoformat())
    assert_problem(api.post("/v1/transfers", body), 422, "validation_error")
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    both = move_body(wallet["id"], shop["id"], "1.00", pending=True, expires_at=future,
                     timeout_seconds=60)
    assert_problem(api.post("/v1/transfers", both), 422, "validation_error")
    not_pending = move_body(wallet["id"], shop["id"], "1.00", timeout_seconds=60)
    assert_problem(api.post("/v1/transfers", not_pending), 422, "invalid_expiry")
    for timeout in (0, 10**12, 1.5):
        body = move_body(wallet["id"], shop["id"], "1.00", pending=True, timeout_seconds=timeout)
        assert_problem(api.post("/v1/transfers", body), 422, "validation_error")
    assert api.account(shop["id"])["posting_count"] == 0
