"""Statement mappings: the shipped ones load, and a bad mapping is refused with its key named."""

from __future__ import annotations

import pytest

from pacioli.reconciliation.mapping import (
    InvalidMapping,
    StatementMapping,
    UnknownMapping,
    builtin_names,
)

MINIMAL = """
[columns]
reference = "ref"
amount = "amt"
currency = "cur"
booked_on = "day"
"""


def test_the_sandbox_gateway_and_generic_bank_mappings_are_shipped():
    assert {"sandbox_gateway", "generic_bank"} <= set(builtin_names())


def test_sandbox_gateway_mapping_describes_the_settlement_report_columns():
    mapping = StatementMapping.builtin("sandbox_gateway")
    assert mapping.required_columns == ("reference", "amount", "settled_on", "currency")
    assert (mapping.amount_unit, mapping.sign_rule, mapping.date_format) == (
        "major", "signed", "%Y-%m-%d")
    assert mapping.ledger.account_purpose == "processor_clearing"
    assert mapping.ledger.account_scope == "sandbox"


def test_generic_bank_mapping_reads_date_reference_amount_currency():
    mapping = StatementMapping.builtin("generic_bank")
    assert mapping.required_columns == ("Reference", "Amount", "Date", "Currency")
    assert mapping.ledger.account_purpose == "bank_settlement"


def test_an_unknown_builtin_name_is_refused_listing_the_known_ones():
    with pytest.raises(UnknownMapping, match="generic_bank") as caught:
        StatementMapping.builtin("acme_bank")
    assert caught.value.code == "unknown_mapping"


def test_a_mapping_file_loads_with_defaults(tmp_path):
    path = tmp_path / "acme.toml"
    path.write_text(MINIMAL, encoding="utf-8")
    mapping = StatementMapping.load(path)
    assert mapping.name == "acme"
    assert (mapping.delimiter, mapping.encoding, mapping.amount_unit, mapping.sign_rule) == (
        ",", "utf-8", "major", "signed")
    assert mapping.ledger.reference == "gateway_reference"
    assert mapping.ledger.sign == "debit_positive"


def test_a_missing_mapping_file_is_an_invalid_mapping(tmp_path):
    with pytest.raises(InvalidMapping, match="cannot read mapping"):
        StatementMapping.load(tmp_path / "absent.toml")


@pytest.mark.parametrize(("text", "message"), [
    ("columns = [", "not valid TOML"),
    ("name = 'x'", r"\[columns\] table"),
    (MINIMAL.replace('amount = "amt"\n', ""), "columns.amount"),
    (MINIMAL.replace('reference = "ref"', "reference = 3"), "columns.reference must be a string"),
    (MINIMAL.replace('currency = "cur"\n', ""), "exactly one of columns.currency"),
    (MINIMAL + '[amount]\ncurrency = "USD"\n', "exactly one of columns.currency"),
    (MINIMAL + '[amount]\nunit = "cents"\n', "amount.unit is 'cents'"),
    (MINIMAL + '[amount]\nsign = "indicator"\n', "needs amount.indicator_column"),
    (MINIMAL + '[amount]\nsign = "indicator"\nindicator_column = "dc"\ncredit_values = ["C"]\n'
     'debit_values = ["C"]\n', "overlap"),
    (MINIMAL + '[amount]\nindicator_column = "dc"\n', "only used with"),
    (MINIMAL + '[amount]\ndecimal_separator = ","\nthousands_separator = ","\n', "are equal"),
    (MINIMAL + '[amount]\nnegate = "yes"\n', "amount.negate must be true or false"),
    (MINIMAL + '[file]\nencoding = "utf-16"\n', "not ASCII-compatible"),
    (MINIMAL + '[file]\nencoding = "klingon"\n', "not a known encoding"),
    (MINIMAL + '[file]\ndelimiter = ";;"\n', "file.delimiter must be one character"),
    (MINIMAL + '[date]\nformat = "YYYY-MM-DD"\n', "not a strptime format"),
    (MINIMAL + '[ledger]\nsign = "up"\n', "ledger.sign is 'up'"),
])
def test_a_bad_mapping_is_refused_naming_the_problem(text, message):
    with pytest.raises(InvalidMapping, match=message) as caught:
        StatementMapping.parse(text)
    assert caught.value.code == "invalid_mapping"


def test_a_utf8_with_bom_encoding_reads_as_utf8():
    mapping = StatementMapping.parse(MINIMAL + '[file]\nencoding = "utf-8-sig"\n')
    assert mapping.encoding == "utf-8"


def test_an_indicator_mapping_requires_its_column():
    mapping = StatementMapping.parse(
        MINIMAL + '[amount]\nsign = "indicator"\nindicator_column = "dc"\n'
        'credit_values = ["CR"]\ndebit_values = ["DR"]\n')
    assert mapping.required_columns[-1] == "dc"
    assert mapping.credit_values == frozenset({"CR"})


def test_the_ledger_table_keeps_keys_only_the_entry_loader_knows():
    mapping = StatementMapping.parse(
        MINIMAL + '[ledger]\naccount_id = "acc_1"\nreference = "metadata:ref"\nflows = ["topup"]\n')
    assert mapping.ledger.account_id == "acc_1"
    assert mapping.ledger.reference == "metadata:ref"
    assert mapping.ledger.options["flows"] == ["topup"]
