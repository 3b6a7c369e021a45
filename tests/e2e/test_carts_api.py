"""End-to-end: carts through HTTP — guests and users, versions, save for later, merges,
coupons, promotions, tax, shipping, reseller shops, and the error cases."""

from __future__ import annotations

import uuid

from tests.e2e.commerce_helpers import (
    CART_TOKEN,
    Shopper,
    guest,
    new_currency,
    product,
    reseller,
    supplier,
    variant_id,
)
from tests.e2e.conftest import PASSWORD, UserApi, assert_problem, log_in, signed_up_user


def shopper(client) -> Shopper:
    return Shopper(client, user=signed_up_user(client))


def items_path(cart: dict, line: str | None = None) -> str:
    path = f"/v1/carts/{cart['id']}/items"
    return path if line is None else f"{path}/{line}"


def test_a_guest_fills_a_cart_and_sees_names_prices_and_availability(api, client):
    made = product(supplier(api), price="12.50", stock=5, image_urls=["https://img.example/a"])
    visitor = guest(client)
    cart = visitor.add(variant_id(made), 2)
    (line,) = cart["items"]
    assert (line["name"], line["sku"], line["size"], line["colour"]) == (
        "Linen shirt", "SKU-1", "M", "Blue")
    assert line["unit_price"] == {"amount": "12.50", "currency": "USD"}
    assert line["available"] is True and line["stock_available"] == 5
    assert line["image_url"] == "https://img.example/a"
    assert line["total"]["amount"] == "25.00"
    assert cart["totals"] == {"subtotal": "25.00", "discount": "0.00", "tax": "0.00",
                              "shipping": "0.00", "total": "25.00", "currency": "USD"}
    assert cart["user_id"] is None and cart["currency"] == "USD"
    assert visitor.cart()["id"] == cart["id"]


def test_a_users_cart_persists_across_sessions_and_devices(api, client):
    made = product(supplier(api))
    phone = shopper(client)
    cart = phone.add(variant_id(made), 1)
    session = log_in(client, email=phone.user.email)
    assert session.status_code == 201
    second_session = UserApi(client, phone.user.user, session.json()["token"],
                             email=phone.user.email, password=phone.user.password)
    assert second_session.token != phone.user.token
    laptop = Shopper(client, user=second_session)
    again = laptop.cart()
    assert again["id"] == cart["id"]
    assert [line["quantity"] for line in again["items"]] == [1]
    assert laptop.get(f"/v1/carts/{cart['id']}").json()["version"] == cart["version"]


def test_changing_quantities_saving_for_later_and_removing(api, client):
    made = product(supplier(api), price="3.00", stock=10)
    other = product(supplier(api), price="1.00", stock=10)
    me = shopper(client)
    me.add(variant_id(made), 1)
    cart = me.add(variant_id(other), 2)
    first, second = (line["id"] for line in cart["items"])
    changed = me.patch(items_path(cart, first), {"quantity": 4, "version": cart["version"]})
    assert changed.status_code == 200, changed.text
    cart = changed.json()
    assert cart["totals"]["total"] == "14.00"
    saved = me.patch(items_path(cart, second), {"saved_for_later": True,
                                                "version": cart["version"]}).json()
    assert [line["id"] for line in saved["saved_for_later"]] == [second]
    assert saved["saved_for_later"][0]["total"] is None
    assert saved["totals"]["total"] == "12.00"
    back = me.patch(items_path(saved, second), {"saved_for_later": False,
                                                "version": saved["version"]}).json()
    assert back["totals"]["total"] == "14.00"
    removed = me.delete(items_path(back, first), version=back["version"])
    assert removed.status_code == 200, removed.text
    assert [line["id"] for line in removed.json()["items"]] == [second]


