"""History and spending against the real flows: every flow's records in one list, with
directions, counterparties' names, categories, filters and cursors."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from pacioli.gateways.billers.sandbox import SandboxBillerRegistry
from pacioli.gateways.fx import SandboxFxRates
from pacioli.ledger import credit, debit
from pacioli.ledger.domain import errors as e
from pacioli.ledger.service.reconcile import check_ledger
from pacioli.payments import offer_errors as oe
from pacioli.payments.bills import BillPayments
from pacioli.payments.chart import Chart, Purpose
from pacioli.payments.fx import InternationalTransfers
from pacioli.payments.history import History, HistoryFilter, category_of_mcc, parse_month
from pacioli.payments.merchants import merchants
from pacioli.payments.offers import OfferRule, Offers, merchant_funder
from pacioli.payments.p2p import P2P
from pacioli.payments.qr_payments import MerchantProfile, QrPayments
from pacioli.payments.users import users


class Story:
    """Ada and Bob pay each other, two shops, a biller, and send money abroad."""

    def __init__(self, engine, ledger) -> None:
        self.engine, self.ledger = engine, ledger
        self.chart = Chart(engine, ledger)
        scales = {asset.code: asset.scale for asset in ledger.list_assets()}

        def scale_of(code):
            if code not in scales:
                raise e.UnknownAsset(code)
            return scales[code]

        self.registry = SandboxBillerRegistry(engine)
        self.offers = Offers(engine, ledger, self.chart)
        self.qr = QrPayments(engine, ledger, self.chart, scale_of=scale_of,
                             on_paid=self.offers.reward_qr_payment)
        self.p2p = P2P(engine, ledger, self.chart)
        self.bills = BillPayments(engine, ledger, self.chart, self.registry)
        self.fx = InternationalTransfers(engine, ledger, self.chart, SandboxFxRates(),
                                         scale_of=scale_of)
        billers = {info.id: info for info in self.registry.list_billers()}
        self.history = History(engine, biller_of=billers.get)

    def person(self, name: str, funds_minor: int) -> uuid.UUID:
        user_id = uuid.uuid4()
        with self.engine.begin() as connection:
            connection.execute(users.insert().values(
                id=user_id, email=f"{user_id.hex}@example.com", display_name=name,
                password_hash="not used here", created_at=datetime.now(UTC)))
        self._fund(self.chart.wallet(user_id, "USD"), funds_minor)
        return user_id

    def shop(self, name: str, category_code: str, owner: uuid.UUID) -> MerchantProfile:
        merchant_id = uuid.uuid4()
        with self.engine.begin() as connection:
            connection.execute(merchants.insert().values(
                id=merchant_id, name=name, owner_user_id=owner, status="approved",
                created_at=datetime.now(UTC)))
        return MerchantProfile(merchant_id, name, "Lisbon", "PT", category_code)

    def _fund(self, account_id, amount_minor: int) -> None:
        self.ledger.transfer(
            [debit(self.chart.platform(Purpose.BANK_SETTLEMENT, "USD"), amount_minor),
             credit(account_id, amount_minor)],
            idempotency_key=uuid.uuid4().hex,
        )

    def pay_shop(self, user_id, shop: MerchantProfile, amount_minor: int):
        payload = self.qr.create_code(shop, currency="USD",
                                      idempotency_key=uuid.uuid4().hex).value.payload
        return self.qr.pay(payer_user_id=user_id, payload=payload, amount_minor=amount_minor,
                           idempotency_key=uuid.uuid4().hex).value

    def send(self, payer, payee, amount_minor: int, note: str = ""):
        return self.p2p.send(payer_user_id=payer, payee_user_id=payee, currency="USD",
                             amount_minor=amount_minor, note=note,
                             idempotency_key=uuid.uuid4().hex).value


@pytest.fixture(scope="module")
def story(engine):
    """One story for the module's tests, which only read it."""
    from pacioli.ledger import Ledger

    with Ledger(engine) as ledger:
        s = Story(engine, ledger)
        # Enough for any sandbox bill (at most 499.99) after the other payments.
        s.ada, s.bob = s.person("Ada", 2_000_00), s.person("Bob", 100_00)
        s.cafe = s.shop("Cafe Lisboa", "5814", owner=s.bob)
        s.taxi = s.shop("Taxi Co", "4121", owner=s.bob)
        s._fund(s.chart.merchant_balance(s.cafe.id, "USD"), 10_00)
        s.offers.fund_pool(merchant_funder(s.cafe.id), currency="USD", amount_minor=10_00,
                           idempotency_key="pool")
        s.offers.create_offer(merchant_funder(s.cafe.id),
                              OfferRule(currency="USD", cashback_bps=500, cap_minor=5_00),
                              idempotency_key="offer")
        s.lunch = s.send(s.ada, s.bob, 10_00, "lunch")
        s.back = s.send(s.bob, s.ada, 3_00, "coffee")
        s.coffee = s.pay_shop(s.ada, s.cafe, 20_00)
        s.ride = s.pay_shop(s.ada, s.taxi, 15_00)
        reference = f"OKAY-{uuid.uuid4().hex[:8]}"
        bill = s.bills.fetch_bill("sandbox_power", reference)
        s.bill = s.bills.pay_bill(user_id=s.ada, biller_id="sandbox_power",
                                  customer_reference=reference, amount_minor=bill.amount_minor,
                                  currency="USD", idempotency_key=uuid.uuid4().hex).value
        s.bill = s.bills.refresh_bill_payment(s.ada, s.bill.id)
        quote = s.fx.quote(user_id=s.ada, recipient_user_id=s.bob, source_currency="USD",
                           target_currency="EUR", source_amount_minor=50_00,
                           idempotency_key=uuid.uuid4().hex).value
        s.abroad = s.fx.execute(user_id=s.ada, quote_id=quote.id,
                                idempotency_key=uuid.uuid4().hex).value
        with pytest.raises(e.InsufficientFunds):
            s.send(s.ada, s.bob, 10_000_00, "too much")
        s.failed_p2p_id = s.p2p.list_payments(s.ada, limit=1)[0].id
        s.report = check_ledger(engine)
        yield s


