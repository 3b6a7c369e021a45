"""End-to-end: suppliers, products, variants, stock, search, reseller shops, promotions,
coupons and tax rates through HTTP, with their error cases."""

from __future__ import annotations

import uuid

from tests.e2e.commerce_helpers import (
    new_currency,
    patch,
    product,
    product_body,
    reseller,
    supplier,
    variant_id,
)
from tests.e2e.conftest import assert_problem, registered_merchant


def names(response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["name"] for item in response.json()["data"]]


# Suppliers.


def test_a_merchant_registers_as_supplier_and_sets_its_threshold(api):
    merchant = registered_merchant(api)
    registered = merchant.post("/v1/commerce/suppliers", {"low_stock_threshold": 4})
    assert registered.status_code == 201, registered.text
    assert registered.json()["merchant_id"] == merchant.id
    assert merchant.post("/v1/commerce/suppliers", {}).status_code == 201  # again: no change
    assert merchant.get("/v1/commerce/suppliers/me").json()["low_stock_threshold"] == 4
    changed = patch(merchant, "/v1/commerce/suppliers/me", {"low_stock_threshold": 9})
    assert changed.json()["low_stock_threshold"] == 9


def test_a_merchant_that_is_not_a_supplier_is_forbidden(api):
    merchant = registered_merchant(api)
    assert_problem(merchant.get("/v1/commerce/suppliers/me"), 403, "not_a_supplier")
    assert_problem(merchant.post("/v1/supplier/products", product_body()), 403, "not_a_supplier")
    assert_problem(merchant.get("/v1/supplier/products"), 403, "not_a_supplier")


def test_supplier_routes_need_a_merchant_key(api, user):
    assert_problem(user.get("/v1/commerce/suppliers/me"), 401, "unauthorized")
    assert_problem(api.client.post("/v1/supplier/products", json=product_body()), 401,
                   "unauthorized")


def test_a_supplier_sets_its_shipping(api):
    merchant = supplier(api)
    response = merchant.put("/v1/commerce/suppliers/me/shipping/USD",
                            {"fee": "4.99", "free_above": "50.00"})
    assert response.status_code == 200, response.text
    assert response.json() == {"currency": "USD", "fee": "4.99", "free_above": "50.00"}
    assert_problem(merchant.put("/v1/commerce/suppliers/me/shipping/XXQ", {"fee": "1.00"}),
                   422, "unknown_asset")


# Products.


def test_creating_a_product_is_idempotent(api):
    merchant = supplier(api)
    key = uuid.uuid4().hex
    body = product_body(image_urls=["https://img.example/1.jpg"],
                        attributes={"material": "linen"}, description="Breathable")
    first = merchant.post("/v1/supplier/products", body, key=key)
    assert first.status_code == 201, first.text
    made = first.json()
    assert made["variants"][0]["price"] == {"amount": "10.00", "currency": "USD"}
    assert made["variants"][0]["stock_available"] == 10
    assert made["attributes"] == {"material": "linen"}
    again = merchant.post("/v1/supplier/products", body, key=key)
    assert again.json()["id"] == made["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(merchant.post("/v1/supplier/products", product_body(name="Other"), key=key),
                   409, "idempotency_key_reused")


def test_malformed_products_are_refused(api):
    merchant = supplier(api)
    for body, code in (
        (product_body(price="abc"), "invalid_amount"),
        (product_body(price="10.001"), "invalid_amount"),
        (product_body(currency="XXQ"), "unknown_asset"),
        (product_body(variants=[]), "validation_error"),
        ({**product_body(), "variants": [{"sku": "A", "price": 10, "stock": 1}]},
         "invalid_amount"),
        (product_body(stock=-1), "validation_error"),
        (product_body(image_urls=["ftp://x"]), "validation_error"),
    ):
        assert_problem(merchant.post("/v1/supplier/products", body), 422, code)
    assert_problem(merchant.client.post("/v1/supplier/products", json=product_body(),
                                        headers=merchant.headers()),
                   422, "idempotency_key_required")


def test_products_are_seen_by_shoppers_while_active(api, client):
    merchant = supplier(api)
    made = product(merchant)
    public = client.get(f"/v1/catalog/products/{made['id']}")
    assert public.status_code == 200
    assert "stock_reserved" not in public.json()["variants"][0]
    own = merchant.get(f"/v1/supplier/products/{made['id']}")
    assert own.json()["variants"][0]["stock_reserved"] == 0
    withdrawn = patch(merchant, f"/v1/supplier/products/{made['id']}", {"active": False})
    assert withdrawn.json()["active"] is False
    assert_problem(client.get(f"/v1/catalog/products/{made['id']}"), 404, "product_not_found")
    assert merchant.get(f"/v1/supplier/products/{made['id']}").status_code == 200
    assert_problem(client.get(f"/v1/catalog/products/{uuid.uuid4()}"), 404, "product_not_found")


