"""The matching engine: each match kind, each break class, tie-breaks, tolerances, bounds."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from pacioli.reconciliation.matching import InvalidMatchOptions
from pacioli.reconciliation.statement import (
    BreakKind,
    LedgerEntry,
    MatchKind,
    MatchOptions,
    StatementLine,
    reconcile,
)

DAY = date(2026, 11, 24)


def line(number: int, reference: str, amount_minor: int, currency: str = "USD",
         booked_on: date = DAY) -> StatementLine:
    return StatementLine(number, reference, amount_minor, currency, booked_on)


def entry(entry_id: str, reference: str, amount_minor: int, currency: str = "USD",
          booked_on: date = DAY) -> LedgerEntry:
    return LedgerEntry(entry_id, reference, amount_minor, currency, booked_on)


def matched(result) -> list[tuple]:
    return [(m.kind, m.line_numbers, m.entry_ids) for m in result.matches]


def broken(result) -> list[tuple]:
    return [(b.kind, b.line_numbers, b.entry_ids) for b in result.breaks]


# Matches.


def test_exact_one_to_one_on_reference_amount_currency_and_date():
    result = reconcile([line(2, "A", 100), line(3, "B", -50, "EUR")],
                       [entry("b", "B", -50, "EUR"), entry("a", "A", 100)])
    assert matched(result) == [(MatchKind.ONE_TO_ONE, (2,), ("a",)),
                               (MatchKind.ONE_TO_ONE, (3,), ("b",))]
    assert result.clean
    assert (result.matched_line_count, result.matched_entry_count) == (2, 2)


def test_one_line_matches_many_entries_of_its_reference():
    result = reconcile([line(2, "payout_1", 1000)],
                       [entry("p1", "payout_1", 250), entry("p2", "payout_1", 700),
                        entry("p3", "payout_1", 50)])
    assert matched(result) == [(MatchKind.ONE_TO_MANY, (2,), ("p1", "p2", "p3"))]
    assert result.matches[0].statement_amount_minor == result.matches[0].ledger_amount_minor


def test_many_lines_match_one_entry_of_their_reference():
    result = reconcile([line(2, "R", 30), line(3, "R", 70), line(4, "R", 5)],
                       [entry("e", "R", 100)])
    assert matched(result) == [(MatchKind.MANY_TO_ONE, (2, 3), ("e",))]
    assert broken(result) == [(BreakKind.MISSING_IN_LEDGER, (4,), ())]


def test_a_reference_never_matches_another_reference():
    result = reconcile([line(2, "A", 100)], [entry("b", "B", 100)])
    assert matched(result) == []
    assert broken(result) == [(BreakKind.MISSING_IN_LEDGER, (2,), ()),
                              (BreakKind.MISSING_IN_STATEMENT, (), ("b",))]


def test_one_to_one_is_preferred_to_a_sum():
    result = reconcile([line(2, "R", 100)],
                       [entry("a", "R", 60), entry("b", "R", 40), entry("c", "R", 100)])
    assert matched(result) == [(MatchKind.ONE_TO_ONE, (2,), ("c",))]
    assert broken(result) == [(BreakKind.MISSING_IN_STATEMENT, (), ("a",)),
                              (BreakKind.MISSING_IN_STATEMENT, (), ("b",))]


def test_all_candidates_together_are_tried_before_smaller_subsets():
    # {c, d} sums to 100 too, but all candidates together (every payment a payout
    # covers) are tried first.
    entries = [entry("a", "R", 30), entry("b", "R", -30), entry("c", "R", 60),
               entry("d", "R", 40)]
    result = reconcile([line(2, "R", 100)], entries)
    assert matched(result) == [(MatchKind.ONE_TO_MANY, (2,), ("a", "b", "c", "d"))]


def test_the_smallest_subset_wins_then_the_first_in_entry_order():
    entries = [entry("a", "R", 10), entry("b", "R", 90), entry("c", "R", 20),
               entry("d", "R", 80), entry("e", "R", 50), entry("f", "R", 25),
               entry("g", "R", 25)]
    result = reconcile([line(2, "R", 100)], entries)
    assert matched(result) == [(MatchKind.ONE_TO_MANY, (2,), ("a", "b"))]


def test_one_to_many_is_tried_before_many_to_one():
    # Line 2 = a + b (one-to-many) and a = lines 3 + 4 (many-to-one): the first wins.
    result = reconcile([line(2, "R", 100), line(3, "R", 30), line(4, "R", 30)],
                       [entry("a", "R", 60), entry("b", "R", 40)])
    assert matched(result) == [(MatchKind.ONE_TO_MANY, (2,), ("a", "b"))]
    assert broken(result) == [(BreakKind.MISSING_IN_LEDGER, (3,), ()),
                              (BreakKind.DUPLICATE, (4,), ())]


def test_each_ledger_entry_is_used_at_most_once():
    lines = [line(n, "R", 100) for n in range(2, 6)]
    result = reconcile(lines, [entry("a", "R", 100), entry("b", "R", 100)])
    used = [entry_id for match in result.matches for entry_id in match.entry_ids]
    assert sorted(used) == ["a", "b"]
    assert matched(result) == [(MatchKind.ONE_TO_ONE, (2,), ("a",)),
                               (MatchKind.ONE_TO_ONE, (3,), ("b",))]


def test_equal_entries_go_to_lines_in_line_order_by_entry_id():
    result = reconcile([line(7, "R", 5), line(3, "R", 5)],
                       [entry("z", "R", 5), entry("m", "R", 5)])
    assert matched(result) == [(MatchKind.ONE_TO_ONE, (3,), ("m",)),
                               (MatchKind.ONE_TO_ONE, (7,), ("z",))]


def test_the_result_does_not_depend_on_input_order():
    lines = [line(n, f"R{n % 7}", (n % 5) * 10 + 10, "USD" if n % 3 else "EUR",
                  DAY + timedelta(days=n % 2)) for n in range(2, 60)]
    entries = [entry(f"e{i:03}", f"R{i % 7}", (i % 4) * 10 + 10, "USD" if i % 5 else "EUR",
                     DAY + timedelta(days=i % 3)) for i in range(70)]
    options = MatchOptions(amount_tolerance_minor=5, date_tolerance_days=1)
    expected = reconcile(lines, entries, options)
    shuffler = random.Random(4)
    for _ in range(5):
        shuffler.shuffle(lines)
        shuffler.shuffle(entries)
        again = reconcile(lines, entries, options)
        assert (again.matches, again.breaks) == (expected.matches, expected.breaks)


# Tolerances.


def test_an_amount_within_the_tolerance_matches_and_keeps_both_amounts():
    result = reconcile([line(2, "R", 1000)], [entry("e", "R", 998)],
                       MatchOptions(amount_tolerance_minor=2))
    assert matched(result) == [(MatchKind.ONE_TO_ONE, (2,), ("e",))]
    match = result.matches[0]
    assert (match.statement_amount_minor, match.ledger_amount_minor) == (1000, 998)
    assert result.totals["USD"].matched_statement_minor == 1000
    assert result.totals["USD"].matched_ledger_minor == 998


def test_an_amount_beyond_the_tolerance_is_an_amount_mismatch():
    result = reconcile([line(2, "R", 1000)], [entry("e", "R", 997)],
                       MatchOptions(amount_tolerance_minor=2))
    assert broken(result) == [(BreakKind.AMOUNT_MISMATCH, (2,), ("e",))]


def test_the_nearest_amount_then_the_nearest_date_wins_within_the_tolerance():
    options = MatchOptions(amount_tolerance_minor=5, date_tolerance_days=3)
    result = reconcile([line(2, "R", 100)],
                       [entry("a", "R", 104), entry("b", "R", 98, booked_on=DAY + timedelta(3)),
                        entry("d", "R", 102, booked_on=DAY + timedelta(2)),
                        entry("c", "R", 98, booked_on=DAY - timedelta(2))], options)
    # b, c and d are 2 away in amount; c and d 2 days away; c is booked first.
    assert matched(result) == [(MatchKind.ONE_TO_ONE, (2,), ("c",))]


def test_an_exact_match_is_preferred_to_a_nearer_date_within_the_tolerance():
    options = MatchOptions(date_tolerance_days=2)
    result = reconcile([line(2, "R", 100), line(3, "R", 100, booked_on=DAY + timedelta(1))],
                       [entry("a", "R", 100, booked_on=DAY + timedelta(1)),
                        entry("b", "R", 100, booked_on=DAY + timedelta(2))], options)
    assert matched(result) == [(MatchKind.ONE_TO_ONE, (2,), ("b",)),
                               (MatchKind.ONE_TO_ONE, (3,), ("a",))]


def test_an_exact_sum_is_preferred_to_a_one_to_one_within_the_tolerance():
    result = reconcile([line(2, "R", 100)],
                       [entry("a", "R", 60), entry("b", "R", 40), entry("c", "R", 99)],
                       MatchOptions(amount_tolerance_minor=1))
    assert matched(result) == [(MatchKind.ONE_TO_MANY, (2,), ("a", "b"))]
    assert broken(result) == [(BreakKind.MISSING_IN_STATEMENT, (), ("c",))]


def test_a_sum_within_the_tolerance_matches_when_nothing_exact_does():
    result = reconcile([line(2, "R", 101), line(3, "R", 7)],
                       [entry("a", "R", 60), entry("b", "R", 40)],
                       MatchOptions(amount_tolerance_minor=1))
    assert matched(result) == [(MatchKind.ONE_TO_MANY, (2,), ("a", "b"))]


def test_a_date_within_the_tolerance_matches_and_beyond_it_does_not():
    entries = [entry("e", "R", 100, booked_on=DAY + timedelta(days=2))]
    within = reconcile([line(2, "R", 100)], entries, MatchOptions(date_tolerance_days=2))
    assert matched(within) == [(MatchKind.ONE_TO_ONE, (2,), ("e",))]
    beyond = reconcile([line(2, "R", 100)], entries, MatchOptions(date_tolerance_days=1))
    # Same reference and amount, the date too far: each side is missing from the other.
    assert broken(beyond) == [(BreakKind.MISSING_IN_LEDGER, (2,), ()),
                              (BreakKind.MISSING_IN_STATEMENT, (), ("e",))]
    assert "2026-11-26" in beyond.breaks[0].detail
    assert "2026-11-24" in beyond.breaks[1].detail


def test_every_member_of_a_sum_must_be_within_the_date_tolerance():
    entries = [entry("a", "R", 60), entry("b", "R", 40, booked_on=DAY + timedelta(days=3))]
    result = reconcile([line(2, "R", 100)], entries, MatchOptions(date_tolerance_days=2))
    assert matched(result) == []
    # The totals agree, so no amount is wrong: each side lacks the other's rows.
    assert broken(result) == [(BreakKind.MISSING_IN_LEDGER, (2,), ()),
                              (BreakKind.MISSING_IN_STATEMENT, (), ("a",)),
                              (BreakKind.MISSING_IN_STATEMENT, (), ("b",))]
    within = reconcile([line(2, "R", 100)], entries, MatchOptions(date_tolerance_days=3))
    assert matched(within) == [(MatchKind.ONE_TO_MANY, (2,), ("a", "b"))]


@pytest.mark.parametrize("field", ["amount_tolerance_minor", "date_tolerance_days",
                                   "search_pairs_max", "subset_search_max"])
def test_negative_or_non_integer_options_are_refused(field):
    with pytest.raises(InvalidMatchOptions) as caught:
        MatchOptions(**{field: -1})
    assert caught.value.code == "invalid_match_options"
    with pytest.raises(InvalidMatchOptions):
        MatchOptions(**{field: 1.5})


# Break classes.


def test_missing_in_ledger_is_one_break_per_line_with_nothing_to_pair():
    result = reconcile([line(2, "A", 100), line(3, "A", 200)], [])
    assert broken(result) == [(BreakKind.MISSING_IN_LEDGER, (2,), ()),
                              (BreakKind.MISSING_IN_LEDGER, (3,), ())]
    found = result.breaks[0]
    assert (found.statement_amount_minor, found.ledger_amount_minor) == (100, None)
    assert found.detail == "no ledger entry has this reference"


def test_missing_in_statement_is_one_break_per_entry_with_nothing_to_pair():
    result = reconcile([], [entry("b", "A", 5), entry("a", "A", 7)])
    assert broken(result) == [(BreakKind.MISSING_IN_STATEMENT, (), ("a",)),
                              (BreakKind.MISSING_IN_STATEMENT, (), ("b",))]
    assert (result.breaks[0].statement_amount_minor, result.breaks[0].ledger_amount_minor) == (
        None, 7)


def test_amount_mismatch_carries_every_unmatched_row_of_the_reference_and_currency():
    result = reconcile([line(2, "R", 100), line(3, "R", 50), line(4, "R", 9, "EUR")],
                       [entry("a", "R", 120), entry("b", "R", 9, "EUR")])
    assert matched(result) == [(MatchKind.ONE_TO_ONE, (4,), ("b",))]
    assert broken(result) == [(BreakKind.AMOUNT_MISMATCH, (2, 3), ("a",))]
    found = result.breaks[0]
    assert (found.currency, found.statement_amount_minor, found.ledger_amount_minor) == (
        "USD", 150, 120)
    assert "difference +30" in found.detail


def test_currency_mismatch_pairs_a_statement_currency_with_a_ledger_currency():
    result = reconcile([line(2, "R", 100, "EUR")], [entry("a", "R", 100, "USD")])
    assert broken(result) == [(BreakKind.CURRENCY_MISMATCH, (2,), ("a",))]
    found = result.breaks[0]
    assert (found.currency, found.ledger_currency) == ("EUR", "USD")
    assert (found.statement_amount_minor, found.ledger_amount_minor) == (100, 100)


def test_currencies_left_over_after_pairing_are_missing():
    result = reconcile([line(2, "R", 1, "EUR"), line(3, "R", 2, "GBP")],
                       [entry("a", "R", 1, "USD")])
    assert broken(result) == [(BreakKind.CURRENCY_MISMATCH, (2,), ("a",)),
                              (BreakKind.MISSING_IN_LEDGER, (3,), ())]
    assert result.breaks[1].detail == "no GBP ledger entry under this reference is left unmatched"


def test_a_line_repeated_beyond_what_the_ledger_holds_is_a_duplicate():
    result = reconcile([line(2, "R", 100), line(3, "R", 100), line(4, "R", 100)],
                       [entry("a", "R", 100)])
    assert matched(result) == [(MatchKind.ONE_TO_ONE, (2,), ("a",))]
    assert broken(result) == [(BreakKind.DUPLICATE, (3,), ()), (BreakKind.DUPLICATE, (4,), ())]
    assert result.breaks[0].detail.startswith("repeats line 2")


def test_a_line_repeated_as_often_as_the_ledger_holds_it_is_no_duplicate():
    result = reconcile([line(2, "R", 100), line(3, "R", 100)],
                       [entry("a", "R", 100), entry("b", "R", 100)])
    assert result.clean


def test_a_repeated_line_the_ledger_lacks_is_missing_once_then_duplicate():
    result = reconcile([line(2, "R", 100), line(3, "R", 100)], [])
    assert broken(result) == [(BreakKind.MISSING_IN_LEDGER, (2,), ()),
                              (BreakKind.DUPLICATE, (3,), ())]


def test_lines_differing_in_date_are_not_duplicates():
    result = reconcile([line(2, "R", 100), line(3, "R", 100, booked_on=DAY + timedelta(1))],
                       [entry("a", "R", 100)])
    assert broken(result) == [(BreakKind.MISSING_IN_LEDGER, (3,), ())]


def test_equal_totals_split_differently_are_missing_on_both_sides():
    result = reconcile([line(2, "R", 30), line(3, "R", 70)],
                       [entry("a", "R", 40), entry("b", "R", 60)])
    assert [found.kind for found in result.breaks] == [
        BreakKind.MISSING_IN_LEDGER, BreakKind.MISSING_IN_LEDGER,
        BreakKind.MISSING_IN_STATEMENT, BreakKind.MISSING_IN_STATEMENT]


# Bounds.


def test_beyond_the_subset_budget_rows_are_breaks_saying_the_search_was_cut_short():
    entries = [entry(f"e{i}", "R", amount) for i, amount in enumerate([1, 2, 4, 8, 16, 32])]
    line_ = line(2, "R", 1 + 2 + 4 + 8 + 16)  # a subset of five: needs many candidate sets
    found = reconcile([line_], entries, MatchOptions(subset_search_max=1_000))
    assert matched(found) == [(MatchKind.ONE_TO_MANY, (2,), ("e0", "e1", "e2", "e3", "e4"))]
    cut = reconcile([line_], entries, MatchOptions(subset_search_max=10))
    assert broken(cut) == [(BreakKind.AMOUNT_MISMATCH, (2,), tuple(f"e{i}" for i in range(6)))]
    assert "cut short" in cut.breaks[0].detail


def test_the_all_candidates_sum_is_tried_even_with_no_subset_budget():
    entries = [entry(f"e{i:04}", "R", 1) for i in range(5_000)]
    result = reconcile([line(2, "R", 5_000)], entries, MatchOptions(subset_search_max=0))
    assert [m.kind for m in result.matches] == [MatchKind.ONE_TO_MANY]
    assert result.matched_entry_count == 5_000


def test_beyond_the_pairs_bound_no_sum_or_tolerance_is_searched():
    lines = [line(2, "R", 100), line(3, "R", 3)]
    entries = [entry("a", "R", 60), entry("b", "R", 40)]
    result = reconcile(lines, entries, MatchOptions(search_pairs_max=3))
    assert broken(result) == [(BreakKind.AMOUNT_MISMATCH, (2, 3), ("a", "b"))]
    assert "cut short" in result.breaks[0].detail


# Totals and counts.


def test_totals_per_currency_and_counts_per_break_kind():
    result = reconcile(
        [line(2, "A", 100), line(3, "B", 50), line(4, "C", 7, "EUR")],
        [entry("a", "A", 100), entry("b", "B", 40), entry("d", "D", 3, "EUR")])
    usd, eur = result.totals["USD"], result.totals["EUR"]
    assert (usd.line_count, usd.entry_count, usd.statement_total_minor, usd.ledger_total_minor,
            usd.matched_statement_minor, usd.matched_ledger_minor) == (2, 2, 150, 140, 100, 100)
    assert (eur.statement_total_minor, eur.ledger_total_minor, eur.matched_statement_minor) == (
        7, 3, 0)
    assert list(result.totals) == ["EUR", "USD"]
    assert result.break_counts == {
        BreakKind.MISSING_IN_LEDGER: 1, BreakKind.MISSING_IN_STATEMENT: 1,
        BreakKind.AMOUNT_MISMATCH: 1, BreakKind.CURRENCY_MISMATCH: 0, BreakKind.DUPLICATE: 0}
    assert (result.line_count, result.entry_count) == (3, 3)


def test_nothing_against_nothing_is_clean():
    result = reconcile([], [])
    assert result.clean and result.totals == {} and result.matches == []
