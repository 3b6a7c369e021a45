"""Reading an outside statement (CSV) into `StatementLine`s, as its mapping describes.

Pure apart from reading the one file, and streaming: a line is parsed, yielded and
forgotten, so a million-line statement costs the memory of its lines, not of its text.
Anything the mapping does not describe stops the read with `MalformedStatement`, which
names the line: a caller that records nothing until the last line was read records
nothing for a bad file.

This module is also the one import for a caller of the statement side: it re-exports the
mapping (`StatementMapping`) and the matching engine (`reconcile`, `MatchOptions`, ...).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime
from os import PathLike
from typing import BinaryIO

from pacioli.ledger.domain.errors import DomainError, InvalidCommand
from pacioli.ledger.domain.money import AMOUNT_MAX_MINOR
from pacioli.reconciliation.mapping import (
    InvalidMapping,
    LedgerSelection,
    StatementMapping,
    UnknownMapping,
)
from pacioli.reconciliation.matching import (
    Break,
    BreakKind,
    CurrencyTotals,
    Match,
    MatchKind,
    MatchOptions,
    Reconciliation,
    reconcile,
)
from pacioli.reconciliation.records import LedgerEntry, StatementLine

__all__ = [
    "Break", "BreakKind", "CurrencyTotals", "InvalidMapping", "LedgerEntry", "LedgerSelection",
    "MalformedStatement", "Match", "MatchKind", "MatchOptions", "Reconciliation",
    "StatementLine", "StatementMapping", "UnknownMapping", "read_statement", "reconcile",
]

_SHOWN_LENGTH_MAX = 40
_DATE_CACHE_SIZE_MAX = 4_096  # distinct date strings remembered; statements repeat few


class MalformedStatement(InvalidCommand):
    """The statement file does not match its mapping; the error names the line."""

    code = "malformed_statement"

    def __init__(self, line_number: int, reason: str) -> None:
        self.line_number = line_number
        self.reason = reason
        super().__init__(f"line {line_number}: {reason}")


def read_statement(
    path: str | PathLike[str], mapping: StatementMapping, *, scale_of: Callable[[str], int],
) -> Iterator[StatementLine]:
    """Yield the statement's lines in file order.

    `scale_of(currency)` gives a currency's number of decimal places and raises (a
    DomainError such as UnknownAsset, or a LookupError) for a currency it does not know.

    Raises: MalformedStatement (bad encoding, a missing column, a row of the wrong width,
    an unparseable amount, date, sign indicator, an unknown currency, broken quoting).
    OSError if the file cannot be opened.
    """
    with open(path, "rb") as raw:
        yield from _parse(raw, mapping, scale_of)


def _parse(
    raw: BinaryIO, mapping: StatementMapping, scale_of: Callable[[str], int],
) -> Iterator[StatementLine]:
    # The text layer decodes in C; a decoding error is then traced back to its line.
    encoding = "utf-8-sig" if mapping.encoding == "utf-8" else mapping.encoding
    text = io.TextIOWrapper(raw, encoding=encoding, errors="strict", newline="")
    reader = csv.reader(text, delimiter=mapping.delimiter, quotechar=mapping.quotechar,
                        strict=True)
    parse_row = None
    last_line = 0
    try:
        for row in reader:
            first_line, last_line = last_line + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            if parse_row is None:
                parse_row = _RowParser(mapping, row, first_line, scale_of)
                continue
            yield parse_row(first_line, row)
    except csv.Error as error:
        raise MalformedStatement(last_line + 1, f"is not valid CSV: {error}") from None
    except UnicodeDecodeError:
        text.detach()
        raise _decoding_error(raw, mapping.encoding) from None
    if parse_row is None:
        raise MalformedStatement(1, "the file is empty; expected a header naming the columns "
                                    + _quoted(mapping.required_columns))


def _decoding_error(raw: BinaryIO, encoding: str) -> MalformedStatement:
    """The error naming the first line that does not decode (read again, line by line)."""
    raw.seek(0)
    line_number = 0
    for line_number, chunk in enumerate(raw, start=1):
        try:
            chunk.decode(encoding)
        except UnicodeDecodeError as error:
            return MalformedStatement(
                line_number, f"is not valid {encoding}: byte {error.start + 1} of the line"
                f" ({chunk[error.start:error.start + 1]!r}) cannot be decoded")
    return MalformedStatement(line_number, f"is not valid {encoding}: the file ends"
                              " inside a character")


class _RowParser:
    """Turns one row into a StatementLine: the header's positions and the mapping's rules."""

    def __init__(self, mapping: StatementMapping, header: list[str], header_line: int,
                 scale_of: Callable[[str], int]) -> None:
        index = _column_index(mapping, [name.strip() for name in header], header_line)
        self.mapping = mapping
        self.width = len(header)
        self.reference_at = index[mapping.reference_column]
        self.amount_at = index[mapping.amount_column]
        self.booked_on_at = index[mapping.booked_on_column]
        self.currency_at = index.get(mapping.currency_column)
        self.indicator_at = index.get(mapping.indicator_column)
        self.scale_of = scale_of
        self.scales: dict[str, int] = {}
        self.match_amount = _amount_pattern(mapping).fullmatch
        self.credit_values = {value.upper() for value in mapping.credit_values}
        self.debit_values = {value.upper() for value in mapping.debit_values}
        self.dates: dict[str, date] = {}

    def __call__(self, line_number: int, row: list[str]) -> StatementLine:
        if len(row) != self.width:
            raise MalformedStatement(
                line_number, f"has {len(row)} fields; the header has {self.width}")
        currency = (row[self.currency_at].strip() if self.currency_at is not None
                    else self.mapping.fixed_currency)
        amount_minor = self._amount(line_number, row[self.amount_at], currency)
        if self.indicator_at is not None:
            amount_minor *= self._indicator(line_number, row[self.indicator_at])
        if self.mapping.negate:
            amount_minor = -amount_minor
        booked_on = self.dates.get(row[self.booked_on_at])
        if booked_on is None:
            booked_on = self._date(line_number, row[self.booked_on_at])
        return StatementLine(line_number, row[self.reference_at].strip(), amount_minor,
                             currency, booked_on)

    def _scale(self, line_number: int, currency: str) -> int:
        if not currency:
            raise MalformedStatement(line_number, "the currency is empty")
        try:
            scale = self.scale_of(currency)
        except (DomainError, LookupError):
            raise MalformedStatement(
                line_number, f"unknown currency {_shown(currency)}") from None
        self.scales[currency] = scale
        return scale

    def _amount(self, line_number: int, text: str, currency: str) -> int:
        scale = self.scales.get(currency)
        if scale is None:
            scale = self._scale(line_number, currency)
        match = self.match_amount(text.strip())
        if match is None:
            raise MalformedStatement(line_number, f"amount {_shown(text)} is not "
                                     + _amount_example(self.mapping))
        sign, units, fraction = match.group("sign", "units", "fraction")
        if self.mapping.thousands_separator:
            units = units.replace(self.mapping.thousands_separator, "")
        if self.mapping.amount_unit == "minor":
            amount_minor = int(units)
        elif fraction is None:
            amount_minor = int(units) * 10**scale
        elif len(fraction) > scale:
            raise MalformedStatement(
                line_number, f"amount {_shown(text)} has {len(fraction)} decimal places;"
                f" {currency} has {scale}")
        else:
            amount_minor = int(units + fraction.ljust(scale, "0"))
        if amount_minor > AMOUNT_MAX_MINOR:
            raise MalformedStatement(line_number, f"amount {_shown(text)} is too large")
        return -amount_minor if sign == "-" else amount_minor

    def _indicator(self, line_number: int, text: str) -> int:
        value = text.strip().upper()
        if value in self.credit_values:
            return 1
        if value in self.debit_values:
            return -1
        raise MalformedStatement(
            line_number, f"debit/credit indicator {_shown(text)} is neither a credit"
            f" ({', '.join(sorted(self.credit_values))}) nor a debit"
            f" ({', '.join(sorted(self.debit_values))})")

    def _date(self, line_number: int, text: str) -> date:
        """Parse a date the cache has not seen (the cache is keyed by the raw field)."""
        booked_on = _parse_date(line_number, text.strip(), self.mapping.date_format)
        if len(self.dates) < _DATE_CACHE_SIZE_MAX:
            self.dates[text] = booked_on
        return booked_on


def _column_index(mapping: StatementMapping, names: list[str], header_line: int
                  ) -> dict[str, int]:
    missing = [column for column in mapping.required_columns if column not in names]
    if missing:
        raise MalformedStatement(
            header_line, f"missing column(s) {_quoted(missing)}; the header has {_quoted(names)}"
            f" (mapping {mapping.name!r})")
    repeated = [column for column in mapping.required_columns if names.count(column) > 1]
    if repeated:
        raise MalformedStatement(header_line, f"column(s) {_quoted(repeated)} appear twice")
    return {column: names.index(column) for column in mapping.required_columns}


def _amount_pattern(mapping: StatementMapping) -> re.Pattern[str]:
    sign = "(?P<sign>[+-])?" if mapping.sign_rule == "signed" else "(?P<sign>)"
    if mapping.thousands_separator:
        grouped = re.escape(mapping.thousands_separator)
        units = rf"(?P<units>\d{{1,3}}(?:{grouped}\d{{3}})+|\d+)"
    else:
        units = r"(?P<units>\d+)"
    if mapping.amount_unit == "minor":
        return re.compile(sign + units + "(?P<fraction>)")
    return re.compile(sign + units + rf"(?:{re.escape(mapping.decimal_separator)}"
                      r"(?P<fraction>\d+))?")


def _amount_example(mapping: StatementMapping) -> str:
    signed = "a signed " if mapping.sign_rule == "signed" else "an unsigned "
    if mapping.amount_unit == "minor":
        return signed + "whole number of minor units such as \"1050\""
    thousands = f"1{mapping.thousands_separator}" if mapping.thousands_separator else ""
    return f"{signed}decimal amount such as \"{thousands}234{mapping.decimal_separator}50\""


def _parse_date(line_number: int, text: str, date_format: str) -> date:
    try:
        if (date_format == "%Y-%m-%d" and len(text) == 10 and text[4] == text[7] == "-"
                and (text[:4] + text[5:7] + text[8:]).isdecimal() and text.isascii()):
            return date(int(text[:4]), int(text[5:7]), int(text[8:]))  # the common case, fast
        return datetime.strptime(text, date_format).date()
    except ValueError:
        raise MalformedStatement(
            line_number, f"date {_shown(text)} is not a date in the format {date_format!r}"
        ) from None


def _shown(text: str) -> str:
    return repr(text) if len(text) <= _SHOWN_LENGTH_MAX else repr(text[:_SHOWN_LENGTH_MAX]) + "…"


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(repr(name) for name in names)
