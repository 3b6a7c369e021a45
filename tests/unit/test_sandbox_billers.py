"""The sandbox billers' registry, magic references, bills and amount rules (no database:
bills are derived from the reference; submissions are tested in integration)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from pacioli.gateways.billers import AmountRule, Bill, BillerCategory, Presentment
from pacioli.gateways.billers.base import (
    BillerRejectedRequest,
    BillFetchNotSupported,
    UnknownBiller,
    UnknownCustomerReference,
    amount_allowed,
)
from pacioli.gateways.billers.sandbox import (
    SANDBOX_BILLERS,
    Behavior,
    SandboxBillerRegistry,
    behavior_of,
)

TODAY = date(2026, 11, 24)


@pytest.fixture
def registry() -> SandboxBillerRegistry:
    # Fetching a bill never touches the database, so no engine is needed here.
    return SandboxBillerRegistry(None, today=lambda: TODAY)  # type: ignore[arg-type]


def bill(amount_minor: int, minimum_due_minor: int | None) -> Bill:
    return Bill("b-1", "ACC-1", "A. Lovelace", amount_minor, minimum_due_minor, "USD", TODAY)


def test_the_registry_has_billers_in_every_category(registry):
    categories = {info.category for info in registry.list_billers()}
    assert categories == set(BillerCategory)
    assert [info.id for info in registry.list_billers()] == sorted(i.id for i in SANDBOX_BILLERS)


def test_the_registry_filters_by_category(registry):
    electricity = registry.list_billers(BillerCategory.ELECTRICITY)
    assert {info.id for info in electricity} == {"sandbox_grid_in", "sandbox_power"}
    assert all(info.category is BillerCategory.ELECTRICITY for info in electricity)


def test_the_registry_holds_every_rule(registry):
    infos = registry.list_billers()
    assert {info.amount_rule for info in infos} == set(AmountRule)
    assert {info.presentment for info in infos} == set(Presentment)


def test_every_direct_pay_biller_takes_any_amount(registry):
    for info in registry.list_billers():
        if info.presentment is Presentment.DIRECT_PAY:
            assert info.amount_rule is AmountRule.ANY


def test_an_unknown_biller_is_refused(registry):
    with pytest.raises(UnknownBiller) as raised:
        registry.get("sandbox_gas")
    assert raised.value.code == "biller_not_found"


@pytest.mark.parametrize(
    ("reference", "behavior"),
    [
        ("PEND-0001", Behavior.STAY_PENDING),
        ("pend0001", Behavior.STAY_PENDING),
        ("FAIL-77", Behavior.FAIL),
        ("NONE-123", Behavior.NOT_FOUND),
        ("LOST-9", Behavior.LOSE_FIRST_ANSWER),
        ("ACC-123456", Behavior.CONFIRM),
        ("+14155550100", Behavior.CONFIRM),
    ],
)
def test_a_reference_prefix_chooses_the_sandbox_outcome(reference, behavior):
    assert behavior_of(reference) is behavior


def test_a_bill_is_the_same_every_time_it_is_fetched(registry):
    power = registry.get("sandbox_power")
    first, second = power.fetch_bill("ACC-1001"), power.fetch_bill("ACC-1001")
    other = power.fetch_bill("ACC-1002")

    assert first == second
    assert first.bill_reference != other.bill_reference
    assert 10_00 <= first.amount_minor < 500_00
    assert first.currency == "USD" and first.customer_reference == "ACC-1001"
    assert TODAY + timedelta(days=5) <= first.due_date < TODAY + timedelta(days=30)


def test_each_rule_shapes_the_minimum_due(registry):
    exact = registry.get("sandbox_power").fetch_bill("ACC-1")
    minimum = registry.get("sandbox_card").fetch_bill("ACC-1")
    anything = registry.get("sandbox_water").fetch_bill("ACC-1")

    assert exact.minimum_due_minor == exact.amount_minor
    assert minimum.minimum_due_minor == minimum.amount_minor // 10
    assert anything.minimum_due_minor is None


def test_an_unknown_customer_reference_has_no_bill(registry):
    with pytest.raises(UnknownCustomerReference) as raised:
        registry.get("sandbox_power").fetch_bill("NONE-42")
    assert raised.value.code == "bill_not_found"


def test_a_direct_pay_biller_presents_no_bill(registry):
    with pytest.raises(BillFetchNotSupported):
        registry.get("sandbox_mobile_prepaid").fetch_bill("+14155550100")


@pytest.mark.parametrize("reference", ["abc", "x" * 33, "ACC 1", "ACC/1", "ACC_1"])
def test_a_malformed_reference_is_refused_by_the_biller(registry, reference):
    with pytest.raises(BillerRejectedRequest):
        registry.get("sandbox_power").fetch_bill(reference)


@pytest.mark.parametrize(
    ("rule", "amount_minor", "allowed"),
    [
        (AmountRule.EXACT, 100_00, True),
        (AmountRule.EXACT, 99_99, False),
        (AmountRule.EXACT, 100_01, False),
        (AmountRule.MINIMUM, 10_00, True),
        (AmountRule.MINIMUM, 9_99, False),
        (AmountRule.MINIMUM, 250_00, True),
        (AmountRule.ANY, 1, True),
        (AmountRule.ANY, 0, False),
        (AmountRule.ANY, -5, False),
    ],
)
def test_each_amount_rule_takes_the_amounts_it_should(rule, amount_minor, allowed):
    minimum_due = {AmountRule.EXACT: 100_00, AmountRule.MINIMUM: 10_00}.get(rule)
    assert amount_allowed(rule, bill(100_00, minimum_due), amount_minor) is allowed


def test_any_amount_needs_no_bill():
    assert amount_allowed(AmountRule.ANY, None, 5_00)
