"""Matching statement lines against ledger entries, and classifying what is left as breaks.

Pure and deterministic: the same lines and entries (in any order) give the same result.

Rows are first grouped by reference (a hash map, so the work is linear in the number of
rows); a reference never matches another reference. Within one reference, in this order:

1. exact one-to-one: same currency, amount and date (a hash map again);
2. exact one-to-many (one line, several entries summing to it), then many-to-one;
3. only when a tolerance is set: one-to-one within the tolerances, then one-to-many and
   many-to-one within them.

Each ledger entry and each line is used at most once. Ties are broken the same way every
time: lines are taken in line-number order; entries are offered in (booked_on, entry_id)
order; a tolerant one-to-one match takes the entry nearest in amount, then in date, then
first in that order; a one-to-many (or many-to-one) match first tries all candidates
together (a payout covering every payment of its reference), then subsets by increasing
size, each size in lexicographic order of the candidates. What is still unmatched is
classified by `_classify` into the five break kinds of `BreakKind`.

Bounds, so that the work per reference is bounded (never exponential, and quadratic only
up to a fixed size): the searching passes (2 and 3) run for one reference and currency
only while unmatched lines x unmatched entries is at most `MatchOptions.search_pairs_max`,
and the subset search examines at most `MatchOptions.subset_search_max` candidate sets per
reference and currency (the all-candidates try is one pass and not counted). Rows a bound
left unmatched are reported as breaks, never guessed, and their detail says the search
was cut short. With unique references and exact matching the work is one hash lookup per
row.
"""

from __future__ import annotations

import enum
import gc
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from itertools import combinations
from typing import Any

from pacioli.ledger.domain.errors import InvalidCommand
from pacioli.reconciliation.records import LedgerEntry, StatementLine


class MatchKind(enum.StrEnum):
    ONE_TO_ONE = "one_to_one"
    ONE_TO_MANY = "one_to_many"  # one statement line, several ledger entries
    MANY_TO_ONE = "many_to_one"  # several statement lines, one ledger entry


class BreakKind(enum.StrEnum):
    """What is wrong with rows left unmatched (docs/reconciliation.md, "Break classes").

    - missing_in_ledger: a statement line whose reference has nothing unmatched in the
      ledger in any currency the line could pair with (one break per line).
    - missing_in_statement: a ledger entry whose reference has nothing unmatched on the
      statement that it could pair with (one break per entry).
    - amount_mismatch: a reference and currency with unmatched rows on both sides whose
      totals differ (one break per reference and currency, carrying all those rows).
    - currency_mismatch: a reference whose unmatched statement rows are in a currency the
      ledger has nothing unmatched in under that reference, and whose unmatched ledger
      rows are in another such currency (one break per pair of currencies).
    - duplicate: an unmatched statement line repeating an earlier line (same reference,
      amount, currency and date): the statement holds it more often than the ledger.
    """

    MISSING_IN_LEDGER = "missing_in_ledger"
    MISSING_IN_STATEMENT = "missing_in_statement"
    AMOUNT_MISMATCH = "amount_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    DUPLICATE = "duplicate"


class InvalidMatchOptions(InvalidCommand):
    """Matching tolerances and search bounds must be non-negative integers."""

    code = "invalid_match_options"


@dataclass(frozen=True, slots=True)
class MatchOptions:
    """Tolerances (0 = exact) and the bounds of the searching passes (see module docstring)."""

    amount_tolerance_minor: int = 0
    date_tolerance_days: int = 0
    search_pairs_max: int = 250_000
    subset_search_max: int = 4_096

    def __post_init__(self) -> None:
        for name in ("amount_tolerance_minor", "date_tolerance_days", "search_pairs_max",
                     "subset_search_max"):
            value = getattr(self, name)
            if type(value) is not int or value < 0:
                raise InvalidMatchOptions(f"{name} must be a non-negative integer, not {value!r}")

    @property
    def tolerant(self) -> bool:
        return self.amount_tolerance_minor > 0 or self.date_tolerance_days > 0


@dataclass(frozen=True, slots=True)
class Match:
    """Statement lines and ledger entries that account for each other."""

    kind: MatchKind
    reference: str
    currency: str
    line_numbers: tuple[int, ...]
    entry_ids: tuple[str, ...]
    statement_amount_minor: int
    ledger_amount_minor: int  # differs from the statement's only within the tolerance


