"""Reading statement CSVs: what each mapping option does, and errors that name the line."""

from __future__ import annotations

from datetime import date
from importlib import resources

import pytest

from pacioli.ledger.domain.errors import UnknownAsset
from pacioli.reconciliation.statement import (
    MalformedStatement,
    StatementLine,
    StatementMapping,
    read_statement,
)

SCALES = {"USD": 2, "EUR": 2, "JPY": 0, "BHD": 3}
SANDBOX = StatementMapping.builtin("sandbox_gateway")
BANK = StatementMapping.builtin("generic_bank")
SANDBOX_TOML = (resources.files("pacioli.reconciliation") / "mappings" / "sandbox_gateway.toml"
                ).read_text(encoding="utf-8")
SANDBOX_HEADER = "reference,type,amount,currency,settled_on\n"
BANK_HEADER = "Date,Description,Reference,Amount,Currency\n"


def scale_of(code: str) -> int:
    if code not in SCALES:
        raise UnknownAsset(f"no asset has the code {code!r}")
    return SCALES[code]


def read(tmp_path, content: str | bytes, mapping: StatementMapping = SANDBOX):
    path = tmp_path / "statement.csv"
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return list(read_statement(path, mapping, scale_of=scale_of))


def malformed(tmp_path, content, mapping: StatementMapping = SANDBOX) -> MalformedStatement:
    with pytest.raises(MalformedStatement) as caught:
        read(tmp_path, content, mapping)
    assert caught.value.code == "malformed_statement"
    assert str(caught.value).startswith(f"line {caught.value.line_number}: ")
    return caught.value


def mapping_with(extra: str, *, columns: str | None = None) -> StatementMapping:
    columns = columns or ('reference = "ref"\namount = "amount"\ncurrency = "cur"\n'
                          'booked_on = "day"\n')
    return StatementMapping.parse(f"[columns]\n{columns}{extra}")


def test_a_sandbox_settlement_report_reads_into_signed_minor_units(tmp_path):
    lines = read(tmp_path, SANDBOX_HEADER
                 + "op_1,capture,10.50,USD,2026-11-24\n"
                 + "op_2,refund,-2.5,USD,2026-11-24\n"
                 + "op_3,payout,-1250,JPY,2026-11-25\n"
                 + "op_4,capture,+0.125,BHD,2026-11-25\n")
    assert lines == [
        StatementLine(2, "op_1", 1050, "USD", date(2026, 11, 24)),
        StatementLine(3, "op_2", -250, "USD", date(2026, 11, 24)),
        StatementLine(4, "op_3", -1250, "JPY", date(2026, 11, 25)),
        StatementLine(5, "op_4", 125, "BHD", date(2026, 11, 25)),
    ]


def test_a_bank_statement_with_bom_crlf_quotes_and_blank_lines_keeps_file_line_numbers(
        tmp_path):
    content = ("\ufeff" + BANK_HEADER.replace("\n", "\r\n")
               + '2026-11-24,"ACME, INC",stl_1, 1250.00 ,USD\r\n'
               + "\r\n"
               + '2026-11-25,"two\r\nline memo",wd_2,-40.00,EUR\r\n'
               + "2026-11-26,FEE, fee_3 ,-0.01,USD\r\n")
    lines = read(tmp_path, content, BANK)
    assert [(line.line_number, line.reference, line.amount_minor, line.currency)
            for line in lines] == [(2, "stl_1", 125000, "USD"), (4, "wd_2", -4000, "EUR"),
                                   (6, "fee_3", -1, "USD")]


def test_amounts_in_minor_units(tmp_path):
    mapping = mapping_with('[amount]\nunit = "minor"\n')
    lines = read(tmp_path, "ref,amount,cur,day\nA,1050,USD,2026-11-24\nB,-7,JPY,2026-11-24\n",
                 mapping)
    assert [line.amount_minor for line in lines] == [1050, -7]


def test_minor_unit_amounts_refuse_a_decimal_point(tmp_path):
    mapping = mapping_with('[amount]\nunit = "minor"\n')
    error = malformed(tmp_path, "ref,amount,cur,day\nA,10.50,USD,2026-11-24\n", mapping)
    assert error.line_number == 2
    assert "whole number of minor units" in error.reason