def test_bad_cart_edits_are_refused_and_change_nothing(api, client):
    maker = supplier(api)
    made = product(maker, stock=3)
    me = shopper(client)
    cart = me.add(variant_id(made), 2)
    line = cart["items"][0]["id"]
    assert_problem(me.post(items_path(cart), {"variant_id": variant_id(made), "quantity": 0}),
                   422, "validation_error")
    assert_problem(me.post(items_path(cart), {"variant_id": variant_id(made), "quantity": 2}),
                   422, "out_of_stock")
    assert_problem(me.post(items_path(cart), {"variant_id": str(uuid.uuid4()), "quantity": 1}),
                   404, "variant_not_found")
    assert_problem(me.patch(items_path(cart, line), {"quantity": 4, "version": cart["version"]}),
                   422, "out_of_stock")
    assert_problem(me.patch(items_path(cart, line), {"quantity": 0, "version": cart["version"]}),
                   422, "validation_error")
    assert_problem(me.patch(items_path(cart, line), {"quantity": 1}), 422, "validation_error")
    assert_problem(me.patch(items_path(cart, str(uuid.uuid4())),
                            {"quantity": 1, "version": cart["version"]}),
                   404, "cart_item_not_found")
    assert_problem(me.delete(items_path(cart, line)), 422, "validation_error")
    assert_problem(me.post(items_path(cart), {"variant_id": variant_id(made), "quantity": 1,
                                              "catalog_slug": "no-such-shop"}),
                   404, "catalog_not_found")
    euros = product(maker, currency="EUR")
    assert_problem(me.post(items_path(cart), {"variant_id": variant_id(euros), "quantity": 1}),
                   422, "currency_mismatch")
    withdrawn = product(maker)
    client.patch(f"/v1/supplier/products/{withdrawn['id']}", json={"active": False},
                 headers=maker.headers())
    assert_problem(me.post(items_path(cart), {"variant_id": variant_id(withdrawn),
                                              "quantity": 1}), 422, "product_unavailable")
    after = me.cart()
    assert after["version"] == cart["version"]
    assert [line["quantity"] for line in after["items"]] == [2]


def test_a_stale_version_is_a_409_and_changes_nothing(api, client):
    made = product(supplier(api), stock=10)
    me = shopper(client)
    cart = me.add(variant_id(made), 1)
    line = cart["items"][0]["id"]
    seen = cart["version"]
    assert me.patch(items_path(cart, line), {"quantity": 3, "version": seen}).status_code == 200
    for response in (
        me.patch(items_path(cart, line), {"quantity": 5, "version": seen}),
        me.patch(items_path(cart, line), {"saved_for_later": True, "version": seen}),
        me.delete(items_path(cart, line), version=seen),
        me.put(f"/v1/carts/{cart['id']}/coupon", {"code": "ANY", "version": seen}),
        me.delete(f"/v1/carts/{cart['id']}/coupon", version=seen),
        me.patch(f"/v1/carts/{cart['id']}", {"region": "EU", "version": seen}),
        me.post(items_path(cart), {"variant_id": variant_id(made), "quantity": 1,
                                   "version": seen}),
    ):
        assert_problem(response, 409, "stale_cart_version")
    assert me.cart()["items"][0]["quantity"] == 3


def test_someone_elses_cart_is_not_found_and_carts_need_credentials(api, client):
    made = product(supplier(api))
    me, stranger = shopper(client), shopper(client)
    cart = me.add(variant_id(made), 1)
    line = cart["items"][0]["id"]
    assert_problem(stranger.get(f"/v1/carts/{cart['id']}"), 404, "cart_not_found")
    assert_problem(stranger.post(items_path(cart), {"variant_id": variant_id(made),
                                                    "quantity": 1}), 404, "cart_not_found")
    assert_problem(stranger.delete(items_path(cart, line), version=cart["version"]), 404,
                   "cart_not_found")
    intruder = guest(client)
    assert_problem(intruder.get(f"/v1/carts/{cart['id']}"), 404, "cart_not_found")
    assert_problem(client.get("/v1/carts/current"), 401, "unauthorized")
    assert_problem(client.get("/v1/carts/current", headers={"Authorization": "Bearer pat_x"}),
                   401, "unauthorized")
    assert_problem(client.get("/v1/carts/current", headers={CART_TOKEN: "ct_unknown"}), 404,
                   "cart_not_found")
    maker = supplier(api)
    assert_problem(client.get("/v1/carts/current", headers=maker.headers()), 401,
                   "unauthorized")
    assert me.cart()["items"][0]["quantity"] == 1


