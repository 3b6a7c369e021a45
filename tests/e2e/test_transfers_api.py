"""/v1/transfers: posting, refusals that change nothing, reading, listing, batches, reversals."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta

import pytest

from tests.e2e.conftest import assert_problem, move_body


def test_a_transfer_moves_money_and_reads_back(api, tag):
    wallet = api.funded_wallet("20.00")
    shop = api.open_account()
    response = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="10.50",
                        metadata={"order": tag})
    assert response.status_code == 201
    transfer = response.json()
    assert transfer["kind"] == "posted"
    assert transfer["metadata"] == {"order": tag}
    assert [(p["account_id"], p["direction"], p["layer"], p["amount"], p["currency"])
            for p in transfer["postings"]] == [
        (wallet["id"], "debit", "posted", "10.50", "USD"),
        (shop["id"], "credit", "posted", "10.50", "USD"),
    ]
    assert api.account(wallet["id"])["balances"]["balance"] == "9.50"
    assert api.account(shop["id"])["balances"]["balance"] == "10.50"
    fetched = api.get(f"/v1/transfers/{transfer['id']}")
    assert fetched.status_code == 200
    assert fetched.json() == transfer


REFUSED_AMOUNTS = [
    pytest.param(10.5, "invalid_amount", id="json-float"),
    pytest.param(10, "invalid_amount", id="json-integer"),
    pytest.param("1.005", "invalid_amount", id="more-digits-than-scale"),
    pytest.param("0.00", "invalid_amount", id="zero"),
    pytest.param("-1.00", "invalid_amount", id="negative"),
    pytest.param("1e3", "invalid_amount", id="exponent"),
    pytest.param(" 1.00", "invalid_amount", id="whitespace"),
    pytest.param("١٠", "invalid_amount", id="non-ascii-digits"),
    pytest.param("9" * 5000, "invalid_amount", id="absurdly-long"),
    pytest.param("9" * 40, "invalid_amount", id="beyond-128-bits"),
]


@pytest.mark.parametrize(("amount", "code"), REFUSED_AMOUNTS)
def test_a_malformed_amount_is_refused_and_changes_nothing(api, amount, code):
    wallet = api.funded_wallet("20.00")
    shop = api.open_account()
    response = api.post("/v1/transfers", move_body(wallet["id"], shop["id"], amount))
    problem = assert_problem(response, 422, code)
    assert "Traceback" not in response.text
    assert problem["detail"]
    assert api.account(wallet["id"])["posting_count"] == 1
    assert api.account(shop["id"])["posting_count"] == 0


def test_an_unknown_currency_is_refused(api):
    wallet = api.funded_wallet("20.00")
    shop = api.open_account()
    response = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="1.00",
                        currency="XXQ")
    assert_problem(response, 422, "unknown_asset")
    assert api.account(shop["id"])["posting_count"] == 0


def test_a_leg_in_another_currency_than_its_account_is_refused(api):
    wallet = api.funded_wallet("20.00")
    shop = api.open_account()
    response = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="1.00",
                        currency="EUR")
    assert_problem(response, 422, "asset_mismatch")
    assert api.account(shop["id"])["posting_count"] == 0


def test_an_unbalanced_transfer_is_refused(api):
    wallet = api.funded_wallet("20.00")
    shop = api.open_account()
    body = move_body(wallet["id"], shop["id"], "1.00")
    body["legs"][1]["amount"] = "0.99"
    assert_problem(api.post("/v1/transfers", body), 422, "unbalanced_transfer")
    assert api.account(wallet["id"])["balances"]["balance"] == "20.00"


def test_a_transfer_beyond_the_available_funds_is_refused(api):
    wallet = api.funded_wallet("20.00")
    shop = api.open_account()
    response = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="20.01")
    problem = assert_problem(response, 422, "insufficient_funds")
    assert wallet["id"] in problem["detail"]
    assert api.account(wallet["id"])["balances"]["balance"] == "20.00"


def test_a_transfer_with_one_leg_is_refused(api):
    wallet = api.funded_wallet("20.00")
    body = move_body(wallet["id"], wallet["id"], "1.00")
    body["legs"] = body["legs"][:1]
    assert_problem(api.post("/v1/transfers", body), 422, "too_few_legs")


def test_a_transfer_naming_an_unknown_account_is_not_found(api):
    wallet = api.funded_wallet("20.00")
    response = api.move(debit_id=wallet["id"], credit_id=str(uuid.uuid4()), amount="1.00")
    assert_problem(response, 404, "account_not_found")
    assert api.account(wallet["id"])["balances"]["balance"] == "20.00"


def test_a_transfer_with_a_malformed_body_is_a_validation_error(api):
    wallet = api.funded_wallet("20.00")
    body = move_body(wallet["id"], "not-a-uuid", "1.00")
    body["legs"][0]["direction"] = "up"
    problem = assert_problem(api.post("/v1/transfers", body), 422, "validation_error")
    assert {tuple(e["loc"]) for e in problem["errors"]} == {
        ("body", "legs", 0, "direction"), ("body", "legs", 1, "account_id")
    }
    not_json = api.client.post(
        "/v1/transfers", content=b"{not json", headers={
            **api.headers(uuid.uuid4().hex), "Content-Type": "application/json"},
    )
    assert_problem(not_json, 422, "validation_error")


def test_metadata_that_is_not_plain_json_is_refused(api):
    wallet = api.funded_wallet("20.00")
    shop = api.open_account()
    # json.dumps writes NaN by default, as some clients do; it is not JSON.
    body = json.dumps(move_body(wallet["id"], shop["id"], "1.00", metadata={"x": float("nan")}))
    response = api.client.post(
        "/v1/transfers",
        content=body.encode(),
        headers={**api.headers(uuid.uuid4().hex), "Content-Type": "application/json"},
    )
    assert_problem(response, 422, "invalid_metadata")
    assert api.account(shop["id"])["posting_count"] == 0


def test_amounts_follow_each_assets_scale(api):
    yen = api.funded_wallet("1500", currency="JPY")
    assert yen["balances"]["balance"] == "1500"
    yen_shop = api.open_account("JPY")
    assert_problem(api.move(debit_id=yen["id"], credit_id=yen_shop["id"], amount="1.5",
                            currency="JPY"), 422, "invalid_amount")
    eth = api.funded_wallet("0.000000000000000001", currency="ETH")
    assert eth["balances"]["balance"] == "0.000000000000000001"
    big = api.funded_wallet("123456789012345678901.123456789012345678", currency="ETH")
    assert big["balances"]["balance"] == "123456789012345678901.123456789012345678"


def test_an_unknown_transfer_is_not_found(api):
    assert_problem(api.get(f"/v1/transfers/{uuid.uuid4()}"), 404, "transfer_not_found")
    assert_problem(api.get("/v1/transfers/xyz"), 422, "validation_error")


def test_transfers_list_by_account_in_pages(api):
    wallet = api.funded_wallet("10.00")
    shop = api.open_account()
    made = [api.move(debit_id=wallet["id"], credit_id=shop["id"], amount=f"1.0{n}").json()["id"]
            for n in range(3)]
    first = api.get("/v1/transfers", {"account_id": shop["id"], "limit": 2}).json()
    assert first["has_more"] is True
    assert first["next_cursor"] == made[1]
    rest = api.get("/v1/transfers", {"account_id": shop["id"], "limit": 2,
                                     "starting_after": first["next_cursor"]}).json()
    assert rest["has_more"] is False and rest["next_cursor"] is None
    assert [t["id"] for t in first["data"] + rest["data"]] == made


def test_transfers_list_by_metadata_and_creation_time(api, tag):
    wallet = api.funded_wallet("10.00")
    shop = api.open_account()
    early = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="1.00",
                     metadata={"batch": tag, "n": 1}).json()
    late = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="2.00",
                    metadata={"batch": tag}).json()
    by_tag = api.get("/v1/transfers", {"metadata[batch]": tag}).json()["data"]
    assert [t["id"] for t in by_tag] == [early["id"], late["id"]]
    late_at = datetime.fromisoformat(late["created_at"])
    before = api.get("/v1/transfers", {"metadata[batch]": tag,
                                       "created_before": late_at.isoformat()}).json()["data"]
    assert [t["id"] for t in before] == [early["id"]]
    since = api.get("/v1/transfers", {"metadata[batch]": tag,
                                      "created_from": late_at.isoformat()}).json()["data"]
    assert [t["id"] for t in since] == [late["id"]]
    window = api.get("/v1/transfers", {
        "account_id": shop["id"],
        "created_from": (late_at + timedelta(seconds=1)).isoformat(),
    }).json()["data"]
    assert window == []


def test_a_linked_batch_commits_together(api):
    wallet = api.funded_wallet("10.00")
    shop, fees = api.open_account(), api.open_account()
    response = api.post("/v1/transfers/batch", {"transfers": [
        move_body(wallet["id"], shop["id"], "9.00"),
        move_body(wallet["id"], fees["id"], "1.00", metadata={"kind": "fee"}),
    ]})
    assert response.status_code == 201, response.text
    transfers = response.json()["transfers"]
    assert len(transfers) == 2
    assert transfers[0]["batch_id"] and transfers[0]["batch_id"] == transfers[1]["batch_id"]
    assert transfers[1]["metadata"] == {"kind": "fee"}
    assert api.account(wallet["id"])["balances"]["balance"] == "0.00"
    assert api.account(fees["id"])["balances"]["balance"] == "1.00"


def test_a_linked_batch_with_one_failing_transfer_changes_nothing(api):
    wallet = api.funded_wallet("10.00")
    shop, fees = api.open_account(), api.open_account()
    response = api.post("/v1/transfers/batch", {"transfers": [
        move_body(wallet["id"], shop["id"], "9.00"),
        move_body(wallet["id"], fees["id"], "1.01"),
    ]})
    assert_problem(response, 422, "insufficient_funds")
    assert api.account(wallet["id"])["balances"]["balance"] == "10.00"
    assert api.account(shop["id"])["posting_count"] == 0
    assert api.get("/v1/transfers", {"account_id": shop["id"]}).json()["data"] == []


def test_a_linked_batch_with_one_malformed_amount_changes_nothing(api):
    wallet = api.funded_wallet("10.00")
    shop = api.open_account()
    response = api.post("/v1/transfers/batch", {"transfers": [
        move_body(wallet["id"], shop["id"], "1.00"),
        move_body(wallet["id"], shop["id"], "0.001"),
    ]})
    assert_problem(response, 422, "invalid_amount")
    assert api.account(shop["id"])["posting_count"] == 0


def test_an_empty_batch_is_a_validation_error(api):
    assert_problem(api.post("/v1/transfers/batch", {"transfers": []}), 422, "validation_error")


def test_a_reversal_undoes_a_posted_transfer_once(api):
    wallet = api.funded_wallet("10.00")
    shop = api.open_account()
    original = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="4.00").json()
    response = api.post(f"/v1/transfers/{original['id']}/reverse", {"metadata": {"why": "dup"}})
    assert response.status_code == 200, response.text
    reversal = response.json()
    assert reversal["kind"] == "reversal"
    assert reversal["reverses_id"] == original["id"]
    assert reversal["metadata"] == {"why": "dup"}
    assert [(p["account_id"], p["direction"], p["amount"]) for p in reversal["postings"]] == [
        (wallet["id"], "credit", "4.00"), (shop["id"], "debit", "4.00")
    ]
    assert api.get(f"/v1/transfers/{original['id']}").json()["reversed_by_id"] == reversal["id"]
    assert api.account(wallet["id"])["balances"]["balance"] == "10.00"
    assert api.account(shop["id"])["balances"]["balance"] == "0.00"
    again = api.post(f"/v1/transfers/{original['id']}/reverse")
    assert_problem(again, 409, "transfer_already_reversed")


def test_a_reversal_the_payee_cannot_fund_is_refused(api):
    wallet = api.funded_wallet("10.00")
    shop = api.open_account()
    original = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="4.00").json()
    elsewhere = api.open_account()
    api.move(debit_id=shop["id"], credit_id=elsewhere["id"], amount="4.00")
    response = api.post(f"/v1/transfers/{original['id']}/reverse")
    assert_problem(response, 422, "insufficient_funds")
    assert api.get(f"/v1/transfers/{original['id']}").json()["reversed_by_id"] is None


def test_reversing_an_unknown_transfer_is_not_found(api):
    assert_problem(api.post(f"/v1/transfers/{uuid.uuid4()}/reverse"), 404, "transfer_not_found")