def test_a_debit_credit_indicator_column_gives_the_sign(tmp_path):
    mapping = StatementMapping.parse(
        '[columns]\nreference = "ref"\namount = "amount"\ncurrency = "cur"\nbooked_on = "day"\n'
        '[amount]\nsign = "indicator"\nindicator_column = "dc"\n'
        'credit_values = ["C", "CR"]\ndebit_values = ["D", "DR"]\n')
    lines = read(tmp_path, "ref,dc,amount,cur,day\nA,cr,5.00,USD,2026-11-24\n"
                 "B, D ,5.00,USD,2026-11-24\n", mapping)
    assert [line.amount_minor for line in lines] == [500, -500]


def test_an_unknown_indicator_and_a_signed_amount_with_an_indicator_are_malformed(tmp_path):
    mapping = StatementMapping.parse(
        '[columns]\nreference = "ref"\namount = "amount"\ncurrency = "cur"\nbooked_on = "day"\n'
        '[amount]\nsign = "indicator"\nindicator_column = "dc"\n'
        'credit_values = ["C"]\ndebit_values = ["D"]\n')
    header = "ref,dc,amount,cur,day\nA,C,5.00,USD,2026-11-24\n"
    error = malformed(tmp_path, header + "B,X,5.00,USD,2026-11-24\n", mapping)
    assert (error.line_number, "indicator 'X'" in error.reason) == (3, True)
    error = malformed(tmp_path, header + "B,D,-5.00,USD,2026-11-24\n", mapping)
    assert (error.line_number, "unsigned" in error.reason) == (3, True)


def test_negate_flips_every_amount(tmp_path):
    mapping = mapping_with("[amount]\nnegate = true\n")
    lines = read(tmp_path, "ref,amount,cur,day\nA,5.00,USD,2026-11-24\nB,-1,USD,2026-11-24\n",
                 mapping)
    assert [line.amount_minor for line in lines] == [-500, 100]


def test_european_separators_day_first_dates_semicolons_and_one_currency(tmp_path):
    mapping = StatementMapping.parse(
        '[file]\ndelimiter = ";"\nencoding = "cp1252"\n'
        '[columns]\nreference = "Referenz"\namount = "Betrag"\nbooked_on = "Buchungstag"\n'
        '[amount]\ncurrency = "EUR"\ndecimal_separator = ","\nthousands_separator = "."\n'
        '[date]\nformat = "%d.%m.%Y"\n')
    content = ("Buchungstag;Verwendungszweck;Referenz;Betrag\n"
               "24.11.2026;Gebühr;R1;-1.234,56\n"
               "25.11.2026;Überweisung;R2;7,5\n").encode("cp1252")
    lines = read(tmp_path, content, mapping)
    assert lines == [StatementLine(2, "R1", -123456, "EUR", date(2026, 11, 24)),
                     StatementLine(3, "R2", 750, "EUR", date(2026, 11, 25))]


def test_misplaced_thousands_separators_are_malformed(tmp_path):
    mapping = mapping_with('[amount]\nthousands_separator = ","\n')
    error = malformed(tmp_path, 'ref,amount,cur,day\nA,"12,34.00",USD,2026-11-24\n', mapping)
    assert error.line_number == 2


def test_lines_are_yielded_before_a_later_bad_line_is_read(tmp_path):
    path = tmp_path / "statement.csv"
    path.write_text(SANDBOX_HEADER + "op_1,capture,1.00,USD,2026-11-24\n"
                    + "op_2,capture,one,USD,2026-11-24\n", encoding="utf-8")
    lines = read_statement(path, SANDBOX, scale_of=scale_of)
    assert next(lines).reference == "op_1"
    with pytest.raises(MalformedStatement, match="line 3"):
        next(lines)


def test_bad_encoding_names_the_line(tmp_path):
    content = (SANDBOX_HEADER + "op_1,capture,1.00,USD,2026-11-24\n").encode() \
        + b"op_\xff2,capture,1.00,USD,2026-11-24\n" + b"op_3,capture,1.00,USD,2026-11-24\n"
    error = malformed(tmp_path, content)
    assert error.line_number == 3
    assert "not valid utf-8" in error.reason


def test_bad_encoding_deep_in_a_large_file_names_its_line(tmp_path):
    good = b"op_1,capture,1.00,USD,2026-11-24\n"
    content = SANDBOX_HEADER.encode() + good * 4_319 + b"op_\xe9,capture,1.00,USD,2026-11-24\n" \
        + good * 2_000
    error = malformed(tmp_path, content)
    assert error.line_number == 4_321


def test_a_latin1_mapping_reads_what_utf8_refuses(tmp_path):
    mapping = StatementMapping.parse(SANDBOX_TOML.replace('encoding = "utf-8"',
                                                          'encoding = "latin-1"'))
    lines = read(tmp_path, SANDBOX_HEADER.encode() + b"op_\xe9,capture,1.00,USD,2026-11-24\n",
                 mapping)
    assert lines[0].reference == "op_\u00e9"


