"""Carts: edits with version checks, availability, save for later, guest carts merged into
users' carts, idle expiry, emptying after an order, reseller attribution and tax."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

import pytest

from pacioli.commerce import cart_edits, carts, catalog, resellers, taxes
from pacioli.commerce import errors as ce
from pacioli.commerce.cart_view import view_cart
from pacioli.commerce.carts import CartAccess
from pacioli.commerce.pricing import price_cart
from pacioli.ledger.domain.ids import uuid7
from tests.integration.commerce_support import (
    IDLE_S,
    age_cart,
    new_product,
    new_supplier,
    one_variant,
    user_cart_with,
)


def priced(engine, cart_id):
    with engine.connect() as connection:
        return price_cart(connection, cart_id, now=datetime.now(UTC))


def test_a_users_cart_is_the_same_on_every_call(engine):
    user_id = uuid7()
    first = carts.user_cart(engine, user_id, idle_seconds=IDLE_S)
    assert carts.user_cart(engine, user_id, idle_seconds=IDLE_S).id == first.id


def test_adding_twice_adds_to_the_line_and_bumps_the_version(engine):
    variant = one_variant(engine, stock=10, price=250)
    cart, access = user_cart_with(engine, [(variant, 2), (variant, 3)])
    (line,) = cart.items
    assert line.quantity == 5
    assert cart.version == 3
    assert priced(engine, cart.id).total_minor == 1250


def test_bad_additions_change_nothing(engine):
    variant = one_variant(engine, stock=3)
    cart, access = user_cart_with(engine, [(variant, 2)])
    for kwargs, error in (
        ({"variant_id": variant, "quantity": 0}, ce.InvalidCommerceRequest),
        ({"variant_id": variant, "quantity": 2}, ce.OutOfStock),  # 4 > 3 in stock
        ({"variant_id": uuid.uuid4(), "quantity": 1}, ce.VariantNotFound),
        ({"variant_id": variant, "quantity": 1, "catalog_slug": "no-such-shop"},
         ce.CatalogNotFound),
    ):
        with pytest.raises(error):
            cart_edits.add_item(engine, cart.id, access, idle_seconds=IDLE_S, **kwargs)
    with engine.connect() as connection:
        after = carts.get_cart(connection, cart.id)
    assert after.version == cart.version
    assert [item.quantity for item in after.items] == [2]


def test_a_cart_holds_one_currency(engine):
    dollars, euros = one_variant(engine), one_variant(engine, currency="EUR")
    cart, access = user_cart_with(engine, [(dollars, 1)])
    with pytest.raises(ce.CurrencyMismatch):
        cart_edits.add_item(engine, cart.id, access, variant_id=euros, quantity=1,
                            idle_seconds=IDLE_S)
    cart = cart_edits.remove_item(engine, cart.id, access, cart.items[0].id,
                                  expected_version=cart.version, idle_seconds=IDLE_S)
    cart = cart_edits.add_item(engine, cart.id, access, variant_id=euros, quantity=1,
                               idle_seconds=IDLE_S)
    assert cart.currency == "EUR"


def test_a_stale_version_is_refused_and_changes_nothing(engine):
    variant = one_variant(engine, stock=10)
    cart, access = user_cart_with(engine, [(variant, 1)])
    line_id = cart.items[0].id
    cart_edits.set_quantity(engine, cart.id, access, line_id, quantity=4,
                            expected_version=cart.version, idle_seconds=IDLE_S)
    with pytest.raises(ce.StaleCart) as refused:
        cart_edits.set_quantity(engine, cart.id, access, line_id, quantity=2,
                                expected_version=cart.version, idle_seconds=IDLE_S)
    assert refused.value.code == "stale_cart_version"
    with engine.connect() as connection:
        assert carts.get_cart(connection, cart.id).items[0].quantity == 4


def test_two_devices_editing_one_version_do_not_both_win(engine):
    variant = one_variant(engine, stock=50)
    cart, access = user_cart_with(engine, [(variant, 1)])
    line_id = cart.items[0].id
    outcomes: list[str] = []
    start = threading.Barrier(6)

    def edit(quantity: int) -> None:
        start.wait()
        try:
            cart_edits.set_quantity(engine, cart.id, access, line_id, quantity=quantity,
                                    expected_version=cart.version, idle_seconds=IDLE_S)
            outcomes.append(f"set {quantity}")
        except ce.StaleCart:
            outcomes.append("stale")

    threads = [threading.Thread(target=edit, args=(q,)) for q in range(2, 8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (won,) = [outcome for outcome in outcomes if outcome != "stale"]
    with engine.connect() as connection:
        after = carts.get_cart(connection, cart.id)
    assert after.items[0].quantity == int(won.split()[1])
    assert after.version == cart.version + 1


def test_someone_elses_cart_is_not_found(engine):
    variant = one_variant(engine)
    cart, _ = user_cart_with(engine, [(variant, 1)])
    stranger = CartAccess(user_id=uuid7())
    with pytest.raises(ce.CartNotFound):
        cart_edits.add_item(engine, cart.id, stranger, variant_id=variant, quantity=1,
                            idle_seconds=IDLE_S)
    with engine.connect() as connection, pytest.raises(ce.CartNotFound):
        carts.visible_cart(connection, cart.id, stranger)


def test_saved_for_later_lines_are_kept_but_not_priced(engine):
    first, second = one_variant(engine, price=1000), one_variant(engine, price=300)
    cart, access = user_cart_with(engine, [(first, 1), (second, 2)])
    saved_line = cart.items[1].id
    cart = cart_edits.set_saved_for_later(engine, cart.id, access, saved_line, saved=True,
                                          expected_version=cart.version, idle_seconds=IDLE_S)
    assert priced(engine, cart.id).total_minor == 1000
    cart = cart_edits.set_saved_for_later(engine, cart.id, access, saved_line, saved=False,
                                          expected_version=cart.version, idle_seconds=IDLE_S)
    assert priced(engine, cart.id).total_minor == 1600


def test_lines_whose_stock_or_product_went_away_show_unavailable(engine):
    supplier = new_supplier(engine)
    product = new_product(engine, supplier, stock=5, price=700)
    kept = one_variant(engine, price=100)
    variant = product.variants[0].id
    cart, _ = user_cart_with(engine, [(variant, 4), (kept, 1)])
    catalog.set_stock(engine, supplier, variant, available=2)
    result = priced(engine, cart.id)
    assert result.unavailable == (cart.items[0].id,)
    assert result.total_minor == 100
    catalog.set_stock(engine, supplier, variant, available=5)
    catalog.update_product(engine, supplier, product.id, {"active": False})
    with engine.connect() as connection:
        view = view_cart(connection, cart.id, now=datetime.now(UTC))
    assert [line.available for line in view.lines] == [False, True]
    assert view.lines[0].name == "Linen shirt"


def test_the_cart_shows_the_current_price(engine):
    supplier = new_supplier(engine)
    variant = new_product(engine, supplier, price=1000).variants[0].id
    cart, _ = user_cart_with(engine, [(variant, 2)])
    catalog.update_variant(engine, supplier, variant, {"price_minor": 1250})
    assert priced(engine, cart.id).total_minor == 2500


def test_a_guest_cart_merges_into_the_users_cart(engine):
    both, guest_only = one_variant(engine, stock=20), one_variant(engine, stock=20)
    user_id = uuid7()
    mine, mine_access = user_cart_with(engine, [(both, 1)], user_id=user_id)
    guest = carts.new_guest_cart(engine)
    guest_access = CartAccess(guest_token=guest.token)
    for variant, quantity in ((both, 2), (guest_only, 3)):
        cart_edits.add_item(engine, guest.cart.id, guest_access, variant_id=variant,
                            quantity=quantity, idle_seconds=IDLE_S)
    merged = cart_edits.merge_guest_cart(engine, user_id, guest.token, idle_seconds=IDLE_S)
    assert merged.cart.id == mine.id
    assert merged.skipped_line_ids == ()
    assert sorted((i.variant_id, i.quantity) for i in merged.cart.items) == sorted(
        [(both, 3), (guest_only, 3)])
    with pytest.raises(ce.CartNotFound):
        carts.guest_cart(engine, guest.token, idle_seconds=IDLE_S)
    with pytest.raises(ce.CartNotFound):
        cart_edits.merge_guest_cart(engine, user_id, guest.token, idle_seconds=IDLE_S)


def test_a_merge_leaves_lines_of_another_currency_behind(engine):
    dollars, euros = one_variant(engine), one_variant(engine, currency="EUR")
    user_id = uuid7()
    user_cart_with(engine, [(dollars, 1)], user_id=user_id)
    guest = carts.new_guest_cart(engine)
    cart = cart_edits.add_item(engine, guest.cart.id, CartAccess(guest_token=guest.token),
                               variant_id=euros, quantity=1, idle_seconds=IDLE_S)
    merged = cart_edits.merge_guest_cart(engine, user_id, guest.token, idle_seconds=IDLE_S)
    assert merged.skipped_line_ids == (cart.items[0].id,)
    assert [item.variant_id for item in merged.cart.items] == [dollars]


def test_an_idle_cart_expires_and_the_user_gets_a_new_one(engine):
    variant = one_variant(engine)
    cart, access = user_cart_with(engine, [(variant, 1)])
    age_cart(engine, cart.id, IDLE_S + 60)
    with pytest.raises(ce.CartNotActive):
        cart_edits.add_item(engine, cart.id, access, variant_id=variant, quantity=1,
                            idle_seconds=IDLE_S)
    fresh = carts.user_cart(engine, access.user_id, idle_seconds=IDLE_S)
    assert fresh.id != cart.id
    assert fresh.items == ()


def test_an_idle_guest_cart_is_gone_and_does_not_merge(engine):
    variant = one_variant(engine)
    guest = carts.new_guest_cart(engine)
    cart_edits.add_item(engine, guest.cart.id, CartAccess(guest_token=guest.token),
                        variant_id=variant, quantity=1, idle_seconds=IDLE_S)
    age_cart(engine, guest.cart.id, IDLE_S + 60)
    with pytest.raises(ce.CartNotFound):
        carts.guest_cart(engine, guest.token, idle_seconds=IDLE_S)
    with pytest.raises(ce.CartNotFound):
        cart_edits.merge_guest_cart(engine, uuid7(), guest.token, idle_seconds=IDLE_S)


def test_the_idle_cart_job_expires_untouched_carts(engine):
    variant = one_variant(engine)
    old, _ = user_cart_with(engine, [(variant, 1)])
    recent, _ = user_cart_with(engine, [(variant, 1)])
    age_cart(engine, old.id, 10 * IDLE_S)
    assert carts.expire_idle_carts(engine, datetime.now(UTC), idle_seconds=IDLE_S) >= 1
    with engine.connect() as connection:
        assert carts.get_cart(connection, old.id).status == "expired"
        assert carts.get_cart(connection, recent.id).status == "active"


def test_emptying_after_an_order_keeps_saved_lines_and_checks_the_version(engine):
    first, second = one_variant(engine), one_variant(engine)
    cart, access = user_cart_with(engine, [(first, 1), (second, 1)])
    cart = cart_edits.set_saved_for_later(engine, cart.id, access, cart.items[1].id, saved=True,
                                          expected_version=cart.version, idle_seconds=IDLE_S)
    with engine.begin() as connection, pytest.raises(ce.StaleCart):
        carts.empty_cart(connection, cart.id, version=cart.version - 1)
    with engine.begin() as connection:
        carts.empty_cart(connection, cart.id, version=cart.version)
        after = carts.get_cart(connection, cart.id)
    assert [(i.variant_id, i.saved_for_later) for i in after.items] == [(second, True)]
    assert after.version == cart.version + 1
    with engine.begin() as connection, pytest.raises(ce.CartNotFound):
        carts.empty_cart(connection, uuid.uuid4(), version=1)


def test_a_sale_through_a_resellers_catalog_carries_the_reseller_and_margin(engine):
    supplier = new_supplier(engine)
    product = new_product(engine, supplier, price=1000)
    reseller = uuid7()
    resellers.register_reseller(engine, reseller)
    slug = "shop-" + uuid.uuid4().hex[:10]
    shop = resellers.create_catalog(engine, reseller, slug=slug, title="Asha's picks")
    resellers.set_catalog_item(engine, reseller, shop.id, product.id, margin_minor=175)
    cart, access = user_cart_with(engine, [])
    cart = cart_edits.add_item(engine, cart.id, access, variant_id=product.variants[0].id,
                               quantity=2, catalog_slug=slug, idle_seconds=IDLE_S)
    (line,) = priced(engine, cart.id).lines
    assert (line.reseller_id, line.reseller_margin_minor, line.unit_price_minor) == (
        reseller, 175, 1175)
    assert line.supplier_unit_price_minor == 1000
    resellers.remove_catalog_item(engine, reseller, shop.id, product.id)
    assert priced(engine, cart.id).unavailable == (cart.items[0].id,)


def test_adding_through_a_catalog_that_does_not_list_the_product_is_refused(engine):
    variant = one_variant(engine)
    reseller = uuid7()
    resellers.register_reseller(engine, reseller)
    slug = "shop-" + uuid.uuid4().hex[:10]
    resellers.create_catalog(engine, reseller, slug=slug, title="Empty")
    cart, access = user_cart_with(engine, [])
    with pytest.raises(ce.ProductNotInCatalog):
        cart_edits.add_item(engine, cart.id, access, variant_id=variant, quantity=1,
                            catalog_slug=slug, idle_seconds=IDLE_S)


def test_tax_follows_the_rate_table_for_the_category_and_region(engine):
    category, region = "cat-" + uuid.uuid4().hex[:8], "reg-" + uuid.uuid4().hex[:8]
    taxes.set_tax_rate(engine, category, "*", 500)
    taxes.set_tax_rate(engine, category, region, 1000)
    supplier = new_supplier(engine)
    variant = new_product(engine, supplier, price=1000, category=category).variants[0].id
    cart, access = user_cart_with(engine, [(variant, 1)])
    assert priced(engine, cart.id).tax_minor == 50
    cart = cart_edits.set_region(engine, cart.id, access, region=region,
                                 expected_version=cart.version, idle_seconds=IDLE_S)
    assert priced(engine, cart.id).tax_minor == 100
    taxes.remove_tax_rate(engine, category, region)
    assert priced(engine, cart.id).tax_minor == 50
