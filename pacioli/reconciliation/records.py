"""The two sides a reconciliation matches: statement lines and ledger entries.

Both use one sign convention: money arriving to us (a credit on our bank statement, a
capture the processor owes us) is positive, money leaving us negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One row of an outside statement."""

    line_number: int  # 1-based line in the file where the row starts (the header is line 1)
    reference: str
    amount_minor: int
    currency: str
    booked_on: date


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger movement the statement should show (e.g. a transfer's leg on an account)."""

    entry_id: str
    reference: str
    amount_minor: int
    currency: str
    booked_on: date
