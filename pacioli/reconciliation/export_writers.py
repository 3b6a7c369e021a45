"""The two syntaxes of the accounting exports: a Beancount file and a ledger-cli/hledger
journal. A writer turns the export's records into text; it reads nothing and decides
nothing about what goes in (pacioli/reconciliation/export.py does).

Amounts arrive as ints of minor units, signed the way both tools count: a debit is
positive, a credit negative. They are written in major units at the asset's scale with
`format_minor`, exact decimals that never pass through float.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any, TextIO

from pacioli.ledger import format_minor

INDENT = "  "
_BEANCOUNT_META_KEY_RE = re.compile(r"[a-z][a-zA-Z0-9_-]*")
_JOURNAL_TAG_RE = re.compile(r"[A-Za-z0-9_-]+")
_JOURNAL_PLAIN_COMMODITY_RE = re.compile(r"[A-Za-z]+")


@dataclass(frozen=True, slots=True)
class Commodity:
    name: str  # as the export names it (export_names.commodity_name)
    asset_code: str
    scale: int
    on: date


@dataclass(frozen=True, slots=True)
class OpenAccount:
    name: str
    commodity: Commodity
    on: date
    meta: dict[str, str]


@dataclass(frozen=True, slots=True)
class Leg:
    account: str
    commodity: Commodity
    amount_minor: int  # debit positive, credit negative


@dataclass(frozen=True, slots=True)
class Entry:
    """A transaction: a posted transfer, or the opening balances of a window."""

    on: date
    narration: str
    links: tuple[str, ...]
    meta: dict[str, str]
    legs: Iterable[Leg]  # written as they come: the opening balances hold one per account


@dataclass(frozen=True, slots=True)
class Assertion:
    account: str
    commodity: Commodity
    balance_minor: int  # debits less credits, as the tools count


def metadata_strings(metadata: dict[str, Any], reserved: frozenset[str]) -> dict[str, str]:
    """A record's metadata as the exports carry it: flat values under valid keys, as text.

    Nested values and keys neither syntax can spell are left out (the ledger keeps them);
    so are keys the export itself writes.
    """
    kept = {}
    for key, value in metadata.items():
        if key in reserved or not _BEANCOUNT_META_KEY_RE.fullmatch(key):
            continue
        if isinstance(value, bool | int | str):
            kept[key] = str(value).lower() if isinstance(value, bool) else str(value)
    return kept


def _one_line(text: str) -> str:
    return " ".join(text.split())


class BeancountWriter:
    """Beancount v3 syntax (https://beancount.github.io/docs/beancount_language_syntax.html)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def header(self, title: str, operating_currencies: list[str]) -> None:
        self._out.write(f"option \"title\" {_quoted(title)}\n")
        for currency in operating_currencies:
            self._out.write(f"option \"operating_currency\" {_quoted(currency)}\n")
        self._out.write("\n")

    def commodity(self, commodity: Commodity) -> None:
        self._out.write(
            f"{commodity.on} commodity {commodity.name}\n"
            f"{INDENT}asset: {_quoted(commodity.asset_code)}\n"
            f"{INDENT}scale: {commodity.scale}\n"
        )

    def open(self, account: OpenAccount) -> None:
        self._out.write(f"{account.on} open {account.name} {account.commodity.name}\n")
        self._meta(account.meta)

    def entry(self, entry: Entry) -> int:
        """Write the transaction; return how many legs it has."""
        links = "".join(f" ^{link}" for link in entry.links)
        self._out.write(f"\n{entry.on} * {_quoted(entry.narration)}{links}\n")
        self._meta(entry.meta)
        count = 0
        for leg in entry.legs:
            amount = format_minor(leg.amount_minor, leg.commodity.scale)
            self._out.write(f"{INDENT}{leg.account}  {amount} {leg.commodity.name}\n")
            count += 1
        return count

    def assertions(self, on: date, assertions: Iterable[Assertion]) -> int:
        """Write a balance directive for each; return how many."""
        self._out.write("\n")
        count = 0
        for assertion in assertions:
            amount = format_minor(assertion.balance_minor, assertion.commodity.scale)
            self._out.write(
                f"{on} balance {assertion.account}  {amount} {assertion.commodity.name}\n"
            )
            count += 1
        return count

    def section(self, comment: str) -> None:
        self._out.write(f"\n; {comment}\n")

    def _meta(self, meta: dict[str, str]) -> None:
        for key, value in meta.items():
            self._out.write(f"{INDENT}{key}: {_quoted(value)}\n")


def _quoted(text: str) -> str:
    """A Beancount string: one line, with backslashes and quotes escaped."""
    escaped = _one_line(text).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class JournalWriter:
    """The plain-text journal that ledger-cli and hledger both read.

    Balance assertions go in one last transaction whose postings move nothing and assert
    the balance after them (`ACCOUNT  0 CUR = BALANCE CUR`), which both tools check.
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._declared_tags: set[str] = set()

    def header(self, title: str, operating_currencies: list[str]) -> None:
        self._out.write(f"; {_one_line(title)}\n\n")

    def commodity(self, commodity: Commodity) -> None:
        symbol = _journal_commodity(commodity.asset_code)
        self._out.write(f"commodity {symbol}\n")
        if commodity.scale:
            # Fixes the decimal mark and the precision for both tools, so an amount such
            # as 1.000 (at scale 3) is never read as a thousand. Whole amounts (scale 0)
            # are unambiguous, and neither tool accepts one format line for them.
            example = format_minor(10**commodity.scale * 1000, commodity.scale)
            self._out.write(f"{INDENT}format {example} {symbol}\n")

    def open(self, account: OpenAccount) -> None:
        self._out.write(f"account {account.name}\n")

    def entry(self, entry: Entry) -> int:
        """Write the transaction; return how many legs it has."""
        tags = {key: value for key, value in entry.meta.items() if _JOURNAL_TAG_RE.fullmatch(key)}
        self._declare_tags(["link", *tags] if entry.links else list(tags))
        self._out.write(f"\n{entry.on} * {_journal_text(entry.narration)}\n")
        for link in entry.links:
            self._out.write(f"{INDENT}; link: {link}\n")
        for key, value in tags.items():
            # hledger ends a tag's value at a comma.
            self._out.write(f"{INDENT}; {key}: {_journal_text(value).replace(',', ' ')}\n")
        count = 0
        for leg in entry.legs:
            self._out.write(f"{INDENT}{leg.account}  {_journal_amount(leg.amount_minor, leg)}\n")
            count += 1
        return count

    def assertions(self, on: date, assertions: Iterable[Assertion]) -> int:
        """Write one transaction asserting each balance; return how many."""
        count = 0
        for count, assertion in enumerate(assertions, start=1):
            if count == 1:
                self._out.write(f"\n{on} * Balance assertions\n")
            zero = _journal_amount(0, assertion)
            balance = _journal_amount(assertion.balance_minor, assertion)
            self._out.write(f"{INDENT}{assertion.account}  {zero} = {balance}\n")
        return count

    def section(self, comment: str) -> None:
        self._out.write(f"\n; {comment}\n")

    def _declare_tags(self, keys: list[str]) -> None:
        """A `tag` directive before a tag's first use, as `ledger --pedantic` wants."""
        for key in keys:
            if key not in self._declared_tags:
                self._declared_tags.add(key)
                self._out.write(f"tag {key}\n")


def _journal_amount(amount_minor: int, of: Leg | Assertion) -> str:
    symbol = _journal_commodity(of.commodity.asset_code)
    return f"{format_minor(amount_minor, of.commodity.scale)} {symbol}"


def _journal_commodity(asset_code: str) -> str:
    """Letters alone stand bare; a symbol with digits (1INCH) is quoted, as both tools want."""
    return asset_code if _JOURNAL_PLAIN_COMMODITY_RE.fullmatch(asset_code) else f'"{asset_code}"'


def _journal_text(text: str) -> str:
    """A description or tag value: one line, no `;` (which would start a comment)."""
    return _one_line(text).replace(";", ",")
