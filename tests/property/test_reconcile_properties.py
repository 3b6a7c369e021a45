"""Properties of statement matching: planted breaks are all found and nothing else is.

Each generated case is a random mix of "plants", each under a reference of its own: rows
that must match (one-to-one exactly or within the tolerances, one-to-many, many-to-one)
and rows that must break in a known way (every class of `BreakKind`). Line numbers and
entry ids are shuffled, so the planted structure is not in the input's order. The
expected matches and breaks follow from the plants alone; `reconcile` must report exactly
those. A second property feeds unstructured rows (few references, few amounts, so rows
collide) and checks the bookkeeping: every row is in exactly one match or break, and the
totals add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from pacioli.gateways.sandbox.report import ReportRow, write_csv
from pacioli.reconciliation.statement import (
    BreakKind,
    LedgerEntry,
    MatchKind,
    MatchOptions,
    StatementLine,
    StatementMapping,
    read_statement,
    reconcile,
)

FIRST_DAY = date(2026, 11, 1)
CURRENCIES = ("USD", "EUR", "JPY")
AMOUNT_MAX_MINOR = 10**7


@dataclass
class Plant:
    """Rows under one reference, and what reconciling them must report."""

    lines: list[tuple[int, str, date]] = field(default_factory=list)  # amount, currency, date
    entries: list[tuple[int, str, date]] = field(default_factory=list)
    # Each outcome names rows by position in `lines`/`entries`; "lines:first" etc. resolved
    # once line numbers are known.
    outcomes: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    duplicate_copies: int = 0  # for "duplicate" plants: copies beyond the first
    duplicate_has_entry: bool = False


amounts = st.integers(1, AMOUNT_MAX_MINOR)
signed_amounts = st.integers(-AMOUNT_MAX_MINOR, AMOUNT_MAX_MINOR)
days = st.integers(0, 60).map(lambda offset: FIRST_DAY + timedelta(days=offset))
currencies = st.sampled_from(CURRENCIES)


@st.composite
def plants(draw, options: MatchOptions) -> Plant:
    kinds = ["one_to_one", "one_to_many", "many_to_one", "missing_in_ledger",
             "missing_in_statement", "amount_mismatch", "amount_mismatch_two_lines",
             "currency_mismatch", "duplicate"]
    if options.tolerant:
        kinds.append("tolerant_one_to_one")
    kind = draw(st.sampled_from(kinds))
    currency, day, plant = draw(currencies), draw(days), Plant()
    if kind == "one_to_one":
        amount = draw(signed_amounts)
        plant.lines, plant.entries = [(amount, currency, day)], [(amount, currency, day)]
        plant.outcomes.append((MatchKind.ONE_TO_ONE, (0,), (0,)))
    elif kind == "tolerant_one_to_one":
        amount = draw(signed_amounts)
        gap = draw(st.integers(-options.amount_tolerance_minor, options.amount_tolerance_minor))
        shift = draw(st.integers(-options.date_tolerance_days, options.date_tolerance_days))
        plant.lines = [(amount, currency, day)]
        plant.entries = [(amount + gap, currency, day + timedelta(days=shift))]
        plant.outcomes.append((MatchKind.ONE_TO_ONE, (0,), (0,)))
    elif kind in ("one_to_many", "many_to_one"):
        parts = draw(st.lists(amounts, min_size=2, max_size=5))
        many = [(part, currency, day) for part in parts]
        one = [(sum(parts), currency, day)]
        everything = tuple(range(len(parts)))
        if kind == "one_to_many":
            plant.lines, plant.entries = one, many
            plant.outcomes.append((MatchKind.ONE_TO_MANY, (0,), everything))
        else:
            plant.lines, plant.entries = many, one
            plant.outcomes.append((MatchKind.MANY_TO_ONE, everything, (0,)))
    elif kind == "missing_in_ledger":
        plant.lines = [(draw(signed_amounts), currency, day)]
        plant.outcomes.append((BreakKind.MISSING_IN_LEDGER, (0,), ()))
    elif kind == "missing_in_statement":
        plant.entries = [(draw(signed_amounts), currency, day)]
        plant.outcomes.append((BreakKind.MISSING_IN_STATEMENT, (), (0,)))
    elif kind == "amount_mismatch":
        amount = draw(signed_amounts)
        gap = draw(st.integers(options.amount_tolerance_minor + 1, AMOUNT_MAX_MINOR))
        gap *= draw(st.sampled_from((1, -1)))
        plant.lines, plant.entries = [(amount, currency, day)], [(amount + gap, currency, day)]
        plant.outcomes.append((BreakKind.AMOUNT_MISMATCH, (0,), (0,)))
    elif kind == "amount_mismatch_two_lines":
        first = draw(amounts)
        second = draw(amounts.filter(lambda a: a != first))
        ledger_amount = draw(amounts.filter(lambda b: all(
            abs(b - a) > options.amount_tolerance_minor for a in (first, second, first + second))))
        plant.lines = [(first, currency, day), (second, currency, day)]
        plant.entries = [(ledger_amount, currency, day)]
        plant.outcomes.append((BreakKind.AMOUNT_MISMATCH, (0, 1), (0,)))
    elif kind == "currency_mismatch":
        ledger_currency = draw(currencies.filter(lambda code: code != currency))
        plant.lines = [(draw(signed_amounts), currency, day)]
        plant.entries = [(draw(signed_amounts), ledger_currency, day)]
        plant.outcomes.append((BreakKind.CURRENCY_MISMATCH, (0,), (0,)))
    else:  # duplicate: the statement repeats a line more often than the ledger holds it
        amount = draw(signed_amounts)
        plant.duplicate_copies = draw(st.integers(1, 3))
        plant.duplicate_has_entry = draw(st.booleans())
        plant.lines = [(amount, currency, day)] * (plant.duplicate_copies + 1)
        plant.entries = [(amount, currency, day)] if plant.duplicate_has_entry else []
    return plant


@st.composite
def match_options(draw) -> MatchOptions:
    return MatchOptions(amount_tolerance_minor=draw(st.sampled_from((0, 0, 1, 50))),
                        date_tolerance_days=draw(st.sampled_from((0, 0, 1, 3))))


@st.composite
def planted_cases(draw):
    options = draw(match_options())
    planted = draw(st.lists(plants(options), min_size=1, max_size=40))
    line_total = sum(len(plant.lines) for plant in planted)
    entry_total = sum(len(plant.entries) for plant in planted)
    line_numbers = draw(st.permutations(range(2, line_total + 2)))
    entry_numbers = draw(st.permutations(range(entry_total)))
    return options, planted, line_numbers, entry_numbers


def build(planted: list[Plant], line_numbers, entry_numbers):
    """The statement lines, ledger entries and expected outcomes of the plants."""
    lines, entries, expected = [], [], set()
    next_line = next_entry = 0
    for index, plant in enumerate(planted):
        reference = f"ref_{index:03}"
        numbers = list(line_numbers[next_line:next_line + len(plant.lines)])
        ids = [f"entry_{n:05}" for n in entry_numbers[next_entry:next_entry + len(plant.entries)]]
        next_line += len(plant.lines)
        next_entry += len(plant.entries)
        lines += [StatementLine(n, reference, amount, currency, day)
                  for n, (amount, currency, day) in zip(numbers, plant.lines, strict=True)]
        entries += [LedgerEntry(i, reference, amount, currency, day)
                    for i, (amount, currency, day) in zip(ids, plant.entries, strict=True)]
        for kind, line_positions, entry_positions in plant.outcomes:
            expected.add((kind, frozenset(numbers[p] for p in line_positions),
                          frozenset(ids[p] for p in entry_positions)))
        if plant.duplicate_copies:
            # The earliest copy matches the ledger's one row (or is missing from it); every
            # later copy is a duplicate.
            first, *later = sorted(numbers)
            expected.add((MatchKind.ONE_TO_ONE, frozenset({first}), frozenset(ids))
                         if plant.duplicate_has_entry
                         else (BreakKind.MISSING_IN_LEDGER, frozenset({first}), frozenset()))
            expected |= {(BreakKind.DUPLICATE, frozenset({n}), frozenset()) for n in later}
    return lines, entries, expected


def reported(result) -> set:
    return ({(m.kind, frozenset(m.line_numbers), frozenset(m.entry_ids)) for m in result.matches}
            | {(b.kind, frozenset(b.line_numbers), frozenset(b.entry_ids)) for b in result.breaks})


@settings(max_examples=300)
@given(planted_cases())
def test_every_planted_break_is_found_and_nothing_else(case):
    options, planted, line_numbers, entry_numbers = case
    lines, entries, expected = build(planted, line_numbers, entry_numbers)
    result = reconcile(lines, entries, options)
    assert reported(result) == expected
    assert len(result.matches) + len(result.breaks) == len(expected)  # no outcome twice
    expected_matches = [outcome for outcome in expected if isinstance(outcome[0], MatchKind)]
    assert result.matched_line_count == sum(len(outcome[1]) for outcome in expected_matches)
    assert result.matched_entry_count == sum(len(outcome[2]) for outcome in expected_matches)
    for kind in BreakKind:
        assert result.break_counts[kind] == sum(1 for outcome in expected if outcome[0] == kind)


@settings(max_examples=100)
@given(planted_cases(), st.randoms(use_true_random=False))
def test_input_order_does_not_change_the_result(case, shuffler):
    options, planted, line_numbers, entry_numbers = case
    lines, entries, _ = build(planted, line_numbers, entry_numbers)
    first = reconcile(lines, entries, options)
    shuffler.shuffle(lines)
    shuffler.shuffle(entries)
    again = reconcile(lines, entries, options)
    assert (again.matches, again.breaks) == (first.matches, first.breaks)


small_amounts = st.sampled_from((-30, -10, 0, 10, 20, 30, 40, 60, 100))
references = st.sampled_from(("A", "B", "C", ""))


@st.composite
def colliding_rows(draw):
    line_specs = draw(st.lists(st.tuples(references, small_amounts, currencies,
                                         st.integers(0, 2)), max_size=30))
    entry_specs = draw(st.lists(st.tuples(references, small_amounts, currencies,
                                          st.integers(0, 2)), max_size=30))
    lines = [StatementLine(n + 2, ref, amount, currency, FIRST_DAY + timedelta(days=shift))
             for n, (ref, amount, currency, shift) in enumerate(line_specs)]
    entries = [LedgerEntry(f"e{n:03}", ref, amount, currency, FIRST_DAY + timedelta(days=shift))
               for n, (ref, amount, currency, shift) in enumerate(entry_specs)]
    return lines, entries, draw(match_options())


@settings(max_examples=300)
@given(colliding_rows())
def test_every_row_lands_in_exactly_one_match_or_break_and_totals_add_up(case):
    lines, entries, options = case
    result = reconcile(lines, entries, options)
    reported_lines = [n for o in (*result.matches, *result.breaks) for n in o.line_numbers]
    reported_entries = [i for o in (*result.matches, *result.breaks) for i in o.entry_ids]
    assert sorted(reported_lines) == sorted(line.line_number for line in lines)
    assert sorted(reported_entries) == sorted(entry.entry_id for entry in entries)
    by_number = {line.line_number: line for line in lines}
    by_id = {entry.entry_id: entry for entry in entries}
    for match in result.matches:
        matched_lines = [by_number[n] for n in match.line_numbers]
        matched_entries = [by_id[i] for i in match.entry_ids]
        assert {row.reference for row in matched_lines + matched_entries} == {match.reference}
        assert {row.currency for row in matched_lines + matched_entries} == {match.currency}
        assert abs(match.statement_amount_minor - match.ledger_amount_minor) \
            <= options.amount_tolerance_minor
        assert all(abs((a.booked_on - b.booked_on).days) <= options.date_tolerance_days
                   for a in matched_lines for b in matched_entries)
        assert len(match.line_numbers) == 1 or len(match.entry_ids) == 1
    for currency, totals in result.totals.items():
        statement_breaks = sum(b.statement_amount_minor or 0 for b in result.breaks
                               if b.currency == currency)
        ledger_breaks = sum(b.ledger_amount_minor or 0 for b in result.breaks
                            if (b.ledger_currency or b.currency) == currency)
        assert totals.statement_total_minor == totals.matched_statement_minor + statement_breaks
        assert totals.ledger_total_minor == totals.matched_ledger_minor + ledger_breaks


SCALES = {"USD": 2, "EUR": 2, "JPY": 0, "BHD": 3}
report_rows = st.builds(
    ReportRow,
    reference=st.text("abcdef0123456789_-,\" ", min_size=1, max_size=30).map(
        lambda text: "op_" + text.strip() + "x"),
    type=st.sampled_from(("capture", "refund", "payout")),
    amount_minor=st.integers(-10**30, 10**30),
    currency=st.sampled_from(sorted(SCALES)),
    settled_on=days,
)


@settings(max_examples=100)
@given(rows=st.lists(report_rows, max_size=30))
def test_the_sandbox_mapping_reads_back_exactly_what_the_sandbox_report_writes(
        tmp_path_factory, rows):
    path = tmp_path_factory.mktemp("report") / "settlement.csv"
    with open(path, "w", encoding="utf-8", newline="") as file:
        write_csv(iter(rows), file, scale_of=SCALES.__getitem__)
    lines = list(read_statement(path, StatementMapping.builtin("sandbox_gateway"),
                                scale_of=SCALES.__getitem__))
    assert [(line.reference, line.amount_minor, line.currency, line.booked_on)
            for line in lines] == [(row.reference, row.amount_minor, row.currency,
                                    row.settled_on) for row in rows]
    assert [line.line_number for line in lines] == list(range(2, len(rows) + 2))
