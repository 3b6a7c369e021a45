"""How to read one source's statement CSV: a small TOML file, so a new bank is a config.

A mapping names the columns that hold the reference, amount, currency and booking date,
says how amounts are written (major units with the currency's scale or integer minor
units; a signed column or a debit/credit indicator column; decimal and thousands
separators), how dates are written (a `strptime` format), the file's delimiter and
encoding, and, in a `[ledger]` table, which ledger entries the statement is matched
against (read by `ledger_entries.py`). The format is documented in docs/reconciliation.md.

Shipped mappings live in `mappings/*.toml` next to this module (package data).
"""

from __future__ import annotations

import codecs
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pacioli.ledger.domain.errors import InvalidCommand, NotFound

_UNITS = ("major", "minor")
_SIGN_RULES = ("signed", "indicator")
_LEDGER_SIGNS = ("debit_positive", "credit_positive")
_SEPARATORS = (".", ",")
_THOUSANDS_SEPARATORS = ("", ",", ".", " ", "'", "\u00a0")


class InvalidMapping(InvalidCommand):
    """The statement mapping file is not valid TOML or does not describe a statement."""

    code = "invalid_mapping"


class UnknownMapping(NotFound):
    """No shipped statement mapping has this name."""

    code = "unknown_mapping"


@dataclass(frozen=True, slots=True)
class LedgerSelection:
    """Which ledger entries a statement is matched against (the mapping's `[ledger]` table).

    `account_purpose` (a chart Purpose value) with an optional `account_scope`, or an
    `account_id`, names the account; `reference` says where an entry's reference comes
    from (e.g. "gateway_reference": the payment record's gateway reference, or
    "metadata:<key>": a transfer metadata key); `sign` says which side of the account
    counts positive, matching the statement's "credits to us positive". `options` is the
    whole table, for keys only the entry loader knows.
    """

    account_purpose: str | None
    account_scope: str | None
    account_id: str | None
    reference: str
    sign: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StatementMapping:
    """The layout of one source's statement CSV; see the module docstring."""

    name: str
    description: str
    delimiter: str
    encoding: str
    quotechar: str
    reference_column: str
    amount_column: str
    currency_column: str | None
    booked_on_column: str
    fixed_currency: str | None  # when the file has no currency column
    amount_unit: str  # "major" | "minor"
    sign_rule: str  # "signed" | "indicator"
    negate: bool  # flip every amount (a statement written from the other party's side)
    decimal_separator: str
    thousands_separator: str
    indicator_column: str | None
    credit_values: frozenset[str]
    debit_values: frozenset[str]
    date_format: str
    ledger: LedgerSelection

    @classmethod
    def load(cls, path: str | Path) -> StatementMapping:
        """Read a mapping from a TOML file. Raises: InvalidMapping."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise InvalidMapping(f"cannot read mapping {str(path)!r}: {error}") from error
        return cls.parse(text, default_name=path.stem)

    @classmethod
    def builtin(cls, name: str) -> StatementMapping:
        """A shipped mapping by name ("sandbox_gateway", "generic_bank"). Raises: UnknownMapping."""
        if name not in builtin_names():
            known = ", ".join(builtin_names())
            raise UnknownMapping(f"no shipped mapping is named {name!r}; known: {known}")
        text = resources.files(__package__).joinpath("mappings", f"{name}.toml").read_text(
            encoding="utf-8")
        return cls.parse(text, default_name=name)

    @classmethod
    def parse(cls, text: str, *, default_name: str = "custom") -> StatementMapping:
        """Build a mapping from TOML text. Raises: InvalidMapping."""
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise InvalidMapping(f"mapping is not valid TOML: {error}") from error
        return _build(_Table(document, ""), default_name)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """The header names the file must have, in a stable order."""
        names = [self.reference_column, self.amount_column, self.booked_on_column]
        if self.currency_column is not None:
            names.append(self.currency_column)
        if self.indicator_column is not None:
            names.append(self.indicator_column)
        return tuple(names)


def builtin_names() -> tuple[str, ...]:
    """The names of the shipped mappings, sorted."""
    folder = resources.files(__package__).joinpath("mappings")
    return tuple(sorted(entry.name.removesuffix(".toml") for entry in folder.iterdir()
                        if entry.name.endswith(".toml")))


class _Table:
    """A TOML table with typed getters that name the offending key in their errors."""

    def __init__(self, values: dict[str, Any], path: str) -> None:
        self.values = values
        self.path = path

    def table(self, key: str, *, required: bool = True) -> _Table:
        value = self.values.get(key)
        if value is None and not required:
            return _Table({}, self._name(key))
        if not isinstance(value, dict):
            raise InvalidMapping(f"mapping needs a [{self._name(key)}] table")
        return _Table(value, self._name(key))

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self.values.get(key, default)
        if value is None and required:
            raise InvalidMapping(f"mapping needs {self._name(key)} (a string)")
        if value is not None and not isinstance(value, str):
            raise InvalidMapping(f"mapping's {self._name(key)} must be a string")
        return value

    def choice(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.text(key, default)
        if value not in allowed:
            raise InvalidMapping(
                f"mapping's {self._name(key)} is {value!r}; expected one of {', '.join(allowed)}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.values.get(key, default)
        if not isinstance(value, bool):
            raise InvalidMapping(f"mapping's {self._name(key)} must be true or false")
        return value

    def strings(self, key: str) -> frozenset[str]:
        value = self.values.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InvalidMapping(f"mapping's {self._name(key)} must be a list of strings")
        return frozenset(v.strip() for v in value)

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key


def _build(root: _Table, default_name: str) -> StatementMapping:
    file, columns = root.table("file", required=False), root.table("columns")
    amount, date_table = root.table("amount", required=False), root.table("date", required=False)
    encoding = _ascii_compatible_encoding(file.text("encoding", "utf-8"))
    delimiter = _one_character(file, "delimiter", ",")
    quotechar = _one_character(file, "quotechar", '"')
    currency_column = columns.text("currency")
    fixed_currency = amount.text("currency")
    if (currency_column is None) == (fixed_currency is None):
        raise InvalidMapping("mapping needs exactly one of columns.currency (a column) and"
                             " amount.currency (one currency for the whole file)")
    sign_rule = amount.choice("sign", "signed", _SIGN_RULES)
    indicator_column = amount.text("indicator_column")
    credit_values, debit_values = amount.strings("credit_values"), amount.strings("debit_values")
    if sign_rule == "indicator":
        if indicator_column is None or not credit_values or not debit_values:
            raise InvalidMapping("amount.sign = \"indicator\" needs amount.indicator_column,"
                                 " amount.credit_values and amount.debit_values")
        if credit_values & debit_values:
            raise InvalidMapping("amount.credit_values and amount.debit_values overlap")
    elif indicator_column is not None:
        raise InvalidMapping(
            "amount.indicator_column is only used with amount.sign = \"indicator\"")
    decimal_separator = amount.choice("decimal_separator", ".", _SEPARATORS)
    thousands_separator = amount.choice("thousands_separator", "", _THOUSANDS_SEPARATORS)
    if decimal_separator == thousands_separator:
        raise InvalidMapping("amount.decimal_separator and amount.thousands_separator are equal")
    return StatementMapping(
        name=root.text("name", default_name), description=root.text("description", ""),
        delimiter=delimiter, encoding=encoding, quotechar=quotechar,
        reference_column=columns.text("reference", required=True),
        amount_column=columns.text("amount", required=True),
        currency_column=currency_column,
        booked_on_column=columns.text("booked_on", required=True),
        fixed_currency=fixed_currency,
        amount_unit=amount.choice("unit", "major", _UNITS),
        sign_rule=sign_rule, negate=amount.flag("negate", False),
        decimal_separator=decimal_separator, thousands_separator=thousands_separator,
        indicator_column=indicator_column,
        credit_values=credit_values, debit_values=debit_values,
        date_format=_date_format(date_table.text("format", "%Y-%m-%d")),
        ledger=_ledger(root.table("ledger", required=False)),
    )


def _ledger(table: _Table) -> LedgerSelection:
    return LedgerSelection(
        account_purpose=table.text("account_purpose"), account_scope=table.text("account_scope"),
        account_id=table.text("account_id"),
        reference=table.text("reference", "gateway_reference"),
        sign=table.choice("sign", "debit_positive", _LEDGER_SIGNS),
        options=dict(table.values),
    )


def _one_character(table: _Table, key: str, default: str) -> str:
    value = table.text(key, default)
    if len(value) != 1 or value in "\r\n":
        raise InvalidMapping(f"mapping's file.{key} must be one character, not {value!r}")
    return value


def _ascii_compatible_encoding(name: str) -> str:
    """The codec's canonical name, if it writes ASCII as ASCII (lines are split on b"\\n").

    Statement files are read line by line as bytes so that a decoding error names the
    exact line; that needs an encoding in which newline and delimiters are single ASCII
    bytes (UTF-8, Latin-1, Windows-1252, ...). UTF-16 and the like are refused.
    """
    try:
        codec = codecs.lookup(name)
    except LookupError as error:
        raise InvalidMapping(
            f"mapping's file.encoding {name!r} is not a known encoding") from error
    if codec.name == "utf-8-sig":
        return "utf-8"  # the reader drops a byte order mark at the start of any UTF-8 file
    probe = "\n\r,;|\t\"' 0123456789-.:Az"
    try:
        ascii_compatible = probe.encode(codec.name) == probe.encode("ascii")
    except UnicodeError:
        ascii_compatible = False
    if not ascii_compatible:
        raise InvalidMapping(f"mapping's file.encoding {name!r} is not ASCII-compatible;"
                             " convert the file to UTF-8")
    return codec.name


def _date_format(value: str) -> str:
    if "%" not in value:
        raise InvalidMapping(f"mapping's date.format {value!r} is not a strptime format"
                             " such as \"%Y-%m-%d\"")
    return value
