"""The write path's column encoders: what PostgreSQL reads back is exactly what was sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pacioli.ledger.storage import arrays

NUMERIC_MAX = 10**39 - 1


@pytest.fixture(scope="module")
def cursor(engine):
    connection = engine.raw_connection()
    try:
        with connection.driver_connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


def read_back(cursor, encoded: arrays.EncodedArray, sql_type: str) -> list:
    # WITH ORDINALITY: unnest keeps the order, and the test should not rely on it silently.
    rows = cursor.execute(
        f"SELECT value FROM unnest(%b::{sql_type}[]) WITH ORDINALITY AS t(value, n) ORDER BY n",
        [encoded],
    ).fetchall()
    return [row[0] for row in rows]


def with_nulls(values):
    return st.lists(st.one_of(st.none(), values), max_size=40)


SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(with_nulls(st.uuids()))
def test_uuids(cursor, values):
    assert read_back(cursor, arrays.uuids(values), "uuid") == values


@SETTINGS
@given(with_nulls(st.text(st.characters(blacklist_characters="\x00",
                                        blacklist_categories=("Cs",)))))
def test_texts_any_characters(cursor, values):
    assert read_back(cursor, arrays.texts(values), "text") == values


@SETTINGS
@given(with_nulls(st.binary(max_size=40)))
def test_byteas(cursor, values):
    assert read_back(cursor, arrays.byteas(values), "bytea") == values


@SETTINGS
@given(with_nulls(st.booleans()))
def test_bools(cursor, values):
    assert read_back(cursor, arrays.bools(values), "bool") == values


@SETTINGS
@given(with_nulls(st.integers(-(2**15), 2**15 - 1)))
def test_int2s(cursor, values):
    assert read_back(cursor, arrays.int2s(values), "int2") == values


@SETTINGS
@given(with_nulls(st.integers(-(2**63), 2**63 - 1)))
def test_int8s(cursor, values):
    assert read_back(cursor, arrays.int8s(values), "int8") == values


@SETTINGS
@given(with_nulls(st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(-NUMERIC_MAX, NUMERIC_MAX),
    st.sampled_from([0, 10**4, 10**8, 2**63, -(2**63) - 1, 2**128 - 1, NUMERIC_MAX]),
)))
def test_numerics_exact_at_any_size(cursor, values):
    # Sent as int8[] when everything fits, as numeric[] otherwise; the cast is exact.
    expected = [None if v is None else Decimal(v) for v in values]
    assert read_back(cursor, arrays.numerics(values), "numeric") == expected


@SETTINGS
@given(with_nulls(st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)))
def test_instants(cursor, values):
    assert read_back(cursor, arrays.instants(values), "timestamptz") == values


def test_instants_in_other_zones_are_the_same_instant(cursor):
    instant = datetime(2026, 11, 24, 23, 0, 0, 123456, tzinfo=UTC)
    shifted = instant.astimezone(timezone(timedelta(hours=5, minutes=30)))  # India
    [read] = read_back(cursor, arrays.instants([shifted]), "timestamptz")
    assert read == instant


def test_an_instant_without_a_zone_is_refused():
    with pytest.raises(ValueError, match="no time zone"):
        arrays.instants([datetime(2026, 1, 1)])


def test_empty_columns(cursor):
    for encode, sql_type in [
        (arrays.uuids, "uuid"), (arrays.texts, "text"), (arrays.numerics, "numeric"),
        (arrays.instants, "timestamptz"), (arrays.int8s, "int8"),
    ]:
        assert read_back(cursor, encode([]), sql_type) == []


def test_a_column_goes_into_a_table_through_unnest(cursor):
    # The shape the write path uses: several encoded columns expanded together.
    ids = [UUID(int=1), UUID(int=2)]
    at = datetime(2026, 1, 1, tzinfo=UTC)
    rows = cursor.execute(
        "SELECT * FROM unnest(%b::uuid[], %b::numeric[], %b::text[], %b::timestamptz[])",
        [arrays.uuids(ids), arrays.numerics([5, 2**100]), arrays.texts(["a", None]),
         arrays.instants([at, at + timedelta(seconds=1)])],
    ).fetchall()
    assert rows == [
        (ids[0], Decimal(5), "a", at), (ids[1], Decimal(2**100), None, at + timedelta(seconds=1))
    ]