def test_a_supplier_cannot_see_or_change_another_suppliers_product(api):
    owner, other = supplier(api), supplier(api)
    made = product(owner)
    assert_problem(other.get(f"/v1/supplier/products/{made['id']}"), 404, "product_not_found")
    assert_problem(patch(other, f"/v1/supplier/products/{made['id']}", {"name": "Mine"}),
                   404, "product_not_found")
    assert_problem(other.post(f"/v1/supplier/products/{made['id']}/variants",
                              {"sku": "X", "price": "1.00"}), 404, "product_not_found")
    assert_problem(other.put(f"/v1/supplier/variants/{variant_id(made)}/stock",
                             {"available": 0}), 404, "variant_not_found")
    assert_problem(patch(other, f"/v1/supplier/variants/{variant_id(made)}", {"price": "1.00"}),
                   404, "variant_not_found")
    assert owner.get(f"/v1/supplier/products/{made['id']}").json()["name"] == "Linen shirt"


def test_variants_prices_and_stock(api):
    merchant = supplier(api)
    made = product(merchant)
    added = merchant.post(f"/v1/supplier/products/{made['id']}/variants",
                          {"sku": "SKU-L", "price": "12.50", "stock": 3, "size": "L"})
    assert added.status_code == 201, added.text
    assert_problem(merchant.post(f"/v1/supplier/products/{made['id']}/variants",
                                 {"sku": "SKU-L", "price": "12.50"}), 409, "sku_taken")
    variant = added.json()["id"]
    repriced = patch(merchant, f"/v1/supplier/variants/{variant}", {"price": "11.00"})
    assert repriced.json()["price"]["amount"] == "11.00"
    path = f"/v1/supplier/variants/{variant}/stock"
    assert merchant.put(path, {"adjust_by": 4}).json()["stock_available"] == 7
    assert merchant.put(path, {"available": 2}).json()["stock_available"] == 2
    assert_problem(merchant.put(path, {"adjust_by": -3}), 422, "validation_error")
    assert_problem(merchant.put(path, {"available": 1, "adjust_by": 1}), 422, "validation_error")
    assert_problem(merchant.put(path, {"available": -1}), 422, "validation_error")
    assert merchant.get(f"/v1/supplier/products/{made['id']}").json()["variants"][1][
        "stock_available"] == 2


# Search.


def test_search_filters_and_pages(api, client):
    currency = new_currency(api)
    merchant = supplier(api)
    product(merchant, name="Cotton tee", currency=currency, variants=[
        {"sku": "S-RED", "price": "15.00", "stock": 5, "size": "S", "colour": "Red"},
        {"sku": "M-BLUE", "price": "17.00", "stock": 5, "size": "M", "colour": "Blue"}])
    product(merchant, name="Linen shirt", currency=currency, description="cotton blend",
            brand="Contoso", variants=[{"sku": "M-RED", "price": "40.00", "stock": 1,
                                        "size": "M", "colour": "red"}])
    product(merchant, name="Wool socks", currency=currency, price="5.00")

    def found(**params):
        return names(client.get("/v1/catalog/products", params={"currency": currency, **params}))

    assert found(q="cotton") == ["Linen shirt", "Cotton tee"]
    assert found(brand="contoso") == ["Linen shirt"]
    assert found(size="M", colour="RED") == ["Linen shirt"]
    assert found(min_price="16", max_price="20") == ["Cotton tee"]
    first = client.get("/v1/catalog/products", params={"currency": currency, "limit": 2})
    page = first.json()
    assert page["has_more"] is True and len(page["data"]) == 2
    rest = client.get("/v1/catalog/products", params={
        "currency": currency, "limit": 2, "starting_after": page["next_cursor"]}).json()
    assert [p["name"] for p in rest["data"]] == ["Cotton tee"] and rest["has_more"] is False
    assert_problem(client.get("/v1/catalog/products", params={"min_price": "1"}), 422,
                   "validation_error")
    assert_problem(client.get("/v1/catalog/products", params={
        "currency": currency, "min_price": "1.001"}), 422, "invalid_amount")
    assert_problem(client.get("/v1/catalog/products", params={"limit": 0}), 422,
                   "validation_error")
    own = merchant.get("/v1/supplier/products", params={"currency": currency})
    assert len(own.json()["data"]) == 3