@dataclass(frozen=True, slots=True)
class Break:
    """Rows left unmatched, classified. An amount is None when its side has no rows."""

    kind: BreakKind
    reference: str
    currency: str  # the statement side's, or the ledger's when there are no lines
    line_numbers: tuple[int, ...]
    entry_ids: tuple[str, ...]
    statement_amount_minor: int | None
    ledger_amount_minor: int | None
    detail: str
    ledger_currency: str | None = None  # set for currency_mismatch only


@dataclass(slots=True)
class CurrencyTotals:
    """Per currency: all rows on each side, and the part of them that matched."""

    currency: str
    line_count: int = 0
    entry_count: int = 0
    statement_total_minor: int = 0
    ledger_total_minor: int = 0
    matched_statement_minor: int = 0
    matched_ledger_minor: int = 0


@dataclass(slots=True)
class Reconciliation:
    """The outcome: matches (by first line number), breaks (by first line, then entry id)."""

    matches: list[Match]
    breaks: list[Break]
    totals: dict[str, CurrencyTotals]  # by currency code, sorted
    line_count: int
    entry_count: int
    matched_line_count: int
    matched_entry_count: int
    break_counts: dict[BreakKind, int] = field(default_factory=dict)  # every kind, 0 or more

    @property
    def clean(self) -> bool:
        return not self.breaks


def reconcile(
    lines: Iterable[StatementLine], entries: Iterable[LedgerEntry],
    options: MatchOptions = MatchOptions(),
) -> Reconciliation:
    """Match `lines` against `entries` and classify the rest; see the module docstring.

    Line numbers must be unique among `lines`, entry ids unique among `entries`.
    """
    with _cyclic_gc_paused():
        return _reconcile(lines, entries, options)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector: matching makes millions of objects and no cycles.

    Each collection walks every live container, so with a million rows the collector
    re-scans them again and again; paused, a million-line run takes about a third less
    time. Reference counting still frees everything as usual.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _reconcile(lines: Iterable[StatementLine], entries: Iterable[LedgerEntry],
               options: MatchOptions) -> Reconciliation:
    totals: dict[str, CurrencyTotals] = {}
    lines_by_reference = _grouped(lines, totals, is_statement=True)
    entries_by_reference = _grouped(entries, totals, is_statement=False)
    sink = _Sink()
    matches, pop_entries, one_to_one = sink.matches, entries_by_reference.pop, MatchKind.ONE_TO_ONE
    for reference, line in lines_by_reference.items():
        entry = pop_entries(reference, None)
        if type(line) is not list and entry is not None and type(entry) is not list:
            amount_minor = line.amount_minor
            if (amount_minor == entry.amount_minor and line.currency == entry.currency
                    and line.booked_on == entry.booked_on):  # the common case, kept fast
                matches.append(Match(one_to_one, reference, line.currency, (line.line_number,),
                                     (entry.entry_id,), amount_minor, amount_minor))
                continue
        _Group(reference, _as_list(line), _as_list(entry), options, sink).run()
    for reference, entry in entries_by_reference.items():
        _Group(reference, [], _as_list(entry), options, sink).run()
    return sink.result(totals)


def _grouped(rows, totals: dict[str, CurrencyTotals], *, is_statement: bool) -> dict[str, Any]:
    """Rows by reference: a reference's one row itself, or a list of its rows.

    Most references have one row on each side; keeping that row bare, not in a list of
    one, saves a list per row, which is a tenth of the time of a million-row run.
    """
    groups: dict[str, Any] = {}
    counts: dict[str, int] = {}
    sums: dict[str, int] = {}
    get_group, get_count, get_sum = groups.get, counts.get, sums.get
    for row in rows:
        reference, currency = row.reference, row.currency
        group = get_group(reference)
        if group is None:
            groups[reference] = row
        elif type(group) is list:
            group.append(row)
        else:
            groups[reference] = [group, row]
        counts[currency] = get_count(currency, 0) + 1
        sums[currency] = get_sum(currency, 0) + row.amount_minor
    for currency, count in counts.items():
        currency_totals = totals.get(currency)
        if currency_totals is None:
            currency_totals = totals[currency] = CurrencyTotals(currency)
        if is_statement:
            currency_totals.line_count = count
            currency_totals.statement_total_minor = sums[currency]
        else:
            currency_totals.entry_count = count
            currency_totals.ledger_total_minor = sums[currency]
    return groups


def _as_list(group: Any) -> list:
    if group is None:
        return []
    return group if type(group) is list else [group]


