"""/v1/accounts: opening, reading, listing, status changes, balances and postings."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from tests.e2e.conftest import assert_problem


def test_an_opened_account_reads_back_with_zero_balances(api, tag):
    response = api.post("/v1/accounts", {
        "asset": "USD", "normal_side": "credit",
        "flags": {"debits_must_not_exceed_credits": True},
        "metadata": {"tag": tag, "owner": "ada"},
    })
    assert response.status_code == 201
    account = response.json()
    uuid.UUID(account["id"])
    assert account["asset"] == "USD"
    assert account["normal_side"] == "credit"
    assert account["status"] == "open"
    assert account["flags"] == {
        "debits_must_not_exceed_credits": True, "credits_must_not_exceed_debits": False
    }
    assert account["limit"] is None
    assert account["metadata"] == {"tag": tag, "owner": "ada"}
    assert account["posting_count"] == 0
    assert set(account["balances"].values()) == {"0.00"}
    assert api.account(account["id"]) == account


def test_an_account_limit_is_given_and_returned_in_major_units(api):
    account = api.open_account(limit="50.00")
    assert account["limit"] == "50.00"
    shop = api.open_account()
    overdraft = api.move(debit_id=account["id"], credit_id=shop["id"], amount="50.00")
    assert overdraft.status_code == 201, overdraft.text
    assert api.account(account["id"])["balances"]["balance"] == "-50.00"
    beyond = api.move(debit_id=account["id"], credit_id=shop["id"], amount="0.01")
    assert_problem(beyond, 422, "insufficient_funds")


def test_a_limit_with_more_digits_than_the_scale_is_an_invalid_amount(api, tag):
    response = api.post("/v1/accounts", {
        "asset": "USD", "normal_side": "credit", "limit": "1.005", "metadata": {"tag": tag},
        "flags": {"debits_must_not_exceed_credits": True},
    })
    assert_problem(response, 422, "invalid_amount")
    assert api.get("/v1/accounts", {"metadata[tag]": tag}).json()["data"] == []


def test_a_limit_without_a_balance_flag_is_refused(api):
    response = api.post("/v1/accounts", {"asset": "USD", "normal_side": "credit", "limit": "5"})
    assert_problem(response, 422, "invalid_account_options")


def test_an_account_in_an_unknown_asset_is_refused(api):
    response = api.post("/v1/accounts", {"asset": "XXQ", "normal_side": "credit"})
    assert_problem(response, 422, "unknown_asset")


def test_a_malformed_account_request_lists_each_field_error(api):
    response = api.post("/v1/accounts", {"asset": "USD", "normal_side": "sideways",
                                         "colour": "red"})
    problem = assert_problem(response, 422, "validation_error")
    locations = {tuple(error["loc"]) for error in problem["errors"]}
    assert locations == {("body", "normal_side"), ("body", "colour")}
    assert all(error["msg"] and error["type"] for error in problem["errors"])


def test_an_unknown_account_is_not_found(api):
    assert_problem(api.get(f"/v1/accounts/{uuid.uuid4()}"), 404, "account_not_found")


def test_a_malformed_account_id_is_a_validation_error(api):
    for path in ("/v1/accounts/not-a-uuid", "/v1/accounts/1234/balances"):
        assert_problem(api.get(path), 422, "validation_error")
    assert_problem(api.post("/v1/accounts/nope/freeze"), 422, "validation_error")


def test_accounts_list_in_pages_filtered_by_metadata(api, tag):
    opened = [api.open_account(metadata={"tag": tag, "n": str(n)})["id"] for n in range(5)]
    seen, cursor, pages = [], None, []
    while True:
        params = {"metadata[tag]": tag, "limit": 2}
        if cursor:
            params["starting_after"] = cursor
        page = api.get("/v1/accounts", params).json()
        pages.append((len(page["data"]), page["has_more"]))
        seen += [account["id"] for account in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            assert cursor is None
            break
    assert pages == [(2, True), (2, True), (1, False)]
    assert seen == sorted(opened)
    only_third = api.get("/v1/accounts", {"metadata[tag]": tag, "metadata[n]": "2"}).json()
    assert [a["id"] for a in only_third["data"]] == [opened[2]]


def test_accounts_list_filtered_by_asset(api, tag):
    api.open_account("USD", metadata={"tag": tag})
    yen = api.open_account("JPY", metadata={"tag": tag})
    page = api.get("/v1/accounts", {"metadata[tag]": tag, "asset": "JPY"}).json()
    assert [a["id"] for a in page["data"]] == [yen["id"]]


def test_list_parameters_out_of_range_are_validation_errors(api):
    assert_problem(api.get("/v1/accounts", {"limit": 0}), 422, "validation_error")
    assert_problem(api.get("/v1/accounts", {"limit": 201}), 422, "validation_error")
    assert_problem(api.get("/v1/accounts", {"starting_after": "x"}), 422, "validation_error")
    assert_problem(
        api.get("/v1/accounts", [("metadata[a]", "1"), ("metadata[a]", "2")]),
        422, "validation_error",
    )


def test_a_frozen_account_takes_no_transfers_until_unfrozen(api):
    wallet = api.funded_wallet("10.00")
    shop = api.open_account()
    frozen = api.post(f"/v1/accounts/{wallet['id']}/freeze")
    assert frozen.status_code == 200
    assert frozen.json()["status"] == "frozen"
    refused = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="1.00")
    assert_problem(refused, 422, "account_frozen")
    assert api.account(wallet["id"])["balances"]["balance"] == "10.00"
    assert_problem(api.post(f"/v1/accounts/{wallet['id']}/freeze"), 409, "invalid_account_state")
    unfrozen = api.post(f"/v1/accounts/{wallet['id']}/unfreeze")
    assert unfrozen.json()["status"] == "open"
    assert api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="1.00").status_code == 201
    assert_problem(api.post(f"/v1/accounts/{wallet['id']}/unfreeze"), 409,
                   "invalid_account_state")


def test_only_an_account_with_zero_balance_closes_and_then_takes_nothing(api):
    wallet = api.funded_wallet("3.00")
    assert_problem(api.post(f"/v1/accounts/{wallet['id']}/close"), 422,
                   "account_balance_not_zero")
    empty = api.open_account()
    closed = api.post(f"/v1/accounts/{empty['id']}/close")
    assert closed.status_code == 200
    assert closed.json()["status"] == "closed"
    refused = api.move(debit_id=wallet["id"], credit_id=empty["id"], amount="1.00")
    assert_problem(refused, 422, "account_closed")
    assert api.account(wallet["id"])["balances"]["balance"] == "3.00"


def test_status_changes_on_an_unknown_account_are_not_found(api):
    for action in ("freeze", "unfreeze", "close"):
        response = api.post(f"/v1/accounts/{uuid.uuid4()}/{action}")
        assert_problem(response, 404, "account_not_found")


def test_balances_show_posted_pending_and_available(api):
    wallet = api.funded_wallet("100.00")
    shop = api.open_account()
    hold = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="30.00", pending=True)
    assert hold.status_code == 201
    response = api.get(f"/v1/accounts/{wallet['id']}/balances")
    assert response.status_code == 200
    assert response.json() == {
        "account_id": wallet["id"], "asset": "USD", "at": None,
        "debits_posted": "0.00", "credits_posted": "100.00",
        "debits_pending": "30.00", "credits_pending": "0.00",
        "balance": "100.00", "available": "70.00",
    }


def test_a_balance_can_be_negative(api):
    account = api.open_account(no_overdraft=False)
    other = api.open_account()
    assert api.move(debit_id=account["id"], credit_id=other["id"], amount="3.00").status_code == 201
    balances = api.get(f"/v1/accounts/{account['id']}/balances").json()
    assert balances["balance"] == "-3.00"
    assert balances["available"] == "-3.00"


def test_balances_at_a_past_instant(api):
    wallet = api.funded_wallet("10.00")
    shop = api.open_account()
    first = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="4.00").json()
    api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="1.00")
    after_first = datetime.fromisoformat(first["created_at"])

    def balance_at(instant: datetime) -> str:
        response = api.get(f"/v1/accounts/{shop['id']}/balances", {"at": instant.isoformat()})
        assert response.status_code == 200, response.text
        assert datetime.fromisoformat(response.json()["at"]) == instant
        return response.json()["balance"]

    assert balance_at(after_first - timedelta(microseconds=1)) == "0.00"
    assert balance_at(after_first) == "4.00"
    assert api.get(f"/v1/accounts/{shop['id']}/balances").json()["balance"] == "5.00"


def test_balances_at_an_instant_without_a_time_zone_are_refused(api):
    account = api.open_account()
    response = api.get(f"/v1/accounts/{account['id']}/balances", {"at": "2024-01-01T00:00:00"})
    assert_problem(response, 422, "validation_error")


def test_balances_of_an_unknown_account_are_not_found(api):
    response = api.get(f"/v1/accounts/{uuid.uuid4()}/balances", {"at": "2024-01-01T00:00:00Z"})
    assert_problem(response, 404, "account_not_found")


def test_postings_list_in_pages_with_the_running_balance_after_each(api):
    wallet = api.funded_wallet("10.00")
    shop = api.open_account()
    api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="2.50")
    api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="0.25")
    first = api.get(f"/v1/accounts/{wallet['id']}/postings", {"limit": 2}).json()
    assert first["has_more"] is True and first["next_cursor"] == "2"
    rest = api.get(f"/v1/accounts/{wallet['id']}/postings",
                   {"limit": 2, "starting_after": first["next_cursor"]}).json()
    assert rest["has_more"] is False and rest["next_cursor"] is None
    postings = first["data"] + rest["data"]
    assert [p["account_seq"] for p in postings] == [1, 2, 3]
    assert [(p["direction"], p["amount"]) for p in postings] == [
        ("credit", "10.00"), ("debit", "2.50"), ("debit", "0.25")
    ]
    assert [p["balances_after"]["balance"] for p in postings] == ["10.00", "7.50", "7.25"]
    assert all(p["layer"] == "posted" and p["asset"] == "USD" for p in postings)


def test_a_released_hold_shows_as_a_negative_pending_posting(api):
    wallet = api.funded_wallet("10.00")
    shop = api.open_account()
    hold = api.move(debit_id=wallet["id"], credit_id=shop["id"], amount="6.00", pending=True)
    assert api.post(f"/v1/transfers/{hold.json()['id']}/void").status_code == 200
    postings = api.get(f"/v1/accounts/{wallet['id']}/postings").json()["data"]
    assert [(p["layer"], p["amount"], p["balances_after"]["available"]) for p in postings] == [
        ("posted", "10.00", "10.00"), ("pending", "6.00", "4.00"), ("pending", "-6.00", "10.00")
    ]


def test_postings_of_an_unknown_account_are_not_found(api):
    assert_problem(api.get(f"/v1/accounts/{uuid.uuid4()}/postings"), 404, "account_not_found")
