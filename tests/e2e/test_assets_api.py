"""/v1/assets."""

from __future__ import annotations

import uuid

from tests.e2e.conftest import assert_problem


def new_asset_code() -> str:
    return "T" + uuid.uuid4().hex[:9].upper()


def test_the_default_assets_are_listed_with_their_scales(api):
    response = api.get("/v1/assets")
    assert response.status_code == 200
    page = response.json()
    scales = {asset["code"]: asset["scale"] for asset in page["data"]}
    assert {"USD": 2, "EUR": 2, "INR": 2, "CNY": 2, "JPY": 0, "BTC": 8, "ETH": 18}.items() <= (
        scales.items()
    )
    assert page["has_more"] is False and page["next_cursor"] is None


def test_a_new_asset_is_usable_at_once_with_its_own_scale(api):
    code = new_asset_code()
    created = api.post("/v1/assets", {"code": code, "scale": 3})
    assert created.status_code == 201
    assert created.json() == {"code": code, "scale": 3}
    assert {"code": code, "scale": 3} in api.get("/v1/assets").json()["data"]
    wallet = api.funded_wallet("1.234", currency=code)
    assert wallet["balances"]["balance"] == "1.234"


def test_an_existing_asset_code_is_a_conflict(api):
    code = new_asset_code()
    assert api.post("/v1/assets", {"code": code, "scale": 2}).status_code == 201
    assert_problem(api.post("/v1/assets", {"code": code, "scale": 4}), 409, "asset_already_exists")
    assert {"code": code, "scale": 2} in api.get("/v1/assets").json()["data"]


def test_a_malformed_asset_is_refused(api):
    assert_problem(api.post("/v1/assets", {"code": "lower", "scale": 2}), 422, "invalid_asset")
    assert_problem(api.post("/v1/assets", {"code": new_asset_code(), "scale": 19}), 422,
                   "invalid_asset")
    problem = assert_problem(
        api.post("/v1/assets", {"code": new_asset_code(), "scale": "2"}), 422, "validation_error"
    )
    assert problem["errors"][0]["loc"] == ["body", "scale"]