class _Sink:
    """Collects matches and breaks as the groups produce them."""

    def __init__(self) -> None:
        self.matches: list[Match] = []
        self.breaks: list[Break] = []

    def match(self, kind: MatchKind, reference: str, lines: Sequence[StatementLine],
              entries: Sequence[LedgerEntry]) -> None:
        self.matches.append(Match(
            kind, reference, lines[0].currency,
            tuple(line.line_number for line in lines), tuple(entry.entry_id for entry in entries),
            sum(line.amount_minor for line in lines),
            sum(entry.amount_minor for entry in entries)))

    def add_break(self, kind: BreakKind, reference: str, currency: str,
                  lines: Sequence[StatementLine], entries: Sequence[LedgerEntry], detail: str,
                  ledger_currency: str | None = None) -> None:
        self.breaks.append(Break(
            kind, reference, currency,
            tuple(line.line_number for line in lines), tuple(entry.entry_id for entry in entries),
            sum(line.amount_minor for line in lines) if lines else None,
            sum(entry.amount_minor for entry in entries) if entries else None,
            detail, ledger_currency))

    def result(self, totals: dict[str, CurrencyTotals]) -> Reconciliation:
        self.matches.sort(key=lambda match: match.line_numbers[0])
        self.breaks.sort(key=_break_order)
        matched_lines = matched_entries = 0
        for match in self.matches:
            matched_lines += len(match.line_numbers)
            matched_entries += len(match.entry_ids)
            currency_totals = totals[match.currency]
            currency_totals.matched_statement_minor += match.statement_amount_minor
            currency_totals.matched_ledger_minor += match.ledger_amount_minor
        break_counts = dict.fromkeys(BreakKind, 0)
        for found in self.breaks:
            break_counts[found.kind] += 1
        return Reconciliation(
            matches=self.matches, breaks=self.breaks,
            totals={code: totals[code] for code in sorted(totals)},
            line_count=sum(t.line_count for t in totals.values()),
            entry_count=sum(t.entry_count for t in totals.values()),
            matched_line_count=matched_lines, matched_entry_count=matched_entries,
            break_counts=break_counts)


def _break_order(found: Break) -> tuple:
    if found.line_numbers:
        return (0, found.line_numbers[0], "")
    return (1, 0, found.entry_ids[0])


def _line_order(line: StatementLine) -> int:
    return line.line_number


def _entry_order(entry: LedgerEntry) -> tuple[date, str]:
    return (entry.booked_on, entry.entry_id)


def _days_apart(a: date, b: date) -> int:
    return abs(a.toordinal() - b.toordinal())