# Resellers.


def test_a_reseller_shares_a_catalog_at_its_own_prices(api, client):
    maker, seller = supplier(api), reseller(api)
    made = product(maker, price="9.00")
    slug = "shop-" + uuid.uuid4().hex[:10]
    created = seller.post("/v1/reseller/catalogs", {"slug": slug, "title": "Asha's picks"})
    assert created.status_code == 201, created.text
    shop = created.json()
    assert shop["share_path"] == f"/v1/shops/{slug}"
    item = seller.put(f"/v1/reseller/catalogs/{shop['id']}/items/{made['id']}",
                      {"margin": "2.50"})
    assert item.status_code == 200, item.text
    assert item.json()["margin"] == {"amount": "2.50", "currency": "USD"}
    assert client.get(f"/v1/shops/{slug}").json()["title"] == "Asha's picks"
    listed = client.get(f"/v1/shops/{slug}/products").json()["data"]
    assert [(p["id"], p["variants"][0]["price"]["amount"], p["catalog_slug"])
            for p in listed] == [(made["id"], "11.50", slug)]
    one = client.get(f"/v1/shops/{slug}/products/{made['id']}").json()
    assert one["variants"][0]["price"]["amount"] == "11.50"
    assert names(client.get(f"/v1/shops/{slug}/products",
                            params={"currency": "USD", "max_price": "11.00"})) == []
    assert [c["slug"] for c in seller.get("/v1/reseller/catalogs").json()] == [slug]
    removed = seller.delete(f"/v1/reseller/catalogs/{shop['id']}/items/{made['id']}")
    assert removed.status_code == 204
    assert_problem(client.get(f"/v1/shops/{slug}/products/{made['id']}"), 404,
                   "product_not_in_catalog")
    assert_problem(seller.delete(f"/v1/reseller/catalogs/{shop['id']}/items/{made['id']}"),
                   404, "product_not_in_catalog")
    off = patch(seller, f"/v1/reseller/catalogs/{shop['id']}", {"active": False})
    assert off.json()["active"] is False
    assert_problem(client.get(f"/v1/shops/{slug}"), 404, "catalog_not_found")


def test_reseller_errors(api):
    seller, other = reseller(api), reseller(api)
    slug = "shop-" + uuid.uuid4().hex[:10]
    shop = seller.post("/v1/reseller/catalogs", {"slug": slug, "title": "Mine"}).json()
    assert_problem(other.post("/v1/reseller/catalogs", {"slug": slug, "title": "x"}), 409,
                   "catalog_slug_taken")
    assert_problem(other.post("/v1/reseller/catalogs", {"slug": "No Spaces", "title": "x"}),
                   422, "validation_error")
    made = product(supplier(api))
    assert_problem(other.put(f"/v1/reseller/catalogs/{shop['id']}/items/{made['id']}",
                             {"margin": "1.00"}), 404, "catalog_not_found")
    assert_problem(patch(other, f"/v1/reseller/catalogs/{shop['id']}", {"title": "Taken"}),
                   404, "catalog_not_found")
    assert_problem(seller.put(f"/v1/reseller/catalogs/{shop['id']}/items/{uuid.uuid4()}",
                              {"margin": "1.00"}), 404, "product_not_found")
    not_reseller = registered_merchant(api)
    assert_problem(not_reseller.post("/v1/reseller/catalogs", {"slug": "abc-1", "title": "x"}),
                   403, "not_a_reseller")
    assert_problem(not_reseller.get("/v1/reseller/catalogs"), 403, "not_a_reseller")
    assert_problem(api.client.get("/v1/shops/no-such-shop-here"), 404, "catalog_not_found")


# Promotions, coupons and tax (admin); catalogue discounts (suppliers).


