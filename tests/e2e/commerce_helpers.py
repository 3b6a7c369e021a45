"""Helpers for the commerce end-to-end tests: suppliers, resellers, products and carts
made through the HTTP API."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.e2e.conftest import Api, MerchantApi, UserApi, registered_merchant

CART_TOKEN = "X-Cart-Token"


def supplier(api: Api, *, threshold: int | None = None) -> MerchantApi:
    merchant = registered_merchant(api, name="Supplier " + uuid.uuid4().hex[:6])
    body = {} if threshold is None else {"low_stock_threshold": threshold}
    response = merchant.post("/v1/commerce/suppliers", body)
    assert response.status_code == 201, response.text
    return merchant


def reseller(api: Api) -> MerchantApi:
    merchant = registered_merchant(api, name="Reseller " + uuid.uuid4().hex[:6])
    response = merchant.post("/v1/commerce/resellers")
    assert response.status_code == 201, response.text
    return merchant


def product_body(*, name: str = "Linen shirt", currency: str = "USD", price: str = "10.00",
                 stock: int = 10, **fields: Any) -> dict:
    variants = fields.pop("variants", None)
    if variants is None:
        variants = [{"sku": "SKU-1", "price": price, "stock": stock, "size": "M",
                     "colour": "Blue"}]
    return {"name": name, "currency": currency, "brand": "Acme", "variants": variants,
            **fields}


def product(merchant: MerchantApi, **fields: Any) -> dict:
    response = merchant.post("/v1/supplier/products", product_body(**fields))
    assert response.status_code == 201, response.text
    return response.json()


def variant_id(made: dict, index: int = 0) -> str:
    return made["variants"][index]["id"]


def patch(who: UserApi | MerchantApi | Api, path: str, body: dict, **headers: str):
    return who.client.patch(path, json=body, headers={**who.headers(), **headers})


def new_currency(api: Api) -> str:
    """A ledger asset no other test uses (order promotions apply per currency)."""
    code = "C" + uuid.uuid4().hex[:9].upper()
    response = api.post("/v1/assets", {"code": code, "scale": 2})
    assert response.status_code == 201, response.text
    return code


class Shopper:
    """A shopper's cart calls, as a user (token), a guest (cart token) or both."""

    def __init__(self, client, *, user: UserApi | None = None,
                 cart_token: str | None = None) -> None:
        self.client = client
        self.user = user
        self.cart_token = cart_token

    def headers(self) -> dict[str, str]:
        headers = {}
        if self.user is not None:
            headers["Authorization"] = f"Bearer {self.user.token}"
        if self.cart_token is not None:
            headers[CART_TOKEN] = self.cart_token
        return headers

    def get(self, path: str) -> httpx.Response:
        return self.client.get(path, headers=self.headers())

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.post(path, json=body, headers=self.headers())

    def put(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.put(path, json=body, headers=self.headers())

    def patch(self, path: str, body: Any = None) -> httpx.Response:
        return self.client.patch(path, json=body, headers=self.headers())

    def delete(self, path: str, **params: Any) -> httpx.Response:
        return self.client.delete(path, params=params, headers=self.headers())

    def cart(self) -> dict:
        response = self.get("/v1/carts/current")
        assert response.status_code == 200, response.text
        return response.json()

    def add(self, variant: str, quantity: int = 1, **fields: Any) -> dict:
        cart = self.cart()
        response = self.post(f"/v1/carts/{cart['id']}/items",
                             {"variant_id": variant, "quantity": quantity, **fields})
        assert response.status_code == 201, response.text
        return response.json()


def guest(client) -> Shopper:
    response = client.post("/v1/carts/guest")
    assert response.status_code == 201, response.text
    return Shopper(client, cart_token=response.json()["token"])
