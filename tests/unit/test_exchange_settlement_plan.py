"""Settlement batch planning: which fills and marks a batch covers, and its ledger items."""

from __future__ import annotations

import itertools
import uuid

import pytest

from pacioli.ledger.domain.errors import InvariantBroken
from pacioli.matching.settlement_plan import ITEMS_MAX, choose_cut, plan_batch, settle_order
from pacioli.matching.settlement_records import (
    CommandSpan,
    FillRecord,
    HoldRecord,
    Mark,
    MarketAccounts,
)

ADA, BOB, CY = (uuid.UUID(int=n) for n in (1, 2, 3))
CLEARING_BTC, CLEARING_USD, FEES, ROUNDING = (uuid.UUID(int=n) for n in (101, 102, 103, 104))


def wallet(user: uuid.UUID, asset: str) -> uuid.UUID:
    return uuid.uuid5(user, asset)


ACCOUNTS = MarketAccounts(
    base="BTC", quote="USD", wallet=wallet, clearing_base=CLEARING_BTC,
    clearing_quote=CLEARING_USD, fee=FEES, rounding=ROUNDING,
)


def ids():
    counter = itertools.count(1000)
    return lambda: uuid.UUID(int=next(counter))


def hold(order, amount, asset, user, seq=1):
    return HoldRecord(uuid.uuid4(), order, asset, amount, wallet(user, asset),
                      CLEARING_USD if asset == "USD" else CLEARING_BTC, seq)


def fill(no, seq, taker, maker, *, taker_user, maker_user, side="buy", size=10_000, quote=500,
         taker_fee=1, maker_fee=1, buyer_rounding=0):
    return FillRecord(no, seq, size, quote, taker, maker, taker_user, maker_user, side,
                      taker_fee, maker_fee, buyer_rounding)


def net_by_account(plan):
    net = {}
    for transfer in plan.transfers:
        assert len(transfer) <= 64
        accounts = [leg.account_id for leg in transfer]
        assert len(accounts) == len(set(accounts)), "no account twice in one transfer"
        for leg in transfer:
            sign = 1 if leg.direction == "credit" else -1
            net[leg.account_id] = net.get(leg.account_id, 0) + sign * leg.amount
    return net


def test_a_fill_posts_both_holds_rehold_the_open_rest_and_moves_the_trade():
    buy, sell = uuid.uuid4(), uuid.uuid4()
    buy_hold, sell_hold = hold(buy, 1_000, "USD", ADA), hold(sell, 30_000, "BTC", BOB)
    f = fill(1, 2, buy, sell, taker_user=ADA, maker_user=BOB, quote=500, taker_fee=1,
             maker_fee=1)
    spans = [CommandSpan(2, (f,), (Mark(2, buy, 0, True), Mark(2, sell, 20_000, False)))]
    cut = choose_cut(spans, last_fill_no=0, marks_through_seq=1, hold_counts={})
    plan = plan_batch(cut, first_fill_no=1, holds={buy: [buy_hold], sell: [sell_hold]},
                      accounts=ACCOUNTS, new_id=ids())

    by_order = {o.order: o for o in plan.orders}
    # The buy (done) posts quote amount + taker fee and releases the rest: no re-hold.
    assert by_order[buy].posts == ((buy_hold.id, 501),) and by_order[buy].rehold is None
    # The sell posts its size and re-holds exactly its open rest.
    assert by_order[sell].posts == ((sell_hold.id, 10_000),)
    assert by_order[sell].rehold.amount == 20_000
    assert net_by_account(plan) == {
        wallet(ADA, "BTC"): 10_000, wallet(BOB, "USD"): 499, FEES: 2,
        CLEARING_USD: -501, CLEARING_BTC: -10_000,
    }
    assert plan.item_count == 1 + 2 + 1 and plan.fill_count == 1


def test_an_order_that_only_rests_needs_no_item():
    order = uuid.uuid4()
    h = hold(order, 1_000, "USD", ADA)
    assert settle_order(order, [h], 0, Mark(1, order, 1_000, False), ids()) is None


