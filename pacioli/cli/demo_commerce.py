"""`pacioli demo`, the commerce part: a supplier, a reseller's shop, and two orders.

Ada's "Jaipur Block Prints" lists two products; Bruno's "Meera's Picks" resells the kurta
with a margin; Bruno buys through his own shop's link from his wallet, the order ships,
is delivered and one unit comes back; Ada buys with a sandbox card and her order waits to
be packed (its card authorization and ledger hold stand). It calls the services the API
calls, every write under a fixed `demo:` key, so running it again replays instead of
buying twice. It runs after the payments demo, whose users own the two merchants.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import Engine

from pacioli.cli.demo_payments import PRINCIPAL, DemoBalance
from pacioli.commerce import cart_edits, carts, catalog, pricing, resellers
from pacioli.commerce import errors as ce
from pacioli.commerce.checkout_records import CheckoutRecord, CheckoutRequest
from pacioli.commerce.order_services import OrderServices, order_services
from pacioli.gateways.sandbox import SandboxGateway, magic
from pacioli.ledger import Ledger
from pacioli.payments import merchants, users
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.identity_idempotency import WriteKey
from pacioli.payments.instruments import Instruments

IDLE_SECONDS = 30 * 24 * 3600
SHOP_SLUG = "meeras-picks"
ADDRESS = {"name": "Bruno Pacioli", "line1": "4 Via Roma", "city": "Sansepolcro",
           "postal_code": "52037", "country": "IT"}


@dataclass(frozen=True, slots=True)
class CommerceDemoResult:
    story: tuple[str, ...]
    balances: tuple[DemoBalance, ...]


def run_commerce_demo(engine: Engine, ledger: Ledger) -> CommerceDemoResult:
    chart = Chart(engine, ledger)
    gateway = SandboxGateway(engine)
    services = order_services(engine, ledger, chart, gateway)
    ada = _user_id(engine, "ada")
    bruno = _user_id(engine, "bruno")
    supplier = _merchant(engine, "Jaipur Block Prints", ada, "jaipur")
    reseller = _merchant(engine, "Meera's Picks", bruno, "meeras-picks")
    kurta, dupatta = _catalog(engine, supplier, reseller)
    story = ["Jaipur Block Prints lists a kurta (24.99) and a dupatta (12.50), shipping 2.99"
             " under 50.00; Meera's Picks resells the kurta at 3.00 over."]

    first = _checkout(engine, services, bruno, "bruno-kurta",
                      [(kurta, 1, SHOP_SLUG), (dupatta, 2, None)], method="wallet")
    [order] = first.orders
    _deliver(services, supplier, order.id)
    line = next(x for x in order.lines if x.variant_id == dupatta)
    returned = services.refunds.request_return(
        bruno, order.id, [(line.id, 1)], destination="wallet",
        idempotency_key="demo:return:bruno-dupatta").value
    services.refunds.receive_return(supplier, order.id, returned.id)
    story.append(f"Bruno bought the kurta through Meera's Picks and two dupattas from his"
                 f" wallet ({_major(first.total_minor)}); the order shipped (DHL) and was"
                 f" delivered; he returned one dupatta: {_major(returned.amount_minor)}"
                 " back to his wallet.")

    card = Instruments(engine, gateway).link_card(
        user_id=ada, number=magic.CARD_SUCCEEDS, exp_month=12, exp_year=2040, cvc="123",
        idempotency_key="demo:card:ada").value
    second = _checkout(engine, services, ada, "ada-dupatta", [(dupatta, 1, None)],
                       method="card", instrument_id=card.id)
    story.append(f"Ada bought a dupatta with a sandbox card ({_major(second.total_minor)}):"
                 " authorized and held, it waits for the supplier to pack and ship it.")

    balances = [
        _balance(ledger, "Jaipur Block Prints (pending settlement)",
                 chart.merchant_pending_settlement(supplier, "USD")),
        _balance(ledger, "Meera's Picks (pending settlement)",
                 chart.merchant_pending_settlement(reseller, "USD")),
        _balance(ledger, "Platform commission (fee revenue)",
                 chart.platform(Purpose.FEE_REVENUE, "USD")),
        _balance(ledger, "Orders paid, not shipped (escrow, pending)",
                 chart.platform(Purpose.ORDER_ESCROW, "USD"), pending=True),
    ]
    return CommerceDemoResult(tuple(story), tuple(balances))


def _user_id(engine: Engine, name: str) -> UUID:
    """A payments demo user (the same sign-up key replays it)."""
    from pacioli.cli.demo_payments import DEMO_PASSWORD

    return users.sign_up(
        engine, email=f"{name}@example.com", phone=None, password=DEMO_PASSWORD,
        display_name={"ada": "Ada Lovelace", "bruno": "Bruno Pacioli"}[name],
        write_key=WriteKey(PRINCIPAL, f"demo:user:{name}"),
    ).value.id


def _merchant(engine: Engine, name: str, owner: UUID, key: str) -> UUID:
    return merchants.register_merchant(
        engine, name=name, owner_user_id=owner, approved=True,
        write_key=WriteKey(PRINCIPAL, f"demo:merchant:{key}"),
    ).value.merchant.id


def _catalog(engine: Engine, supplier: UUID, reseller: UUID) -> tuple[UUID, UUID]:
    """The supplier's two products and the reseller's shop; (kurta, dupatta) variants."""
    catalog.register_supplier(engine, supplier)
    catalog.set_shipping_rate(engine, supplier, "USD", fee_minor=299, free_above_minor=5000)
    variants = []
    for key, name, price, stock in (("kurta", "Block-print kurta", 2499, 20),
                                    ("dupatta", "Cotton dupatta", 1250, 30)):
        product, _ = catalog.create_product(engine, supplier, catalog.ProductDraft(
            name=name, currency="USD", brand="Jaipur Block Prints", category="apparel",
            variants=(catalog.VariantDraft(sku=f"JBP-{key.upper()}", price_minor=price,
                                           stock_available=stock, size="M"),),
        ), idempotency_key=f"demo:product:{key}")
        variants.append((product.id, product.variants[0].id))
    resellers.register_reseller(engine, reseller)
    with engine.connect() as connection:
        try:
            shop = resellers.shared_catalog(connection, SHOP_SLUG)
        except ce.CatalogNotFound:
            shop = None
    if shop is None:
        shop = resellers.create_catalog(engine, reseller, slug=SHOP_SLUG, title="Meera's Picks")
    resellers.set_catalog_item(engine, reseller, shop.id, variants[0][0], margin_minor=300)
    return variants[0][1], variants[1][1]


def _checkout(engine: Engine, services: OrderServices, user_id: UUID, name: str, items,
              *, method: str, instrument_id: UUID | None = None) -> CheckoutRecord:
    """The user's checkout under `demo:checkout:<name>`, filling the cart the first time."""
    key = f"demo:checkout:{name}"
    done = services.checkout.find(user_id, key)
    if done is not None:
        return done
    cart = carts.user_cart(engine, user_id, idle_seconds=IDLE_SECONDS)
    access = carts.CartAccess(user_id=user_id)
    for variant_id, quantity, slug in items:
        cart = cart_edits.add_item(engine, cart.id, access, variant_id=variant_id,
                                   quantity=quantity, catalog_slug=slug,
                                   idle_seconds=IDLE_SECONDS)
    with engine.connect() as connection:
        priced = pricing.price_cart(connection, cart.id, now=datetime.now(UTC))
    request = CheckoutRequest(
        cart_id=cart.id, cart_version=priced.cart_version,
        expected_total_minor=priced.total_minor, currency=priced.currency,
        payment_method=method, instrument_id=instrument_id, shipping_address=ADDRESS,
    )
    return services.checkout.place(user_id, request, idempotency_key=key).value