def test_a_logged_out_token_no_longer_reaches_the_cart(api, client):
    """Cart routes find the session through the app's session cache: logging out
    forgets it there, so the token is refused at once."""
    me = shopper(client)
    cart = me.add(variant_id(product(supplier(api))), 1)
    assert client.delete("/v1/sessions/current", headers=me.headers()).status_code == 204
    assert_problem(me.get(f"/v1/carts/{cart['id']}"), 401, "unauthorized")
    assert_problem(client.get("/v1/carts/current", headers=me.headers()), 401, "unauthorized")


def test_a_guest_cart_merges_into_the_users_cart_at_login(api, client):
    shared, extra = product(supplier(api)), product(supplier(api))
    me = shopper(client)
    me.add(variant_id(shared), 1)
    visitor = guest(client)
    visitor.add(variant_id(shared), 2)
    visitor.add(variant_id(extra), 1)
    both = Shopper(client, user=me.user, cart_token=visitor.cart_token)
    merged = both.cart()
    assert sorted((line["variant_id"], line["quantity"]) for line in merged["items"]) == sorted(
        [(variant_id(shared), 3), (variant_id(extra), 1)])
    assert_problem(visitor.get("/v1/carts/current"), 404, "cart_not_found")
    assert both.cart()["id"] == merged["id"]  # the token now finds nothing to merge


def test_logging_in_with_a_guest_cart_token_merges_that_cart(api, client):
    made = product(supplier(api))
    me = shopper(client)
    visitor = guest(client)
    visitor.add(variant_id(made), 2)
    response = client.post(
        "/v1/sessions", json={"email": me.user.email, "password": PASSWORD},
        headers={CART_TOKEN: visitor.cart_token},
    )
    assert response.status_code == 201, response.text
    assert_problem(visitor.get("/v1/carts/current"), 404, "cart_not_found")
    assert [(line["variant_id"], line["quantity"]) for line in me.cart()["items"]] == [
        (variant_id(made), 2)
    ]


def test_an_explicit_merge_reports_lines_it_left_behind(api, client):
    maker = supplier(api)
    dollars, euros = product(maker), product(maker, currency="EUR")
    me = shopper(client)
    me.add(variant_id(dollars), 1)
    visitor = guest(client)
    left = visitor.add(variant_id(euros), 1)["items"][0]["id"]
    both = Shopper(client, user=me.user, cart_token=visitor.cart_token)
    merged = both.post("/v1/carts/merge")
    assert merged.status_code == 200, merged.text
    assert merged.json()["skipped_line_ids"] == [left]
    assert_problem(both.post("/v1/carts/merge"), 404, "cart_not_found")
    assert_problem(me.post("/v1/carts/merge"), 401, "unauthorized")


def coupon(api, **fields) -> str:
    code = "C" + uuid.uuid4().hex[:10].upper()
    body = {"code": code, "kind": "percent", "percent_bps": 1000, **fields}
    response = api.post("/v1/admin/commerce/coupons", body)
    assert response.status_code == 201, response.text
    return code