def test_admin_manages_coupons(api, user):
    code = "SAVE" + uuid.uuid4().hex[:6].upper()
    body = {"code": code, "kind": "percent", "percent_bps": 1000, "usage_limit_total": 100,
            "usage_limit_per_user": 1}
    created = api.post("/v1/admin/commerce/coupons", body)
    assert created.status_code == 201, created.text
    assert created.json()["discount"]["percent_bps"] == 1000
    assert_problem(api.post("/v1/admin/commerce/coupons", body), 409, "coupon_code_taken")
    assert api.get(f"/v1/admin/commerce/coupons/{code.lower()}").json()["code"] == code
    listed = api.get("/v1/admin/commerce/coupons", params={"limit": 200}).json()["data"]
    assert code in [c["code"] for c in listed] or len(listed) == 200
    withdrawn = api.post(f"/v1/admin/commerce/coupons/{code}/deactivate")
    assert withdrawn.json()["active"] is False
    assert_problem(api.get("/v1/admin/commerce/coupons/NOPE-" + uuid.uuid4().hex[:6]), 404,
                   "coupon_not_found")
    assert_problem(user.post("/v1/admin/commerce/coupons", body), 401, "unauthorized")
    for bad in ({**body, "code": "X" + code, "kind": "fixed"},
                {**body, "code": "Y" + code, "percent_bps": 10001},
                {**body, "code": "Z" + code, "kind": "fixed", "percent_bps": None,
                 "amount": "5.00"}):
        assert_problem(api.post("/v1/admin/commerce/coupons", bad), 422, "validation_error")


def test_admin_manages_order_promotions_and_tax_rates(api):
    currency = new_currency(api)
    created = api.post("/v1/admin/commerce/promotions", {
        "name": "5 off over 50", "kind": "fixed", "amount": "5.00", "currency": currency,
        "min_subtotal": "50.00"})
    assert created.status_code == 201, created.text
    promotion = created.json()
    assert promotion["discount"]["min_subtotal"] == "50.00"
    assert promotion["id"] in [p["id"] for p in api.get("/v1/admin/commerce/promotions").json()]
    assert api.post(f"/v1/admin/commerce/promotions/{promotion['id']}/deactivate").json()[
        "active"] is False
    assert_problem(api.post(f"/v1/admin/commerce/promotions/{uuid.uuid4()}/deactivate"), 404,
                   "promotion_not_found")
    category = "cat-" + uuid.uuid4().hex[:8]
    rate = api.client.put(f"/v1/admin/commerce/tax-rates/{category}/EU", json={"rate_bps": 2000},
                          headers=api.headers())
    assert rate.status_code == 200 and rate.json()["rate_bps"] == 2000
    assert (category, "EU") in [(r["category"], r["region"])
                                for r in api.get("/v1/admin/commerce/tax-rates").json()]
    assert_problem(api.client.put(f"/v1/admin/commerce/tax-rates/{category}/EU",
                                  json={"rate_bps": 10001}, headers=api.headers()),
                   422, "validation_error")
    removed = api.client.delete(f"/v1/admin/commerce/tax-rates/{category}/EU",
                                headers=api.headers())
    assert removed.status_code == 204


def test_suppliers_discount_their_own_products(api, client):
    owner, other = supplier(api), supplier(api)
    made = product(owner, price="20.00")
    body = {"name": "Spring sale", "scope": "product", "target_id": made["id"],
            "kind": "percent", "percent_bps": 2500}
    created = owner.post("/v1/supplier/promotions", body)
    assert created.status_code == 201, created.text
    assert [p["id"] for p in owner.get("/v1/supplier/promotions").json()] == [
        created.json()["id"]]
    assert_problem(other.post("/v1/supplier/promotions", body), 404, "product_not_found")
    assert_problem(other.post(f"/v1/supplier/promotions/{created.json()['id']}/deactivate"),
                   404, "promotion_not_found")
    assert_problem(owner.post("/v1/supplier/promotions", {**body, "scope": "variant"}), 404,
                   "variant_not_found")
    deactivated = owner.post(f"/v1/supplier/promotions/{created.json()['id']}/deactivate")
    assert deactivated.json()["active"] is False


def test_stock_falling_below_the_threshold_is_announced_to_the_supplier(api, engine):
    from sqlalchemy import select

    from pacioli.ledger.storage.tables import outbox

    merchant = supplier(api, threshold=5)
    made = product(merchant, stock=8)
    path = f"/v1/supplier/variants/{variant_id(made)}/stock"
    assert merchant.put(path, {"available": 6}).status_code == 200
    assert merchant.put(path, {"adjust_by": -2}).status_code == 200  # 4: below 5
    assert merchant.put(path, {"available": 3}).status_code == 200  # still below: no repeat
    with engine.connect() as connection:
        payloads = connection.execute(select(outbox.c.payload).where(
            outbox.c.event_type == "commerce.stock_low",
            outbox.c.aggregate_id == variant_id(made))).scalars().all()
    assert [(p["merchant_id"], p["stock_available"]) for p in payloads] == [(merchant.id, "4")]
