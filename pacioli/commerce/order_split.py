"""Where an order's money goes: the split booked at capture, and its reversal by refunds.

Pure functions on ints of minor units (no database), so unit tests drive them directly.

**The split** (docs/commerce.md, "Money"). A line's revenue is what the shopper pays for it
without tax (`total_minor - tax_minor`: the discounts are already off). It divides between
the supplier and the reseller whose catalog sold it in proportion to their prices
(`supplier_unit_price_minor` and `reseller_margin_minor` per unit), by largest remainder,
so both bear the discounts in proportion. Of an order (one supplier):

    supplier  = its goods + the order's shipping - commission
    reseller  = its margins (one share per reseller)
    commission = commission_bps of the supplier's goods, rounded half up (platform revenue)
    tax       = the tax owed
    rounding  = the remainder between per-line and order-level tax rounding (signed)

and the shares add up to the order's total exactly (`invariant`).

**Refunds** reverse the split in proportion. To make partial refunds add up to exactly
the split when everything is refunded, the allocation is cumulative: the shares of
(refunded before + this refund) minus the shares of (refunded before), each by largest
remainder. A share can therefore move by one unit against its sign in a later partial
refund; the legs follow the sign.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from math import floor
from uuid import UUID

from pacioli.commerce.pricing_math import allocate, percent_of
from pacioli.ledger.domain.errors import invariant

COMMISSION_BPS_DEFAULT = 500  # 5% of the supplier's goods


class ShareKind(enum.StrEnum):
    SUPPLIER = "supplier"  # the supplier merchant's pending settlement
    RESELLER = "reseller"  # a reseller merchant's pending settlement
    COMMISSION = "commission"  # the platform's fee revenue
    TAX = "tax"  # tax payable
    ROUNDING = "rounding"  # the rounding account


@dataclass(frozen=True, slots=True)
class Share:
    """One payee's part of an order's money; `owner_id` names the merchant, if any."""

    kind: ShareKind
    owner_id: UUID | None
    amount_minor: int  # signed: the rounding share may be negative


@dataclass(frozen=True, slots=True)
class LineMoney:
    """What the split needs of one order line (a `PricedLine` has these fields)."""

    quantity: int
    supplier_unit_price_minor: int
    reseller_margin_minor: int
    reseller_id: UUID | None
    tax_minor: int
    total_minor: int


def allocate_signed(total_minor: int, weights: Sequence[int]) -> list[int]:
    """Split `total_minor` in proportion to signed `weights` (their sum positive), exactly.

    Largest remainder: each part starts at the floor of its exact quota and the units left
    over go to the largest fractional parts (ties to the earlier weight). When
    `total_minor` equals the weights' sum, every part equals its weight.
    """
    weight_sum = sum(weights)
    invariant(weight_sum > 0, "the weights must sum to a positive amount")
    quotas = [Fraction(total_minor * weight, weight_sum) for weight in weights]
    parts = [floor(quota) for quota in quotas]
    left_over = total_minor - sum(parts)
    invariant(0 <= left_over <= len(weights), "largest remainder leaves less than one unit each")
    order = sorted(range(len(weights)), key=lambda i: (-(quotas[i] - parts[i]), i))
    for index in order[:left_over]:
        parts[index] += 1
    return parts


def line_revenue_split(line: LineMoney) -> tuple[int, int]:
    """(supplier's part, reseller's part) of a line's revenue without tax."""
    revenue = line.total_minor - line.tax_minor
    invariant(revenue >= 0, "a line's tax is part of its total")
    weights = [line.supplier_unit_price_minor * line.quantity,
               line.reseller_margin_minor * line.quantity]
    if weights[1] == 0 or line.reseller_id is None:
        return revenue, 0
    supplier, reseller = allocate(revenue, weights)
    return supplier, reseller


def order_shares(
    supplier_id: UUID, lines: Iterable[LineMoney], *, shipping_minor: int,
    tax_payable_minor: int, rounding_minor: int, commission_bps: int,
) -> tuple[Share, ...]:
    """The split of one supplier's order (see the module docstring), zero shares left out.

    `tax_payable_minor + rounding_minor` must be the lines' tax: the shopper pays the
    per-line tax, of which the tax owed is one part and the rounding remainder the other.
    """
    invariant(0 <= commission_bps <= 10000, "a commission is 0 to 10,000 basis points")
    goods = 0
    margins: dict[UUID, int] = {}
    line_tax = 0
    for line in lines:
        supplier_part, reseller_part = line_revenue_split(line)
        goods += supplier_part
        line_tax += line.tax_minor
        if reseller_part:
            margins[line.reseller_id] = margins.get(line.reseller_id, 0) + reseller_part
    invariant(tax_payable_minor + rounding_minor == line_tax,
              "the tax owed and the rounding remainder make up the lines' tax")
    commission = percent_of(goods, commission_bps)
    shares = [Share(ShareKind.SUPPLIER, supplier_id, goods + shipping_minor - commission)]
    shares += [Share(ShareKind.RESELLER, reseller_id, margins[reseller_id])
               for reseller_id in sorted(margins)]
    shares += [Share(ShareKind.COMMISSION, None, commission),
               Share(ShareKind.TAX, None, tax_payable_minor),
               Share(ShareKind.ROUNDING, None, rounding_minor)]
    return tuple(share for share in shares if share.amount_minor != 0)


def commission_of(shares: Sequence[Share]) -> int:
    return sum(s.amount_minor for s in shares if s.kind is ShareKind.COMMISSION)


def refund_shares(
    shares: Sequence[Share], *, refunded_before_minor: int, amount_minor: int
) -> tuple[Share, ...]:
    """What a refund of `amount_minor` takes back from each share (signed; zeros left out).

    `refunded_before_minor` is what earlier refunds of the order took; the two together
    must not exceed the order's total (the sum of the shares).
    """
    total = sum(share.amount_minor for share in shares)
    invariant(amount_minor > 0, "a refund is a positive amount")
    invariant(refunded_before_minor >= 0 and refunded_before_minor + amount_minor <= total,
              "a refund never exceeds what is left of the order")
    weights = [share.amount_minor for share in shares]
    before = allocate_signed(refunded_before_minor, weights)
    after = allocate_signed(refunded_before_minor + amount_minor, weights)
    taken = (Share(share.kind, share.owner_id, a - b)
             for share, a, b in zip(shares, after, before, strict=True))
    return tuple(share for share in taken if share.amount_minor != 0)


def returned_goods_minor(line_total_minor: int, quantity: int, returned_before: int,
                         returning: int) -> int:
    """What `returning` units of a line are worth, as a slice of the line's total.

    Cumulative (floor of the returned units' share), so returning every unit, in any
    number of steps, gives back exactly the line's total.
    """
    invariant(returning > 0 and returned_before + returning <= quantity,
              "returns never exceed the units bought")

    def worth(units: int) -> int:
        return line_total_minor * units // quantity
    return worth(returned_before + returning) - worth(returned_before)