def _deliver(services: OrderServices, supplier: UUID, order_id: UUID) -> None:
    """Pack, ship and deliver the order, as far as it has not gone yet."""
    if services.orders.get(order_id, supplier_id=supplier).status == "paid":
        services.orders.pack(supplier, order_id)
    if services.orders.get(order_id, supplier_id=supplier).status == "packed":
        services.orders.ship(supplier, order_id, carrier="DHL", tracking_number="JD014600003")
    if services.orders.get(order_id, supplier_id=supplier).status == "shipped":
        services.orders.deliver(supplier, order_id)


def _balance(ledger: Ledger, owner: str, account_id: UUID, *,
             pending: bool = False) -> DemoBalance:
    account = ledger.get_account(account_id)
    amount = (account.balances.credits_pending - account.balances.debits_pending if pending
              else account.balance_minor)
    return DemoBalance(owner, "USD", amount, 2)


def _major(amount_minor: int) -> str:
    return f"{amount_minor // 100}.{amount_minor % 100:02d} USD"


def print_commerce_demo(result: CommerceDemoResult) -> None:
    from rich.table import Table

    from pacioli.cli.common import console
    from pacioli.ledger import format_minor

    console.print("Commerce demo:")
    for line in result.story:
        console.print(f"  {line}")
    table = Table(title="Marketplace balances", title_justify="left")
    table.add_column("Owner")
    table.add_column("Currency")
    table.add_column("Amount", justify="right")
    for balance in result.balances:
        table.add_row(balance.owner, balance.currency,
                      format_minor(balance.available_minor, balance.scale))
    console.print(table)