def test_a_cancel_voids_the_hold():
    order = uuid.uuid4()
    h = hold(order, 1_000, "USD", ADA)
    settlement = settle_order(order, [h], 0, Mark(3, order, 0, True), ids())
    assert settlement.posts == ((h.id, 0),) and settlement.rehold is None


def test_price_improvement_releases_what_the_order_no_longer_needs():
    order = uuid.uuid4()
    h = hold(order, 1_000, "USD", ADA)
    settlement = settle_order(order, [h], 300, Mark(3, order, 600, False), ids())
    assert settlement.posts == ((h.id, 300),) and settlement.rehold.amount == 600


def test_without_its_mark_an_order_keeps_everything_it_did_not_spend():
    order = uuid.uuid4()
    h = hold(order, 1_000, "USD", ADA)
    settlement = settle_order(order, [h], 300, None, ids())
    assert settlement.rehold.amount == 700


def test_the_rounding_account_pays_what_the_log_did_not_charge_the_buyer():
    buy, sell = uuid.uuid4(), uuid.uuid4()
    buy_hold, sell_hold = hold(buy, 500, "USD", ADA), hold(sell, 10_000, "BTC", BOB)
    f = fill(1, 2, buy, sell, taker_user=ADA, maker_user=BOB, quote=500, taker_fee=1,
             buyer_rounding=1)
    spans = [CommandSpan(2, (f,), (Mark(2, buy, 0, True), Mark(2, sell, 0, True)))]
    cut = choose_cut(spans, last_fill_no=0, marks_through_seq=1, hold_counts={})
    plan = plan_batch(cut, first_fill_no=1, holds={buy: [buy_hold], sell: [sell_hold]},
                      accounts=ACCOUNTS, new_id=ids())
    by_order = {o.order: o for o in plan.orders}
    assert by_order[buy].shortfall == 1 and by_order[buy].posts == ((buy_hold.id, 500),)
    assert net_by_account(plan)[ROUNDING] == -1
    assert net_by_account(plan)[CLEARING_USD] == -500
    assert net_by_account(plan)[wallet(BOB, "USD")] == 499  # the seller gets it all


def test_an_order_charged_more_than_it_holds_is_a_bug():
    order = uuid.uuid4()
    with pytest.raises(InvariantBroken):
        settle_order(order, [hold(order, 500, "USD", ADA)], 501, None, ids())


def test_a_sell_whose_hold_falls_short_is_a_bug():
    buy, sell = uuid.uuid4(), uuid.uuid4()
    f = fill(1, 2, buy, sell, taker_user=ADA, maker_user=BOB)
    spans = [CommandSpan(2, (f,), ())]
    cut = choose_cut(spans, last_fill_no=0, marks_through_seq=1, hold_counts={})
    with pytest.raises(InvariantBroken):
        plan_batch(cut, first_fill_no=1, holds={
            buy: [hold(buy, 1_000, "USD", ADA)], sell: [hold(sell, 5_000, "BTC", BOB)],
        }, accounts=ACCOUNTS, new_id=ids())


def test_posts_spread_over_several_holds_oldest_first_and_a_hold_left_unused_is_voided():
    order = uuid.uuid4()
    first, second, third = (hold(order, 100, "USD", ADA, seq) for seq in (1, 2, 3))
    settlement = settle_order(order, [third, first, second], 150, Mark(4, order, 0, True), ids())
    assert settlement.posts == ((first.id, 100), (second.id, 50), (third.id, 0))


def test_holds_created_after_the_cut_are_left_alone():
    buy, sell = uuid.uuid4(), uuid.uuid4()
    early, late = hold(buy, 1_000, "USD", ADA, 1), hold(buy, 400, "USD", ADA, 9)
    f = fill(1, 2, buy, sell, taker_user=ADA, maker_user=BOB, quote=500, taker_fee=1)
    cut = choose_cut([CommandSpan(2, (f,), ())], last_fill_no=0, marks_through_seq=1,
                     hold_counts={})
    plan = plan_batch(cut, first_fill_no=1, holds={
        buy: [early, late], sell: [hold(sell, 10_000, "BTC", BOB)],
    }, accounts=ACCOUNTS, new_id=ids())
    by_order = {o.order: o for o in plan.orders}
    assert by_order[buy].posts == ((early.id, 501),)


