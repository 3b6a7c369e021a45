"""The Idempotency-Key header: required on writes, replays marked, reuse refused."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.conftest import assert_problem, move_body


def test_a_write_without_an_idempotency_key_is_refused_and_changes_nothing(api, client, tag):
    response = client.post(
        "/v1/accounts",
        json={"asset": "USD", "normal_side": "credit", "metadata": {"tag": tag}},
        headers=api.headers(),
    )
    assert_problem(response, 422, "idempotency_key_required")
    assert api.get("/v1/accounts", {"metadata[tag]": tag}).json()["data"] == []


def test_an_empty_idempotency_key_counts_as_missing(api):
    response = api.post("/v1/accounts", {"asset": "USD", "normal_side": "credit"}, key="")
    assert_problem(response, 422, "idempotency_key_required")


def test_an_idempotency_key_longer_than_255_characters_is_refused(api):
    long_key = "k" * 256
    response = api.post("/v1/accounts", {"asset": "USD", "normal_side": "credit"}, key=long_key)
    assert_problem(response, 422, "invalid_idempotency_key")
    ok = api.post("/v1/accounts", {"asset": "USD", "normal_side": "credit"}, key="k" * 255)
    assert ok.status_code == 201


def test_replay_with_same_key_returns_the_first_account_marked_as_replayed(api, tag):
    key = uuid.uuid4().hex
    body = {"asset": "USD", "normal_side": "credit", "metadata": {"tag": tag}}
    first = api.post("/v1/accounts", body, key=key)
    again = api.post("/v1/accounts", body, key=key)
    assert first.status_code == again.status_code == 201
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len(api.get("/v1/accounts", {"metadata[tag]": tag}).json()["data"]) == 1


def test_replay_with_same_key_moves_money_once(api):
    wallet = api.funded_wallet("20.00")
    shop = api.open_account()
    key = uuid.uuid4().hex
    first = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="5.00", key=key)
    again = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="5.00", key=key)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert api.account(wallet["id"])["balances"]["balance"] == "15.00"
    assert api.account(shop["id"])["balances"]["balance"] == "5.00"


def test_same_key_with_a_different_request_is_a_conflict_and_changes_nothing(api):
    wallet = api.funded_wallet("20.00")
    shop = api.open_account()
    key = uuid.uuid4().hex
    assert api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="5.00",
                    key=key).status_code == 201
    reused = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="6.00", key=key)
    assert_problem(reused, 409, "idempotency_key_reused")
    assert api.account(wallet["id"])["balances"]["balance"] == "15.00"


def test_a_rejected_write_does_not_use_up_its_key(api):
    wallet = api.funded_wallet("5.00")
    shop = api.open_account()
    key = uuid.uuid4().hex
    refused = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="8.00", key=key)
    assert_problem(refused, 422, "insufficient_funds")
    bank = api.open_account(normal_side="debit", no_overdraft=False)
    api.move(debit_id=bank["id"], credit_id=wallet["id"], amount="5.00")
    accepted = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="8.00", key=key)
    assert accepted.status_code == 201
    assert "idempotent-replayed" not in accepted.headers


def test_a_retried_pending_transfer_with_a_timeout_replays(api):
    wallet = api.funded_wallet("10.00")
    shop = api.open_account()
    key = uuid.uuid4().hex
    body = move_body(wallet["id"], shop["id"], "4.00", pending=True, timeout_seconds=600)
    first = api.post("/v1/transfers", body, key=key)
    again = api.post("/v1/transfers", body, key=key)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert api.account(wallet["id"])["balances"]["available"] == "6.00"


def test_concurrent_requests_with_one_key_post_once(api):
    wallet = api.funded_wallet("50.00")
    shop = api.open_account()
    key = uuid.uuid4().hex
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(
            lambda _: api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="7.00",
                               key=key),
            range(8),
        ))
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum("idempotent-replayed" not in r.headers for r in responses) == 1
    assert api.account(shop["id"])["balances"]["balance"] == "7.00"