class _Group:
    """The rows of one reference: matched in passes, then the rest classified."""

    def __init__(self, reference: str, lines: list[StatementLine], entries: list[LedgerEntry],
                 options: MatchOptions, sink: _Sink) -> None:
        self.reference = reference
        self.lines = sorted(lines, key=_line_order)
        self.entries = sorted(entries, key=_entry_order)
        self.open_lines = list(self.lines)  # unmatched, in line order
        self.open_entries = list(self.entries)  # unmatched, in (booked_on, entry_id) order
        self.options = options
        self.sink = sink
        self.cut_short: set[str] = set()  # currencies whose search a bound stopped

    def run(self) -> None:
        if self.open_lines and self.open_entries:
            self._exact_one_to_one()
            self._aggregates(amount_tolerance=0, date_tolerance=0)
            if self.options.tolerant:
                self._tolerant_one_to_one()
                self._aggregates(amount_tolerance=self.options.amount_tolerance_minor,
                                 date_tolerance=self.options.date_tolerance_days)
        _classify(self)

    # Passes. Each takes rows off open_lines/open_entries as it matches them.

    def _exact_one_to_one(self) -> None:
        waiting: dict[tuple, list[LedgerEntry]] = {}
        for entry in reversed(self.open_entries):  # reversed: pop() yields the first
            waiting.setdefault((entry.amount_minor, entry.currency, entry.booked_on),
                               []).append(entry)
        matched_lines, matched_entries = set(), set()
        for line in self.open_lines:
            candidates = waiting.get((line.amount_minor, line.currency, line.booked_on))
            if candidates:
                entry = candidates.pop()
                self.sink.match(MatchKind.ONE_TO_ONE, self.reference, (line,), (entry,))
                matched_lines.add(line.line_number)
                matched_entries.add(entry.entry_id)
        self._take(matched_lines, matched_entries)

    def _tolerant_one_to_one(self) -> None:
        amount_tolerance = self.options.amount_tolerance_minor
        date_tolerance = self.options.date_tolerance_days
        matched_lines, matched_entries = set(), set()
        for currency in self._searchable_currencies():
            entries = [e for e in self.open_entries if e.currency == currency]
            for line in (li for li in self.open_lines if li.currency == currency):
                best, best_key = None, None
                for position, entry in enumerate(entries):
                    if entry.entry_id in matched_entries:
                        continue
                    amount_gap = abs(line.amount_minor - entry.amount_minor)
                    days_gap = _days_apart(line.booked_on, entry.booked_on)
                    if amount_gap <= amount_tolerance and days_gap <= date_tolerance:
                        key = (amount_gap, days_gap, position)
                        if best_key is None or key < best_key:
                            best, best_key = entry, key
                if best is not None:
                    self.sink.match(MatchKind.ONE_TO_ONE, self.reference, (line,), (best,))
                    matched_lines.add(line.line_number)
                    matched_entries.add(best.entry_id)
        self._take(matched_lines, matched_entries)

    def _aggregates(self, *, amount_tolerance: int, date_tolerance: int) -> None:
        for currency in self._searchable_currencies():
            budget = _Budget(self.options.subset_search_max)
            self._one_to_many(currency, amount_tolerance, date_tolerance, budget)
            self._many_to_one(currency, amount_tolerance, date_tolerance, budget)
            if budget.exhausted:
                self.cut_short.add(currency)

    def _one_to_many(self, currency: str, amount_tolerance: int, date_tolerance: int,
                     budget: _Budget) -> None:
        for line in [li for li in self.open_lines if li.currency == currency]:
            candidates = [e for e in self.open_entries if e.currency == currency
                          and _days_apart(e.booked_on, line.booked_on) <= date_tolerance]
            chosen = _subset_summing_to(line.amount_minor, candidates, amount_tolerance, budget)
            if chosen is not None:
                self.sink.match(MatchKind.ONE_TO_MANY, self.reference, (line,), chosen)
                self._take({line.line_number}, {entry.entry_id for entry in chosen})

    def _many_to_one(self, currency: str, amount_tolerance: int, date_tolerance: int,
                     budget: _Budget) -> None:
        for entry in [e for e in self.open_entries if e.currency == currency]:
            candidates = [li for li in self.open_lines if li.currency == currency
                          and _days_apart(li.booked_on, entry.booked_on) <= date_tolerance]
            chosen = _subset_summing_to(entry.amount_minor, candidates, amount_tolerance, budget)
            if chosen is not None:
                self.sink.match(MatchKind.MANY_TO_ONE, self.reference, chosen, (entry,))
                self._take({line.line_number for line in chosen}, {entry.entry_id})

    def _searchable_currencies(self) -> list[str]:
        """Currencies with rows open on both sides, within the search bound."""
        line_counts: dict[str, int] = {}
        for line in self.open_lines:
            line_counts[line.currency] = line_counts.get(line.currency, 0) + 1
        entry_counts: dict[str, int] = {}
        for entry in self.open_entries:
            entry_counts[entry.currency] = entry_counts.get(entry.currency, 0) + 1
        searchable = []
        for currency in sorted(line_counts.keys() & entry_counts.keys()):
            if line_counts[currency] * entry_counts[currency] <= self.options.search_pairs_max:
                searchable.append(currency)
            else:
                self.cut_short.add(currency)
        return searchable

    def _take(self, line_numbers: set[int], entry_ids: set[str]) -> None:
        if line_numbers:
            self.open_lines = [li for li in self.open_lines if li.line_number not in line_numbers]
        if entry_ids:
            self.open_entries = [e for e in self.open_entries if e.entry_id not in entry_ids]


class _Budget:
    """How many more candidate sets the subset search may examine."""

    def __init__(self, remaining: int) -> None:
        self.remaining = remaining
        self.exhausted = False

    def spend(self) -> bool:
        if self.remaining <= 0:
            self.exhausted = True
            return False
        self.remaining -= 1
        return True


def _subset_summing_to(target_minor: int, candidates: list, tolerance_minor: int,
                       budget: _Budget) -> tuple | None:
    """The first set of two or more candidates whose amounts sum to the target (± tolerance).

    All candidates together are tried first (linear, outside the budget), then subsets by
    increasing size, each size in lexicographic order of the candidates' positions.
    """
    count = len(candidates)
    if count < 2:
        return None
    amounts = [candidate.amount_minor for candidate in candidates]
    if abs(sum(amounts) - target_minor) <= tolerance_minor:
        return tuple(candidates)
    for size in range(2, count):
        for positions in combinations(range(count), size):
            if not budget.spend():
                return None
            if abs(sum(amounts[p] for p in positions) - target_minor) <= tolerance_minor:
                return tuple(candidates[p] for p in positions)
    return None


