"""The arithmetic of prices: percentages, allocation and tax rounding, on ints of minor units.

Pure functions with no database, so the unit and property tests can drive them hard.
Every rounding here is named and either exact by construction (allocation by largest
remainder sums to the total it allocates) or returns what it left over (tax), so the
caller can book it.
"""

from __future__ import annotations

from collections.abc import Sequence

from pacioli.ledger.domain.errors import invariant

BPS_WHOLE = 10000  # basis points in 100%


def divide_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded to the nearest int, halves away from zero."""
    invariant(denominator > 0, "the denominator must be positive")
    quotient, remainder = divmod(abs(numerator), denominator)
    if 2 * remainder >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def percent_of(amount_minor: int, rate_bps: int) -> int:
    """`rate_bps` basis points of `amount_minor`, rounded half up."""
    return divide_half_up(amount_minor * rate_bps, BPS_WHOLE)


def allocate(total_minor: int, weights: Sequence[int]) -> list[int]:
    """Split `total_minor` across `weights` in proportion, summing exactly to the total.

    Largest-remainder method: every share starts at the floor of its exact proportion;
    the units left over go one each to the shares with the largest fractional parts
    (ties to the earlier weight, so the result is deterministic). With
    0 <= total <= sum(weights) no share exceeds its weight.
    """
    invariant(all(weight >= 0 for weight in weights), "weights must not be negative")
    invariant(total_minor >= 0, "the total must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        invariant(total_minor == 0, "cannot allocate an amount over zero weights")
        return [0 for _ in weights]
    floors = [total_minor * weight // weight_sum for weight in weights]
    remainders = [total_minor * weight % weight_sum for weight in weights]
    left_over = total_minor - sum(floors)
    by_remainder = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for index in by_remainder[:left_over]:
        floors[index] += 1
    return floors


def line_taxes(bases_minor: Sequence[int], rates_bps: Sequence[int]) -> tuple[list[int], int]:
    """Each line's tax rounded half up, and the order's tax rounded once on the exact sum.

    Returns (per-line taxes, order-level tax). The shopper pays the per-line taxes (each
    line shows its own); the tax owed is the order-level figure; their difference is the
    rounding remainder the caller books (docs/commerce.md, "Totals").
    """
    invariant(len(bases_minor) == len(rates_bps), "one rate per line")
    exact = [base * rate for base, rate in zip(bases_minor, rates_bps, strict=True)]
    per_line = [divide_half_up(value, BPS_WHOLE) for value in exact]
    return per_line, divide_half_up(sum(exact), BPS_WHOLE)
