"""How a priced cart divides into orders, one per supplier, each with its split (pure).

Each supplier packs and ships its own goods, so each gets its own order: its lines, its
shipping (`shipping_by_supplier`), its tax, and its split (order_split.py). The cart's
tax rounding remainder (`rounding_minor`: the per-line taxes the shopper pays less the
tax owed, rounded once on the cart) belongs to the whole cart; it is booked with the
order that carries the most tax (the first such by supplier id), so the tax owed on
every order stays what its lines say less, at most, that remainder. The orders' totals
add up to the cart's total exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from pacioli.commerce.order_split import LineMoney, Share, commission_of, order_shares
from pacioli.commerce.pricing import PricedCart, PricedLine
from pacioli.ledger.domain.errors import invariant


@dataclass(frozen=True, slots=True)
class OrderPlan:
    supplier_id: UUID
    lines: tuple[PricedLine, ...]
    subtotal_minor: int
    discount_minor: int
    tax_minor: int  # what the shopper pays in tax on this order
    shipping_minor: int
    rounding_minor: int  # the part of the cart's rounding remainder booked with this order
    total_minor: int
    commission_minor: int
    shares: tuple[Share, ...]


def plan_orders(priced: PricedCart, *, commission_bps: int) -> list[OrderPlan]:
    """The cart's orders, by supplier id."""
    by_supplier: dict[UUID, list[PricedLine]] = {}
    for line in priced.lines:
        by_supplier.setdefault(line.supplier_id, []).append(line)
    suppliers = sorted(by_supplier)
    line_tax = {s: sum(line.tax_minor for line in by_supplier[s]) for s in suppliers}
    rounding_owner = max(suppliers, key=lambda s: (line_tax[s], -suppliers.index(s)),
                         default=None)
    plans = []
    for supplier_id in suppliers:
        lines = tuple(by_supplier[supplier_id])
        shipping = priced.shipping_by_supplier.get(supplier_id, 0)
        rounding = priced.rounding_minor if supplier_id == rounding_owner else 0
        shares = order_shares(
            supplier_id, [_money(line) for line in lines], shipping_minor=shipping,
            tax_payable_minor=line_tax[supplier_id] - rounding, rounding_minor=rounding,
            commission_bps=commission_bps,
        )
        total = sum(line.total_minor for line in lines) + shipping
        invariant(sum(share.amount_minor for share in shares) == total,
                  "an order's split adds up to its total")
        plans.append(OrderPlan(
            supplier_id=supplier_id, lines=lines,
            subtotal_minor=sum(line.unit_price_minor * line.quantity for line in lines),
            discount_minor=sum(line.catalogue_discount_minor + line.order_discount_minor
                               for line in lines),
            tax_minor=line_tax[supplier_id], shipping_minor=shipping, rounding_minor=rounding,
            total_minor=total, commission_minor=commission_of(shares), shares=shares,
        ))
    invariant(sum(plan.total_minor for plan in plans) == priced.total_minor,
              "the orders add up to the cart's total")
    return plans


def _money(line: PricedLine) -> LineMoney:
    return LineMoney(
        quantity=line.quantity, supplier_unit_price_minor=line.supplier_unit_price_minor,
        reseller_margin_minor=line.reseller_margin_minor, reseller_id=line.reseller_id,
        tax_minor=line.tax_minor, total_minor=line.total_minor,
    )
