"""Properties of the Luhn check: a check digit always completes, one wrong digit is caught."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pacioli.gateways.cards import luhn_check_digit, luhn_valid

partials = st.text(alphabet="0123456789", min_size=1, max_size=18)


@given(partials)
def test_appending_the_check_digit_always_passes_luhn(partial):
    assert luhn_valid(partial + luhn_check_digit(partial))


@given(partials, st.data())
def test_changing_any_single_digit_breaks_luhn(partial, data):
    number = partial + luhn_check_digit(partial)
    position = data.draw(st.integers(0, len(number) - 1))
    replacement = data.draw(st.sampled_from([d for d in "0123456789" if d != number[position]]))
    assert not luhn_valid(number[:position] + replacement + number[position + 1:])


@given(partials)
def test_exactly_one_check_digit_completes_a_partial_number(partial):
    assert sum(luhn_valid(partial + digit) for digit in "0123456789") == 1