def _classify(group: _Group) -> None:
    """Turn the group's unmatched rows into breaks (the rules are on `BreakKind`)."""
    lines = _without_duplicates(group)
    lines_by_currency: dict[str, list[StatementLine]] = {}
    for line in lines:
        lines_by_currency.setdefault(line.currency, []).append(line)
    entries_by_currency: dict[str, list[LedgerEntry]] = {}
    for entry in group.open_entries:
        entries_by_currency.setdefault(entry.currency, []).append(entry)
    for currency in sorted(lines_by_currency.keys() & entries_by_currency.keys()):
        _mismatch_in_one_currency(group, currency, lines_by_currency.pop(currency),
                                  entries_by_currency.pop(currency))
    statement_only, ledger_only = sorted(lines_by_currency), sorted(entries_by_currency)
    for statement_currency, ledger_currency in zip(statement_only, ledger_only, strict=False):
        group.sink.add_break(
            BreakKind.CURRENCY_MISMATCH, group.reference, statement_currency,
            lines_by_currency[statement_currency], entries_by_currency[ledger_currency],
            f"the statement has {statement_currency} under this reference, the ledger"
            f" {ledger_currency}", ledger_currency=ledger_currency)
    for currency in statement_only[len(ledger_only):]:
        detail = ("no ledger entry has this reference" if not group.entries
                  else f"no {currency} ledger entry under this reference is left unmatched")
        for line in lines_by_currency[currency]:
            _missing_in_ledger(group, line, detail)
    for currency in ledger_only[len(statement_only):]:
        detail = ("no statement line has this reference" if not group.lines
                  else f"no {currency} statement line under this reference is left unmatched")
        for entry in entries_by_currency[currency]:
            _missing_in_statement(group, entry, detail)


def _without_duplicates(group: _Group) -> list[StatementLine]:
    """Report unmatched lines that repeat an earlier line as duplicates; return the rest."""
    if not group.open_lines:
        return []
    open_numbers = {line.line_number for line in group.open_lines}
    first_line_of: dict[tuple, int] = {}
    rest = []
    for line in group.lines:
        key = (line.amount_minor, line.currency, line.booked_on)
        earlier = first_line_of.setdefault(key, line.line_number)
        if line.line_number not in open_numbers:
            continue
        if earlier != line.line_number:
            group.sink.add_break(
                BreakKind.DUPLICATE, group.reference, line.currency, (line,), (),
                f"repeats line {earlier} (same reference, amount, currency and date) more"
                " often than the ledger holds it")
        else:
            rest.append(line)
    return rest


def _mismatch_in_one_currency(group: _Group, currency: str, lines: list[StatementLine],
                              entries: list[LedgerEntry]) -> None:
    statement_minor = sum(line.amount_minor for line in lines)
    ledger_minor = sum(entry.amount_minor for entry in entries)
    cut_short = " (the matching search was cut short by its bound)" \
        if currency in group.cut_short else ""
    if statement_minor != ledger_minor:
        group.sink.add_break(
            BreakKind.AMOUNT_MISMATCH, group.reference, currency, lines, entries,
            f"statement {statement_minor} vs ledger {ledger_minor} minor units"
            f" (difference {statement_minor - ledger_minor:+}){cut_short}")
        return
    # Equal totals that did not match: the dates are beyond the tolerance, or the rows
    # split the total differently on each side (many-to-many, which is not matched).
    ledger_dates = ", ".join(sorted({entry.booked_on.isoformat() for entry in entries}))
    statement_dates = ", ".join(sorted({line.booked_on.isoformat() for line in lines}))
    for line in lines:
        _missing_in_ledger(group, line, "the ledger has the same total for this reference"
                           f" booked on {ledger_dates}, unmatched{cut_short}")
    for entry in entries:
        _missing_in_statement(group, entry, "the statement has the same total for this"
                              f" reference booked on {statement_dates}, unmatched{cut_short}")


def _missing_in_ledger(group: _Group, line: StatementLine, detail: str) -> None:
    group.sink.add_break(BreakKind.MISSING_IN_LEDGER, group.reference, line.currency,
                         (line,), (), detail)


def _missing_in_statement(group: _Group, entry: LedgerEntry, detail: str) -> None:
    group.sink.add_break(BreakKind.MISSING_IN_STATEMENT, group.reference, entry.currency,
                         (), (entry,), detail)
