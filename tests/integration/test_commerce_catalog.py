"""Catalog: suppliers' products and stock, search and filters with cursors, reseller
catalogs, and promotions in pricing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from pacioli.commerce import catalog, catalog_search, promotion_admin, resellers
from pacioli.commerce import errors as ce
from pacioli.commerce.catalog import ProductDraft, VariantDraft
from pacioli.commerce.catalog_search import SearchFilters
from pacioli.commerce.pricing import price_cart
from pacioli.commerce.promotion_admin import DiscountTerms
from pacioli.ledger.domain.ids import uuid7
from tests.integration.commerce_support import (
    currency_code,
    new_product,
    new_supplier,
    stock,
    user_cart_with,
)


def search(engine, filters: SearchFilters, **kwargs):
    kwargs.setdefault("limit", 50)
    with engine.connect() as connection:
        return catalog_search.search_products(connection, filters, **kwargs)


def names(listings):
    return [listing.product.name for listing in listings]


def test_creating_a_product_is_idempotent_on_its_key(engine):
    supplier = new_supplier(engine)
    draft = ProductDraft(name="Kurta", currency="INR",
                         variants=(VariantDraft(sku="K-1", price_minor=49900),))
    first, replayed = catalog.create_product(engine, supplier, draft, idempotency_key="k1")
    again, replayed_again = catalog.create_product(engine, supplier, draft, idempotency_key="k1")
    assert (replayed, replayed_again) == (False, True)
    assert again.id == first.id
    other = ProductDraft(name="Saree", currency="INR",
                         variants=(VariantDraft(sku="S-1", price_minor=99900),))
    with pytest.raises(ce.IdempotencyKeyReusedForCommerce):
        catalog.create_product(engine, supplier, other, idempotency_key="k1")


def test_only_suppliers_list_products(engine):
    draft = ProductDraft(name="Kurta", currency="INR",
                         variants=(VariantDraft(sku="K-1", price_minor=49900),))
    with pytest.raises(ce.NotASupplier):
        catalog.create_product(engine, uuid7(), draft, idempotency_key="k")


def test_malformed_products_are_refused(engine):
    supplier = new_supplier(engine)
    for draft in (
        ProductDraft(name="", currency="USD", variants=(VariantDraft("A", 100),)),
        ProductDraft(name="x", currency="USD", variants=()),
        ProductDraft(name="x", currency="USD", variants=(VariantDraft("A", 0),)),
        ProductDraft(name="x", currency="USD", variants=(VariantDraft("A", 1),
                                                         VariantDraft("A", 2))),
        ProductDraft(name="x", currency="USD", variants=(VariantDraft("A", 1),),
                     image_urls=("ftp://nope",)),
    ):
        with pytest.raises(ce.InvalidCommerceRequest):
            catalog.create_product(engine, supplier, draft, idempotency_key=uuid.uuid4().hex)


def test_a_supplier_cannot_touch_another_suppliers_products(engine):
    owner, other = new_supplier(engine), new_supplier(engine)
    product = new_product(engine, owner)
    variant = product.variants[0].id
    with pytest.raises(ce.ProductNotFound):
        catalog.update_product(engine, other, product.id, {"name": "Mine now"})
    with pytest.raises(ce.VariantNotFound):
        catalog.set_stock(engine, other, variant, available=0)
    with pytest.raises(ce.ProductNotFound):
        catalog.add_variant(engine, other, product.id, VariantDraft("X", 100))
    assert stock(engine, variant) == (10, 0, 0)


def test_stock_can_be_set_or_adjusted_but_never_below_zero(engine):
    supplier = new_supplier(engine)
    variant = new_product(engine, supplier, stock=5).variants[0].id
    assert catalog.set_stock(engine, supplier, variant, adjust_by=3).stock_available == 8
    assert catalog.set_stock(engine, supplier, variant, available=2).stock_available == 2
    with pytest.raises(ce.InvalidCommerceRequest):
        catalog.set_stock(engine, supplier, variant, adjust_by=-3)
    assert stock(engine, variant) == (2, 0, 0)


def test_a_second_variant_needs_its_own_sku(engine):
    supplier = new_supplier(engine)
    product = new_product(engine, supplier)
    catalog.add_variant(engine, supplier, product.id, VariantDraft("SKU-2", 900, size="L"))
    with pytest.raises(ce.SkuTaken):
        catalog.add_variant(engine, supplier, product.id, VariantDraft("SKU-2", 900))


def test_search_by_words_brand_size_colour_and_price(engine, ledger):
    currency = currency_code(ledger)
    supplier = new_supplier(engine)
    tee = new_product(engine, supplier, name="Cotton tee", brand="Northwind", currency=currency,
                      variants=(VariantDraft("T-S-RED", 1500, size="S", colour="Red"),
                                VariantDraft("T-M-BLUE", 1700, size="M", colour="Blue")))
    new_product(engine, supplier, name="Linen shirt", brand="Contoso", currency=currency,
                description="A cotton blend", variants=(
                    VariantDraft("L-M-RED", 4000, size="M", colour="red"),))
    new_product(engine, supplier, name="Wool socks", brand="northwind", currency=currency,
                variants=(VariantDraft("W-1", 500, size="M", colour="grey"),))
    assert names(search(engine, SearchFilters(text="cotton", currency=currency))) == [
        "Linen shirt", "Cotton tee"]
    assert names(search(engine, SearchFilters(brand="NORTHWIND", currency=currency))) == [
        "Wool socks", "Cotton tee"]
    # Size and colour must be one variant's: the tee has red (S) and M (blue), not red M.
    assert names(search(engine, SearchFilters(size="m", colour="RED", currency=currency))) == [
        "Linen shirt"]
    assert names(search(engine, SearchFilters(currency=currency, min_price_minor=1600,
                                              max_price_minor=2000))) == ["Cotton tee"]
    assert names(search(engine, SearchFilters(currency=currency, max_price_minor=499))) == []
    catalog.update_product(engine, supplier, tee.id, {"active": False})
    assert names(search(engine, SearchFilters(text="cotton", currency=currency))) == [
        "Linen shirt"]
    own = search(engine, SearchFilters(text="cotton", currency=currency), supplier_id=supplier,
                 include_inactive=True)
    assert names(own) == ["Linen shirt", "Cotton tee"]


def test_search_pages_through_results_by_cursor(engine, ledger):
    currency = currency_code(ledger)
    supplier = new_supplier(engine)
    made = [new_product(engine, supplier, name=f"Item {i}", currency=currency).id
            for i in range(5)]
    seen, cursor = [], None
    while True:
        page = search(engine, SearchFilters(currency=currency), limit=2, starting_after=cursor)
        seen += [listing.product.id for listing in page]
        if len(page) < 2:
            break
        cursor = page[-1].product.id
    assert seen == list(reversed(made))


def test_a_price_range_needs_a_currency_and_must_be_ordered(engine):
    with pytest.raises(ce.InvalidCommerceRequest):
        search(engine, SearchFilters(min_price_minor=100))
    with pytest.raises(ce.InvalidCommerceRequest):
        search(engine, SearchFilters(currency="USD", min_price_minor=200, max_price_minor=100))


def test_a_resellers_catalog_shows_and_filters_its_own_prices(engine, ledger):
    currency = currency_code(ledger)
    supplier = new_supplier(engine)
    cheap = new_product(engine, supplier, name="Bangle", price=900, currency=currency)
    new_product(engine, supplier, name="Anklet", price=900, currency=currency)  # not listed
    reseller = uuid7()
    resellers.register_reseller(engine, reseller)
    slug = "r-" + uuid.uuid4().hex[:12]
    shop = resellers.create_catalog(engine, reseller, slug=slug, title="Jewels")
    resellers.set_catalog_item(engine, reseller, shop.id, cheap.id, margin_minor=200)
    listings = search(engine, SearchFilters(currency=currency, min_price_minor=1000),
                      catalog_id=shop.id)
    assert [(listing.product.name, listing.margin_minor) for listing in listings] == [
        ("Bangle", 200)]
    with engine.connect() as connection:
        assert resellers.shared_catalog(connection, slug).id == shop.id
    resellers.update_catalog(engine, reseller, shop.id, active=False)
    with engine.connect() as connection, pytest.raises(ce.CatalogNotFound):
        resellers.shared_catalog(connection, slug)


def test_catalog_slugs_are_unique_and_catalogs_are_their_resellers(engine):
    first, second = uuid7(), uuid7()
    for reseller in (first, second):
        resellers.register_reseller(engine, reseller)
    slug = "r-" + uuid.uuid4().hex[:12]
    shop = resellers.create_catalog(engine, first, slug=slug, title="One")
    with pytest.raises(ce.SlugTaken):
        resellers.create_catalog(engine, second, slug=slug, title="Two")
    with pytest.raises(ce.InvalidCommerceRequest):
        resellers.create_catalog(engine, second, slug="Bad Slug", title="Two")
    with pytest.raises(ce.CatalogNotFound):
        resellers.set_catalog_item(engine, second, shop.id, uuid.uuid4(), margin_minor=1)
    with pytest.raises(ce.NotAReseller):
        resellers.create_catalog(engine, uuid7(), slug="r-" + uuid.uuid4().hex[:12], title="x")


def test_catalogue_and_order_promotions_price_in_order(engine, ledger):
    currency = currency_code(ledger)
    supplier = new_supplier(engine)
    product = new_product(engine, supplier, price=10000, currency=currency)
    promotion_admin.create_promotion(
        engine, name="10% off the shirt", scope="product", target_id=product.id,
        terms=DiscountTerms("percent", 1000), supplier_id=supplier)
    promotion_admin.create_promotion(
        engine, name="5 off orders over 50", scope="order", target_id=None,
        terms=DiscountTerms("fixed", 500, currency, 5000), supplier_id=None)
    cart, _ = user_cart_with(engine, [(product.variants[0].id, 1)])
    with engine.connect() as connection:
        priced = price_cart(connection, cart.id, now=datetime.now(UTC))
    (line,) = priced.lines
    assert (line.catalogue_discount_minor, line.order_discount_minor) == (1000, 500)
    assert priced.total_minor == 8500


def test_a_supplier_discounts_only_its_own_products_and_admins_only_orders(engine):
    owner, other = new_supplier(engine), new_supplier(engine)
    product = new_product(engine, owner)
    with pytest.raises(ce.ProductNotFound):
        promotion_admin.create_promotion(engine, name="x", scope="product",
                                         target_id=product.id,
                                         terms=DiscountTerms("percent", 100), supplier_id=other)
    with pytest.raises(ce.InvalidCommerceRequest):
        promotion_admin.create_promotion(engine, name="x", scope="order", target_id=None,
                                         terms=DiscountTerms("percent", 100), supplier_id=owner)
    promotion = promotion_admin.create_promotion(
        engine, name="x", scope="variant", target_id=product.variants[0].id,
        terms=DiscountTerms("percent", 100), supplier_id=owner)
    with pytest.raises(ce.PromotionNotFound):
        promotion_admin.set_promotion_active(engine, promotion.id, active=False,
                                             supplier_id=other)
    assert not promotion_admin.set_promotion_active(engine, promotion.id, active=False,
                                                    supplier_id=owner).active