def test_coupons_on_a_cart(api, client):
    made = product(supplier(api), price="40.00")
    me = shopper(client)
    cart = me.add(variant_id(made), 1)
    path = f"/v1/carts/{cart['id']}/coupon"
    code = coupon(api)
    applied = me.put(path, {"code": code.lower(), "version": cart["version"]})
    assert applied.status_code == 200, applied.text
    cart = applied.json()
    assert (cart["coupon_code"], cart["coupon_applied"]) == (code, True)
    assert cart["totals"]["discount"] == "4.00" and cart["totals"]["total"] == "36.00"
    assert cart["items"][0]["order_discount"]["amount"] == "4.00"
    expired = coupon(api, ends_at="2020-01-01T00:00:00Z")
    assert_problem(me.put(path, {"code": expired, "version": cart["version"]}), 422,
                   "coupon_expired")
    assert_problem(me.put(path, {"code": "NOPE" + uuid.uuid4().hex[:6], "version":
                                 cart["version"]}), 404, "coupon_not_found")
    euro_only = coupon(api, kind="fixed", percent_bps=None, amount="1.00", currency="EUR")
    assert_problem(me.put(path, {"code": euro_only, "version": cart["version"]}), 422,
                   "coupon_not_applicable")
    withdrawn = coupon(api)
    api.post(f"/v1/admin/commerce/coupons/{withdrawn}/deactivate")
    assert_problem(me.put(path, {"code": withdrawn, "version": cart["version"]}), 422,
                   "coupon_expired")
    off = me.delete(path, version=cart["version"]).json()
    assert off["coupon_code"] is None and off["totals"]["total"] == "40.00"


def test_a_coupon_that_reached_its_limit_is_refused(api, client, engine):
    from datetime import UTC, datetime

    from pacioli.commerce.promotions import redeem_coupon

    code = coupon(api, usage_limit_total=1)
    with engine.begin() as connection:
        redeem_coupon(connection, code, user_id=uuid.uuid4(), order_id=uuid.uuid4(),
                      now=datetime.now(UTC))
    me = shopper(client)
    cart = me.add(variant_id(product(supplier(api))), 1)
    assert_problem(me.put(f"/v1/carts/{cart['id']}/coupon",
                          {"code": code, "version": cart["version"]}), 422, "coupon_exhausted")
    assert api.get(f"/v1/admin/commerce/coupons/{code}").json()["redeemed_count"] == 1


def test_totals_apply_discounts_then_tax_then_shipping(api, client):
    currency = new_currency(api)
    category = "cat-" + uuid.uuid4().hex[:8]
    maker = supplier(api)
    made = product(maker, currency=currency, price="30.00", category=category)
    assert maker.post("/v1/supplier/promotions", {
        "name": "10% off", "scope": "product", "target_id": made["id"], "kind": "percent",
        "percent_bps": 1000}).status_code == 201
    assert api.post("/v1/admin/commerce/promotions", {
        "name": "2 off over 50", "kind": "fixed", "amount": "2.00", "currency": currency,
        "min_subtotal": "50.00"}).status_code == 201
    assert maker.put(f"/v1/commerce/suppliers/me/shipping/{currency}",
                     {"fee": "5.00", "free_above": "100.00"}).status_code == 200
    assert api.client.put(f"/v1/admin/commerce/tax-rates/{category}/IN-KA",
                          json={"rate_bps": 1800}, headers=api.headers()).status_code == 200
    me = shopper(client)
    cart = me.add(variant_id(made), 2)  # 60.00 - 6.00 catalogue - 2.00 order = 52.00
    assert cart["totals"]["tax"] == "0.00"  # no region yet: no rate for (category, *)
    cart = me.patch(f"/v1/carts/{cart['id']}", {"region": "IN-KA",
                                                "version": cart["version"]}).json()
    assert cart["region"] == "IN-KA"
    assert cart["totals"] == {"subtotal": "60.00", "discount": "8.00", "tax": "9.36",
                              "shipping": "5.00", "total": "66.36", "currency": currency}
    (line,) = cart["items"]
    assert (line["catalogue_discount"]["amount"], line["order_discount"]["amount"],
            line["tax"]["amount"], line["total"]["amount"]) == ("6.00", "2.00", "9.36", "61.36")


