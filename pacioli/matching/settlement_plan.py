"""Planning a settlement batch: which fills and order marks it covers, and its ledger items.

Pure: it reads records and returns a `BatchPlan`; the settler (settlement.py) stores the
plan, then posts it as one `ledger.linked_batch`, so a re-post after a crash is the same
request under the same key.

A market's settlement input is an ordered stream: for each logged command, its fills
(numbered `fill_no`) and then its marks (per order touched: what it may still spend,
and whether it is done). A batch covers a prefix of what is unsettled and, per order it
touches, becomes:

* `PostPending` of the order's hold(s) for what its fills in the batch charge it (a buy:
  quote amount + its fee; a sell: the size), which releases the rest of the hold; a
  hold that pays nothing is voided;
* a new pending hold (the re-hold) for what the order may still spend: the rest, or less
  when the order's mark says it needs less (price improvement, an amend down), or
  nothing when it is done.

Then one multi-leg transfer moves the trade: from the clearing accounts (which the posts
just credited) to the buyers' base wallets, the sellers' quote wallets (quote amount less
their fee) and the fee account. Per asset the clearing account ends the batch where it
began (zero), so the transfer can never pay out what was not posted.

A buy is never charged more than it holds. Fills round their quote amounts and fees up,
one by one, so a buy filled in many pieces near its limit could owe a few minor units
more than its hold (sized on the whole). What each fill charges the buyer is decided
when the fill is logged (log_entries.py: at most what the order has left), and the rest,
`buyer_rounding`, comes from the rounding account (a platform account). So every amount
here is fixed by the log, and no two ways of cutting it into batches move different money.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from uuid import UUID

from pacioli.ledger.domain.errors import invariant
from pacioli.matching.settlement_records import (
    BatchPlan,
    CommandSpan,
    FillRecord,
    HoldRecord,
    Mark,
    MarketAccounts,
    NewHold,
    OrderSettlement,
    TradeLeg,
)

ITEMS_MAX = 128  # the ledger's linked batch limit
CREDIT_LEGS_MAX = 56  # per trade transfer: 64 legs less room for the debit legs


# Choosing what a batch covers.


@dataclass(slots=True)
class Cut:
    """The end of a batch: fills through `last_fill_no`, marks of commands through
    `marks_through_seq`, holds created through `holds_through_seq`."""

    fills: list[FillRecord]
    marks: list[Mark]
    last_fill_no: int
    marks_through_seq: int
    holds_through_seq: int


def choose_cut(
    spans: Sequence[CommandSpan], *, last_fill_no: int, marks_through_seq: int,
    hold_counts: Mapping[UUID, int], items_max: int = ITEMS_MAX,
) -> Cut | None:
    """The longest prefix of the unsettled stream whose ledger items fit in `items_max`.

    `spans` are the commands after the settled position (the first may be partly
    settled: its fills up to `last_fill_no` are). `hold_counts` is each order's number
    of unresolved holds, to bound its items (posts + a re-hold). The bound counts every
    order touched as needing items, which over-counts orders that turn out to need none.
    None when there is nothing to settle. A cut may hold no fill and no mark (commands
    that touched no order): its batch only moves the settled position.
    """
    start = (last_fill_no, marks_through_seq)
    cut = Cut([], [], last_fill_no, marks_through_seq, marks_through_seq)
    touched: set[UUID] = set()
    items = 0

    def admit(orders: Iterable[UUID]) -> bool:
        nonlocal items
        new = [o for o in set(orders) if o not in touched]
        extra = sum(hold_counts.get(o, 1) + 1 for o in new)
        transfers = -(-(len(touched) + len(new) + 1) // CREDIT_LEGS_MAX)
        if items + extra + transfers > items_max:
            return False
        touched.update(new)
        items += extra
        return True

    for span in spans:
        for fill in span.fills:
            if fill.fill_no <= cut.last_fill_no:
                continue
            if not admit((fill.taker_order, fill.maker_order)):
                return _finished(cut, start)
            cut.fills.append(fill)
            cut.last_fill_no = fill.fill_no
            cut.holds_through_seq = max(cut.holds_through_seq, span.seq)
        if not span.complete:
            return _finished(cut, start)
        if span.seq <= cut.marks_through_seq:
            continue
        if not admit(mark.order for mark in span.marks):
            return _finished(cut, start)
        cut.marks.extend(span.marks)
        cut.marks_through_seq = span.seq
        cut.holds_through_seq = max(cut.holds_through_seq, span.seq)
    return _finished(cut, start)


def _finished(cut: Cut, start: tuple[int, int]) -> Cut | None:
    """The cut, unless it covers nothing (commands without fills or marks still count:
    the position must move past them)."""
    return None if (cut.last_fill_no, cut.marks_through_seq) == start else cut


# Turning a cut into ledger items.


def plan_batch(
    cut: Cut, *, first_fill_no: int, holds: dict[UUID, Sequence[HoldRecord]],
    accounts: MarketAccounts, new_id: Callable[[], UUID],
) -> BatchPlan:
    """The batch's order settlements and trade transfers (see the module docstring).

    `holds` are each touched order's unresolved holds; only those created through
    `cut.holds_through_seq` are resolved. Raises InvariantBroken if a sell's base hold
    does not cover its fills (that would be a bug, never a user's mistake).
    """
    charges: dict[UUID, int] = {}
    rounding: dict[UUID, int] = {}
    for fill in cut.fills:
        buyer, _, buyer_fee = fill.buyer()
        seller, _, _ = fill.seller()
        charge = fill.quote_amount + buyer_fee - fill.buyer_rounding
        charges[buyer] = charges.get(buyer, 0) + charge
        rounding[buyer] = rounding.get(buyer, 0) + fill.buyer_rounding
        charges[seller] = charges.get(seller, 0) + fill.size
    last_mark: dict[UUID, Mark] = {}
    for mark in cut.marks:
        last_mark[mark.order] = mark
    orders: list[OrderSettlement] = []
    for order in _in_order_of_appearance(cut):
        eligible = [h for h in holds.get(order, ()) if h.created_seq <= cut.holds_through_seq]
        settlement = settle_order(
            order, eligible, charges.get(order, 0), last_mark.get(order), new_id,
            shortfall=rounding.get(order, 0),
        )
        if settlement is not None:
            orders.append(settlement)
    transfers = trade_transfers(cut.fills, orders, accounts)
    return BatchPlan(
        first_fill_no=first_fill_no, last_fill_no=cut.last_fill_no,
        marks_through_seq=cut.marks_through_seq, holds_through_seq=cut.holds_through_seq,
        orders=tuple(orders), transfers=transfers, fill_count=len(cut.fills),
    )


def settle_order(
    order: UUID, holds: Sequence[HoldRecord], charged: int, mark: Mark | None,
    new_id: Callable[[], UUID], *, shortfall: int = 0,
) -> OrderSettlement | None:
    """One order's posts and re-hold in a batch, or None when it needs no ledger item.

    `charged` is what its fills charge it (net of `shortfall`, the rounding the platform
    pays for it). Raises InvariantBroken if its holds do not cover that: the log never
    charges an order more than it has left, so that would be a bug.
    """
    held = sum(h.amount for h in holds)
    invariant(charged <= held, f"order {order} is charged {charged} but holds {held}")
    posted = charged
    left = held - posted
    if mark is None:
        rehold_amount = left  # its command's marks are in a later batch: keep everything
    elif mark.done:
        rehold_amount = 0
    else:
        rehold_amount = min(left, mark.need_after)
    if charged == 0 and shortfall == 0 and rehold_amount == held:
        return None  # nothing spent, nothing to release
    posts: list[tuple[UUID, int]] = []
    to_post = posted
    for hold in sorted(holds, key=lambda h: (h.created_seq, h.id)):
        amount = min(to_post, hold.amount)
        posts.append((hold.id, amount))
        to_post -= amount
    rehold = None
    if rehold_amount > 0:
        template = holds[0]
        rehold = NewHold(
            new_id(), order, template.asset, rehold_amount, template.wallet_account_id,
            template.clearing_account_id,
        )
    asset = holds[0].asset if holds else ""
    return OrderSettlement(
        order, asset, tuple(posts), charged, shortfall, rehold,
        done=mark is not None and mark.done,
    )


def _in_order_of_appearance(cut: Cut) -> list[UUID]:
    seen: dict[UUID, None] = {}
    for fill in cut.fills:
        seen.setdefault(fill.taker_order)
        seen.setdefault(fill.maker_order)
    for mark in cut.marks:
        seen.setdefault(mark.order)
    return list(seen)


def trade_transfers(
    fills: Sequence[FillRecord], orders: Sequence[OrderSettlement], accounts: MarketAccounts,
) -> tuple[tuple[TradeLeg, ...], ...]:
    """The trade movements, netted per account and cut into transfers of at most 64 legs.

    Credits: each buyer's base wallet the size, each seller's quote wallet the quote
    amount less its fee, the fee account both fees. Debits: the clearing accounts what
    the batch's posts put there, and the rounding account the buys' shortfalls.
    """
    if not fills:
        return ()
    net: dict[tuple[UUID, str], int] = {}

    def add(account_id: UUID, asset: str, amount: int) -> None:
        net[(account_id, asset)] = net.get((account_id, asset), 0) + amount

    base, quote = accounts.base, accounts.quote
    wallets: dict[tuple[UUID, str], UUID] = {}  # a batch names a few users many times

    def wallet(user: UUID, asset: str) -> UUID:
        found = wallets.get((user, asset))
        if found is None:
            found = wallets[(user, asset)] = accounts.wallet(user, asset)
        return found

    for fill in fills:
        _, buyer_user, buyer_fee = fill.buyer()
        _, seller_user, seller_fee = fill.seller()
        add(wallet(buyer_user, base), base, fill.size)
        add(wallet(seller_user, quote), quote, fill.quote_amount - seller_fee)
        add(accounts.fee, quote, buyer_fee + seller_fee)
    posted = {base: 0, quote: 0}
    shortfall = 0
    for settlement in orders:
        if settlement.posts:
            posted[settlement.asset] += sum(amount for _, amount in settlement.posts)
        shortfall += settlement.shortfall
    invariant(
        posted[base] == sum(f.size for f in fills),
        "the base posted by the sells equals the base the buyers receive",
    )
    add(accounts.clearing_base, base, -posted[base])
    add(accounts.clearing_quote, quote, -posted[quote])
    add(accounts.rounding, quote, -shortfall)
    return _cut_into_transfers(net)


def _cut_into_transfers(net: dict[tuple[UUID, str], int]) -> tuple[tuple[TradeLeg, ...], ...]:
    """Balanced transfers of at most CREDIT_LEGS_MAX credit legs each.

    Each transfer takes the next credits and the debits that pay for them, per asset,
    drawn from the debit accounts in a fixed order (a debit account may be split over
    several transfers; no account appears twice in one transfer).
    """
    credits = [(acct, asset, amount) for (acct, asset), amount in net.items() if amount > 0]
    debits = {
        asset: [[acct, -amount] for (acct, a), amount in net.items() if a == asset and amount < 0]
        for asset in {asset for (_, asset) in net}
    }
    transfers = []
    for start in range(0, len(credits), CREDIT_LEGS_MAX):
        chunk = credits[start:start + CREDIT_LEGS_MAX]
        legs = [TradeLeg(acct, "credit", amount, asset) for acct, asset, amount in chunk]
        owed: dict[str, int] = {}
        for _, asset, amount in chunk:
            owed[asset] = owed.get(asset, 0) + amount
        for asset, amount in owed.items():
            for source in debits[asset]:
                take = min(amount, source[1])
                if take > 0:
                    legs.append(TradeLeg(source[0], "debit", take, asset))
                    source[1] -= take
                    amount -= take
            invariant(amount == 0, f"the trade's {asset} debits cover its credits")
        transfers.append(tuple(legs))
    invariant(all(s[1] == 0 for ds in debits.values() for s in ds), "every debit is used")
    return tuple(transfers)