def summary(entries):
    return [(x.kind, x.direction, x.amount_minor, x.currency, x.counterparty_name, x.category,
             x.status) for x in entries]


def test_a_users_history_lists_every_flow_newest_first_with_names_and_categories(story):
    s = story
    entries = s.history.user_entries(s.ada)

    assert summary(entries) == [
        ("p2p", "out", 10_000_00, "USD", "Bob", "transfers", "failed"),
        ("fx_transfer", "out", 50_00, "USD", "Bob", "transfers", "succeeded"),
        ("bill_payment", "out", s.bill.amount_minor, "USD", "Sandbox Power & Light",
         "bills/electricity", "succeeded"),
        ("qr_payment", "out", 15_00, "USD", "Taxi Co", "transport", "succeeded"),
        ("cashback", "in", 1_00, "USD", "Cafe Lisboa", "cashback", "succeeded"),
        ("qr_payment", "out", 20_00, "USD", "Cafe Lisboa", "food", "succeeded"),
        ("p2p", "in", 3_00, "USD", "Bob", "transfers", "succeeded"),
        ("p2p", "out", 10_00, "USD", "Bob", "transfers", "succeeded"),
    ]
    assert entries[-1].note == "lunch" and entries[-1].id == s.lunch.id
    assert entries[4].counterparty_kind == "merchant"
    assert entries[4].counterparty_id == str(s.cafe.id)
    assert s.report.clean, s.report.to_dict()


def test_the_other_party_sees_the_mirror_and_not_the_failed_payment(story):
    s = story
    entries = s.history.user_entries(s.bob)

    assert summary(entries) == [
        ("fx_transfer", "in", s.abroad.target_amount_minor, "EUR", "Ada", "transfers",
         "succeeded"),
        ("p2p", "out", 3_00, "USD", "Ada", "transfers", "succeeded"),
        ("p2p", "in", 10_00, "USD", "Ada", "transfers", "succeeded"),
    ]
    assert s.failed_p2p_id not in {x.id for x in entries}


def test_history_filters_by_kind_direction_currency_status_and_time(story):
    s = story
    h = s.history

    def kinds(wanted, user=s.ada):
        return [(x.kind, x.direction) for x in h.user_entries(user, wanted)]

    assert kinds(HistoryFilter(kinds=frozenset({"p2p"}))) == [("p2p", "out"), ("p2p", "in"),
                                                              ("p2p", "out")]
    assert kinds(HistoryFilter(direction="in")) == [("cashback", "in"), ("p2p", "in")]
    assert kinds(HistoryFilter(currency="EUR"), s.bob) == [("fx_transfer", "in")]
    assert kinds(HistoryFilter(status="failed")) == [("p2p", "out")]
    middle = h.user_entries(s.ada)[3].occurred_at  # the taxi ride
    assert kinds(HistoryFilter(occurred_from=middle, occurred_to=middle + timedelta(
        microseconds=1))) == [("qr_payment", "out")]
    assert kinds(HistoryFilter(occurred_to=datetime(2000, 1, 1, tzinfo=UTC))) == []


@pytest.mark.parametrize("page_size", [1, 2, 3, 7])
def test_walking_the_cursor_gives_every_entry_once_in_order(story, page_size):
    s = story
    everything = s.history.user_entries(s.ada)
    walked, cursor = [], None
    while True:
        page = s.history.user_entries(s.ada, limit=page_size, starting_after=cursor)
        walked.extend(page)
        if len(page) < page_size:
            break
        cursor = page[-1].cursor

    assert [x.id for x in walked] == [x.id for x in everything]