def test_buying_through_a_resellers_shop_prices_with_the_margin(api, client):
    made = product(supplier(api), price="9.00")
    seller = reseller(api)
    slug = "shop-" + uuid.uuid4().hex[:10]
    shop = seller.post("/v1/reseller/catalogs", {"slug": slug, "title": "Picks"}).json()
    seller.put(f"/v1/reseller/catalogs/{shop['id']}/items/{made['id']}", {"margin": "1.50"})
    me = shopper(client)
    cart = me.add(variant_id(made), 2, catalog_slug=slug)
    (line,) = cart["items"]
    assert line["catalog_slug"] == slug
    assert line["unit_price"]["amount"] == "10.50"
    assert cart["totals"]["total"] == "21.00"
    other_shop = seller.post("/v1/reseller/catalogs", {"slug": slug + "-b",
                                                       "title": "Empty"}).json()
    assert other_shop["slug"] == slug + "-b"
    assert_problem(me.post(items_path(cart), {"variant_id": variant_id(made), "quantity": 1,
                                              "catalog_slug": slug + "-b"}),
                   404, "product_not_in_catalog")


def test_a_line_whose_stock_ran_out_shows_unavailable(api, client):
    maker = supplier(api)
    made = product(maker, stock=5, price="2.00")
    me = shopper(client)
    cart = me.add(variant_id(made), 3)
    maker.put(f"/v1/supplier/variants/{variant_id(made)}/stock", {"available": 1})
    after = me.cart()
    assert after["items"][0]["available"] is False
    assert after["unavailable_line_ids"] == [cart["items"][0]["id"]]
    assert after["totals"]["total"] == "0.00"


def test_an_add_answers_the_cart_a_fresh_read_gives(api, client):
    """The add's answer is built in the edit's transaction from the row its update
    returned; it is the cart as reading it afterwards shows it, discounts, tax, shipping,
    a shop's margin and a saved line included."""
    currency = new_currency(api)
    category = "cat-" + uuid.uuid4().hex[:8]
    maker = supplier(api)
    made = product(maker, currency=currency, price="30.00", category=category)
    other = product(maker, currency=currency, price="4.00", category=category)
    assert maker.post("/v1/supplier/promotions", {
        "name": "10% off", "scope": "variant", "target_id": variant_id(made),
        "kind": "percent", "percent_bps": 1000}).status_code == 201
    assert api.post("/v1/admin/commerce/promotions", {
        "name": "1 off", "kind": "fixed", "amount": "1.00", "currency": currency,
    }).status_code == 201
    assert maker.put(f"/v1/commerce/suppliers/me/shipping/{currency}",
                     {"fee": "3.00"}).status_code == 200
    assert api.client.put(f"/v1/admin/commerce/tax-rates/{category}/*",
                          json={"rate_bps": 500}, headers=api.headers()).status_code == 200
    seller = reseller(api)
    slug = "shop-" + uuid.uuid4().hex[:10]
    shop = seller.post("/v1/reseller/catalogs", {"slug": slug, "title": "Picks"}).json()
    seller.put(f"/v1/reseller/catalogs/{shop['id']}/items/{other['id']}", {"margin": "0.50"})
    me = shopper(client)
    cart = me.add(variant_id(other), 1, catalog_slug=slug)
    line = cart["items"][0]["id"]
    saved = me.client.patch(items_path(cart, line), json={
        "saved_for_later": True, "version": cart["version"]}, headers=me.headers())
    assert saved.status_code == 200, saved.text
    added = me.add(variant_id(made), 2)
    assert added == me.cart()
    assert added["totals"] == {"subtotal": "60.00", "discount": "7.00", "tax": "2.65",
                               "shipping": "3.00", "total": "58.65", "currency": currency}
    assert [item["id"] for item in added["saved_for_later"]] == [line]
    assert [item["unit_price"]["amount"] for item in added["items"]] == ["30.00"]