def test_missing_columns_are_named_on_line_1(tmp_path):
    error = malformed(tmp_path, "reference,type,amount,date\nop_1,capture,1.00,2026-11-24\n")
    assert error.line_number == 1
    assert "'settled_on', 'currency'" in error.reason
    assert "sandbox_gateway" in error.reason


def test_a_required_column_named_twice_is_malformed(tmp_path):
    error = malformed(tmp_path, "reference,amount,amount,currency,settled_on\n")
    assert (error.line_number, "'amount'" in error.reason) == (1, True)


def test_an_empty_file_is_malformed(tmp_path):
    error = malformed(tmp_path, "")
    assert error.line_number == 1
    assert "empty" in error.reason


def test_a_row_with_a_field_missing_is_malformed(tmp_path):
    error = malformed(tmp_path, SANDBOX_HEADER + "op_1,capture,1.00,USD,2026-11-24\n"
                      + "op_2,capture,1.00,USD\n")
    assert error.line_number == 3
    assert "has 4 fields; the header has 5" in error.reason


@pytest.mark.parametrize(("amount", "currency", "reason"), [
    ("10.505", "USD", "has 3 decimal places; USD has 2"),
    ("100.5", "JPY", "has 1 decimal places; JPY has 0"),
    ("0.30000000000000004", "USD", "has 17 decimal places"),
    ("1e3", "USD", "is not a signed decimal amount"),
    ("1.0E3", "USD", "is not a signed decimal amount"),
    ("NaN", "USD", "is not a signed decimal amount"),
    ("$10.00", "USD", "is not a signed decimal amount"),
    ("10.00 USD", "USD", "is not a signed decimal amount"),
    ("--1", "USD", "is not a signed decimal amount"),
    (".50", "USD", "is not a signed decimal amount"),
    ("", "USD", "is not a signed decimal amount"),
    ("9" * 40, "USD", "too large"),
])
def test_unparseable_amounts_are_malformed(tmp_path, amount, currency, reason):
    error = malformed(tmp_path, SANDBOX_HEADER + "op_1,capture,1.00,USD,2026-11-24\n"
                      + f"op_2,capture,{amount},{currency},2026-11-24\n")
    assert error.line_number == 3
    assert reason in error.reason


@pytest.mark.parametrize("text", ["2026-13-01", "2026-02-30", "24/11/2026", "", "2026-11",
                                  "2026-11-24T10:00:00", "tomorrow"])
def test_unparseable_dates_are_malformed(tmp_path, text):
    error = malformed(tmp_path, SANDBOX_HEADER + f"op_1,capture,1.00,USD,{text}\n")
    assert error.line_number == 2
    assert "not a date in the format '%Y-%m-%d'" in error.reason


def test_an_unknown_currency_is_malformed(tmp_path):
    error = malformed(tmp_path, SANDBOX_HEADER + "op_1,capture,1.00,XTS,2026-11-24\n")
    assert (error.line_number, error.reason) == (2, "unknown currency 'XTS'")


def test_an_empty_currency_is_malformed(tmp_path):
    error = malformed(tmp_path, SANDBOX_HEADER + "op_1,capture,1.00,,2026-11-24\n")
    assert (error.line_number, error.reason) == (2, "the currency is empty")


def test_a_scale_lookup_raising_key_error_is_an_unknown_currency(tmp_path):
    path = tmp_path / "statement.csv"
    path.write_text(SANDBOX_HEADER + "op_1,capture,1.00,GBP,2026-11-24\n", encoding="utf-8")
    with pytest.raises(MalformedStatement, match="line 2: unknown currency 'GBP'"):
        list(read_statement(path, SANDBOX, scale_of={"USD": 2}.__getitem__))


def test_an_unterminated_quote_is_malformed_at_the_line_it_opens(tmp_path):
    error = malformed(tmp_path, SANDBOX_HEADER + "op_1,capture,1.00,USD,2026-11-24\n"
                      + 'op_2,"capture,1.00,USD,2026-11-24\n')
    assert error.line_number == 3
    assert "not valid CSV" in error.reason


def test_a_datetime_format_keeps_the_date_as_written(tmp_path):
    mapping = mapping_with('[date]\nformat = "%Y-%m-%dT%H:%M:%S%z"\n')
    lines = read(tmp_path, "ref,amount,cur,day\nA,1,USD,2026-11-24T23:30:00-05:00\n", mapping)
    assert lines[0].booked_on == date(2026, 11, 24)
