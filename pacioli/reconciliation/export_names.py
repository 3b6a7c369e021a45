"""Account and commodity names for the accounting exports (Beancount, ledger-cli, hledger).

Beancount is the strictest of the three, so names are made valid for it and reused for
the journals: an account name is a root among Assets, Liabilities, Equity, Income and
Expenses, then components that start with a capital letter or a digit and hold letters,
digits and hyphens; a commodity is `[A-Z][A-Z0-9'._-]*[A-Z0-9]`.

Every name is a function of the account alone (its row, and its row in the payments
chart if it has one), so postings can be named as they stream past without a map of
every account in memory. The one exception is a chart owner id that is not a UUID (a
platform scope such as a gateway or biller name): its readable slug could collide with
another's, so those few are resolved up front by `AccountNamer` (see `slug_owners`).

Names (docs/reconciliation.md, "Exports", shows examples):
- chart accounts: `<Root>:Users:<USER ID>:<Purpose>:<CUR>`,
  `<Root>:Merchants:<MERCHANT ID>:<Purpose>:<CUR>`,
  `<Root>:Platform:<Purpose>[:<Scope>]:<CUR>`; the root follows from the purpose;
- any other ledger account: `Assets:Ledger:<CUR>:<ACCOUNT ID>` when its normal side is
  debit, `Liabilities:Ledger:<CUR>:<ACCOUNT ID>` when credit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from pacioli.ledger import Direction
from pacioli.payments.chart import OwnerKind, Purpose

# The root of each chart purpose: what the platform holds (Assets), owes (Liabilities)
# and earns (Income). A purpose added later falls back to its normal side.
PURPOSE_ROOTS: dict[str, str] = {
    Purpose.WALLET: "Liabilities",
    Purpose.MERCHANT_BALANCE: "Liabilities",
    Purpose.MERCHANT_PENDING_SETTLEMENT: "Liabilities",
    Purpose.BILLER_PAYABLE: "Liabilities",
    Purpose.PROMOTIONS: "Liabilities",
    Purpose.PROCESSOR_CLEARING: "Assets",
    Purpose.BANK_SETTLEMENT: "Assets",
    Purpose.FX_LIQUIDITY: "Assets",
    Purpose.FEE_REVENUE: "Income",
    Purpose.ROUNDING: "Income",
}
ROOT_BY_NORMAL_SIDE = {Direction.DEBIT: "Assets", Direction.CREDIT: "Liabilities"}
OWNER_KIND_COMPONENTS = {
    OwnerKind.USER: "Users", OwnerKind.MERCHANT: "Merchants", OwnerKind.PLATFORM: "Platform"
}

_SNAKE_RE = re.compile(r"[a-z]+(?:_[a-z]+)*")
_WORD_RE = re.compile(r"[A-Za-z0-9]+")
_BEANCOUNT_COMMODITY_RE = re.compile(r"[A-Z][A-Z0-9'._-]*[A-Z0-9]")


@dataclass(frozen=True, slots=True)
class AccountRow:
    """What naming needs of an account: its row, and its payments-chart key if any."""

    id: UUID
    asset_code: str
    normal_side: Direction
    owner_kind: str | None = None
    owner_id: str | None = None
    purpose: str | None = None
    chart_currency: str | None = None


def commodity_name(asset_code: str) -> str:
    """The Beancount commodity of a ledger asset.

    Ledger asset codes are 2-12 upper-case letters or digits; Beancount wants a letter
    first, so a code starting with a digit (`1INCH`) gets the prefix `C_`, which no
    ledger code can contain, and so no two assets share a commodity.
    """
    if _BEANCOUNT_COMMODITY_RE.fullmatch(asset_code):
        return asset_code
    return f"C_{asset_code}"


def canonical_uuid(text: str) -> bool:
    try:
        return str(UUID(text)) == text
    except ValueError:
        return False


def slug(text: str) -> str:
    """A readable account-name component: the text's words, each capitalized, joined."""
    words = _WORD_RE.findall(text)
    return "".join(word[0].upper() + word[1:] for word in words) or "X"


class AccountNamer:
    """Names accounts; built with the chart rows whose owner id is not a UUID.

    Those owners are named by their slug; when two owners of one kind, purpose and
    currency share a slug, the one opened first keeps it and the later ones get
    `-<account id hex>` added (a hyphen and 32 hex digits, a shape no other component
    has), so names are unique and stay stable as accounts are added.
    """

    def __init__(self, slug_owner_rows: Iterable[AccountRow]) -> None:
        self._owner_components: dict[UUID, str] = {}
        taken: set[tuple[str | None, str | None, str | None, str]] = set()
        for row in slug_owner_rows:  # in opening order
            component = slug(row.owner_id or "")
            group = (row.owner_kind, row.purpose, row.chart_currency, component)
            if group in taken:
                component = f"{component}-{row.id.hex}"
            taken.add(group)
            self._owner_components[row.id] = component

    def name(self, row: AccountRow) -> str:
        chart_name = self._chart_name(row)
        if chart_name is not None:
            return chart_name
        root = ROOT_BY_NORMAL_SIDE[row.normal_side]
        return f"{root}:Ledger:{row.asset_code}:{str(row.id).upper()}"

    def _chart_name(self, row: AccountRow) -> str | None:
        """The name from the payments chart, or None for an account outside it."""
        kind = OWNER_KIND_COMPONENTS.get(row.owner_kind)  # type: ignore[arg-type]
        if (
            kind is None or row.owner_id is None or row.purpose is None
            or not _SNAKE_RE.fullmatch(row.purpose) or row.chart_currency != row.asset_code
        ):
            return None
        root = PURPOSE_ROOTS.get(row.purpose) or ROOT_BY_NORMAL_SIDE[row.normal_side]
        purpose = "".join(word.capitalize() for word in row.purpose.split("_"))
        owner = self._owner_component(row)
        if owner is None:
            return None  # a slug owner the namer was not built with: name it by its id
        if owner == "":
            path = [purpose]  # the platform's own account of this purpose
        elif row.owner_kind == OwnerKind.PLATFORM:
            path = [purpose, owner]  # a scope: a gateway, a biller, a funder
        else:
            path = [owner, purpose]
        return ":".join([root, kind, *path, row.asset_code])

    def _owner_component(self, row: AccountRow) -> str | None:
        if row.owner_kind == OwnerKind.PLATFORM and row.owner_id == "":
            return ""
        if canonical_uuid(row.owner_id or ""):
            return (row.owner_id or "").upper()
        return self._owner_components.get(row.id)


def needs_slug(owner_kind: str, owner_id: str) -> bool:
    """Whether a chart owner is named by a slug (resolved up front by AccountNamer)."""
    platform_own = owner_kind == OwnerKind.PLATFORM and owner_id == ""
    return not platform_own and not canonical_uuid(owner_id)