def test_a_bad_cursor_is_refused(story):
    with pytest.raises(oe.InvalidHistoryQuery):
        story.history.user_entries(story.ada, starting_after="not-a-cursor")


def test_a_self_transfer_abroad_is_listed_once_out_and_once_in_across_pages(engine, ledger):
    s = Story(engine, ledger)
    ada = s.person("Ada", 100_00)
    quote = s.fx.quote(user_id=ada, recipient_user_id=ada, source_currency="USD",
                       target_currency="EUR", source_amount_minor=10_00,
                       idempotency_key=uuid.uuid4().hex).value
    s.fx.execute(user_id=ada, quote_id=quote.id, idempotency_key=uuid.uuid4().hex)

    first = s.history.user_entries(ada, HistoryFilter(kinds=frozenset({"fx_transfer"})),
                                   limit=1)
    second = s.history.user_entries(ada, HistoryFilter(kinds=frozenset({"fx_transfer"})),
                                    limit=1, starting_after=first[0].cursor)

    assert [(x.direction, x.currency) for x in first + second] == [("out", "USD"),
                                                                    ("in", "EUR")]


def test_a_merchants_history_shows_its_payments_cashback_and_pool_funding_only(story):
    s = story
    cafe = s.history.merchant_entries(s.cafe.id)
    taxi = s.history.merchant_entries(s.taxi.id)

    assert [(x.kind, x.direction, x.amount_minor, x.fee_minor, x.counterparty_name)
            for x in cafe] == [
        ("cashback", "out", 1_00, 0, "Ada"),
        ("qr_payment", "in", 20_00, s.coffee.fee_minor, "Ada"),
        ("promotion_funding", "out", 10_00, 0, "Pacioli promotions pool"),
    ]
    assert [(x.kind, x.amount_minor) for x in taxi] == [("qr_payment", 15_00)]
    assert s.history.merchant_entries(uuid.uuid4()) == []
    assert s.history.user_entries(uuid.uuid4()) == []


def test_monthly_spending_sums_what_succeeded_per_category(story):
    s = story
    month = parse_month(s.lunch.created_at.strftime("%Y-%m"))

    [ada] = s.history.spending(s.ada, month_from=month, month_to=month)
    [bob] = s.history.spending(s.bob, month_from=month, month_to=month)

    [usd] = ada.currencies
    assert ada.month == month.strftime("%Y-%m")
    assert {c.category: c.amount_minor for c in usd.categories} == {
        "bills/electricity": s.bill.amount_minor, "food": 20_00, "transport": 15_00,
        "transfers": 10_00 + 50_00,
    }
    assert usd.total_minor == s.bill.amount_minor + 20_00 + 15_00 + 60_00
    assert [(c.currency, c.total_minor) for c in bob.currencies] == [("USD", 3_00)]


def test_spending_covers_every_month_of_a_range_and_refuses_a_bad_one(story):
    s = story
    this_month = parse_month(s.lunch.created_at.strftime("%Y-%m"))
    earlier = parse_month("2020-01")

    months = s.history.spending(s.ada, month_from=parse_month("2019-11"), month_to=earlier)

    assert [(m.month, m.currencies) for m in months] == [("2019-11", []), ("2019-12", []),
                                                         ("2020-01", [])]
    with pytest.raises(oe.InvalidHistoryQuery):
        s.history.spending(s.ada, month_from=this_month, month_to=earlier)
    with pytest.raises(oe.InvalidHistoryQuery):
        s.history.spending(s.ada, month_from=parse_month("2000-01"), month_to=this_month)
    with pytest.raises(oe.InvalidHistoryQuery):
        parse_month("2026-13")


@pytest.mark.parametrize(("mcc", "category"), [
    ("5814", "food"), ("5411", "food"), ("4121", "transport"), ("5541", "transport"),
    ("4900", "bills"), ("5999", "shopping"), ("5651", "shopping"), ("8011", "other"),
    (None, "other"),
])
def test_merchant_category_codes_map_to_a_few_categories(mcc, category):
    assert category_of_mcc(mcc) == category


def test_top_ups_appear_with_the_card_they_came_from(engine, ledger):
    from tests.integration.test_topups import make_world

    funding = make_world(engine, ledger)
    user_id = uuid.uuid4()
    card = funding.card(user_id)
    top_up = funding.top_up(user_id, card, 25_00).value
    history = History(engine, biller_of=lambda biller_id: None)

    [entry] = history.user_entries(user_id)

    assert (entry.kind, entry.direction, entry.amount_minor, entry.id) == (
        "top_up", "in", 25_00, top_up.id)
    assert entry.status == top_up.status and entry.category == "top_up"
    assert entry.counterparty_kind == "instrument"
    assert entry.counterparty_name.endswith("ending 4242"), entry.counterparty_name