def test_a_cut_stops_before_the_ledger_item_limit_even_inside_a_command():
    taker = uuid.uuid4()
    makers = [uuid.uuid4() for _ in range(100)]
    fills = tuple(
        fill(n + 1, 2, taker, maker, taker_user=ADA, maker_user=uuid.uuid4())
        for n, maker in enumerate(makers)
    )
    span = CommandSpan(2, fills, tuple(Mark(2, m, 0, True) for m in [taker, *makers]))
    cut = choose_cut([span], last_fill_no=0, marks_through_seq=1, hold_counts={})
    assert 0 < len(cut.fills) < 100 and cut.marks == [] and cut.marks_through_seq == 1
    assert cut.holds_through_seq == 2
    # The next cut resumes after it and, the fills done, takes the command's marks.
    rest = choose_cut([span], last_fill_no=cut.last_fill_no, marks_through_seq=1,
                      hold_counts={})
    assert rest.fills[0].fill_no == cut.last_fill_no + 1


def test_a_planned_batch_fits_the_ledger_limit_and_balances_per_asset():
    taker = uuid.uuid4()
    users = [uuid.uuid4() for _ in range(200)]
    makers = [uuid.uuid4() for _ in range(200)]
    fills = tuple(
        fill(n + 1, 2, taker, maker, taker_user=ADA, maker_user=user, side="sell")
        for n, (maker, user) in enumerate(zip(makers, users, strict=True))
    )
    holds = {taker: [hold(taker, 10_000 * 200, "BTC", ADA)]}
    holds |= {m: [hold(m, 1_000, "USD", u)] for m, u in zip(makers, users, strict=True)}
    span = CommandSpan(2, fills, ())
    position, marks_through, settled, batches = 0, 1, 0, 0
    while (cut := choose_cut([span], last_fill_no=position, marks_through_seq=marks_through,
                             hold_counts={})) is not None:
        plan = plan_batch(cut, first_fill_no=position + 1, holds=holds, accounts=ACCOUNTS,
                          new_id=ids())
        position, marks_through, batches = cut.last_fill_no, cut.marks_through_seq, batches + 1
        assert plan.item_count <= ITEMS_MAX
        if plan.fill_count == 0:
            assert plan.item_count == 0  # the last cut only moves past the command
            continue
        net = net_by_account(plan)
        assert net[CLEARING_BTC] == -10_000 * plan.fill_count
        assert sum(net.values()) == 0
        settled += plan.fill_count
        rehold = plan.orders[0].rehold
        holds[taker] = [hold(taker, rehold.amount, "BTC", ADA, 2)] if rehold else []
    assert settled == 200 and batches > 3


def test_many_sellers_cut_the_trade_into_several_transfers():
    buy = uuid.uuid4()
    sellers = [(uuid.uuid4(), uuid.uuid4()) for _ in range(60)]
    fills = tuple(
        fill(n + 1, 2, buy, order, taker_user=ADA, maker_user=user)
        for n, (order, user) in enumerate(sellers)
    )
    cut = choose_cut([CommandSpan(2, fills, ())], last_fill_no=0, marks_through_seq=1,
                     hold_counts={}, items_max=1000)
    holds = {buy: [hold(buy, 10**9, "USD", ADA)]}
    holds |= {o: [hold(o, 10_000, "BTC", u)] for o, u in sellers}
    plan = plan_batch(cut, first_fill_no=1, holds=holds, accounts=ACCOUNTS, new_id=ids())
    assert len(plan.transfers) == 2
    net = net_by_account(plan)
    assert net[CLEARING_USD] == -60 * 501 and net[FEES] == 120
