"""Whole columns encoded in PostgreSQL's binary array format, for the write path's `unnest`.

The write path sends each table's rows as one array per column. psycopg dumps a Python
list by calling an element dumper for every value, in Python (its array dumper has no C
version): for a batch of 16 transfers that was about a thousand calls, a third of the
writer thread's CPU. Here a column is encoded in one pass, mostly inside `struct` and
`bytes.join`, and psycopg passes the bytes through as they are.

The format (PostgreSQL's `array_send`): dimensions, a has-nulls flag, the element type,
then each element as a 4-byte length (-1 for NULL) and its binary value.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain, repeat
from uuid import UUID

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format

# Element and array type oids (pg_type).
_BOOL, _BOOL_ARRAY = 16, 1000
_BYTEA, _BYTEA_ARRAY = 17, 1001
_INT8, _INT8_ARRAY = 20, 1016
_INT2, _INT2_ARRAY = 21, 1005
_TEXT, _TEXT_ARRAY = 25, 1009
_TIMESTAMPTZ, _TIMESTAMPTZ_ARRAY = 1184, 1185
_NUMERIC, _NUMERIC_ARRAY = 1700, 1231
_UUID, _UUID_ARRAY = 2950, 2951

_ONE_DIMENSION = struct.Struct(">iiIii")  # ndim, has nulls, element oid, length, lower bound
_EMPTY = struct.Struct(">iiI")  # ndim 0: no dimension fields follow
_LENGTH = struct.Struct(">i")
_INT64 = struct.Struct(">q")
_LENGTH_16 = _LENGTH.pack(16)
_NULL = _LENGTH.pack(-1)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_POSTGRES_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class EncodedArray:
    """A column already in PostgreSQL's binary array format; psycopg sends `data` unchanged."""

    __slots__ = ("data", "oid")

    def __init__(self, data: bytes, oid: int) -> None:
        self.data = data
        self.oid = oid

    def __repr__(self) -> str:
        return f"EncodedArray(oid={self.oid}, {len(self.data)} bytes)"


class _EncodedArrayDumper(Dumper):
    """Passes an `EncodedArray` through, declaring its array type to the server."""

    format = Format.BINARY

    def __init__(self, cls: type, context=None) -> None:
        super().__init__(cls, context)
        self._context = context

    def get_key(self, obj: EncodedArray, format) -> tuple[type, int]:
        return (EncodedArray, obj.oid)

    def upgrade(self, obj: EncodedArray, format) -> Dumper:
        dumper = type(self)(EncodedArray, self._context)
        dumper.oid = obj.oid
        return dumper

    def dump(self, obj: EncodedArray) -> bytes:
        return obj.data


# On the global adapters map, which every connection made afterwards copies.
psycopg.adapters.register_dumper(EncodedArray, _EncodedArrayDumper)


def uuids(values: Iterable[UUID | None]) -> EncodedArray:
    values = values if isinstance(values, Sequence) else list(values)
    if None in values:
        return _encode(values, _UUID, _UUID_ARRAY, lambda v: v.int.to_bytes(16, "big"))
    # Every element is 16 bytes, so the length prefix can join them (the common case,
    # spelled out: it runs for several columns of every batch).
    body = _LENGTH_16 + _LENGTH_16.join([v.int.to_bytes(16, "big") for v in values])
    return EncodedArray(
        _header(_UUID, _UUID_ARRAY, len(values), False) + (body if values else b""), _UUID_ARRAY
    )


def texts(values: Iterable[str | None]) -> EncodedArray:
    values = values if isinstance(values, Sequence) else list(values)
    if None in values:
        return _encode(values, _TEXT, _TEXT_ARRAY, str.encode)
    pack_length = _LENGTH.pack
    body = b"".join([pack_length(len(b)) + b for b in [v.encode() for v in values]])
    return EncodedArray(_header(_TEXT, _TEXT_ARRAY, len(values), False) + body, _TEXT_ARRAY)


def byteas(values: Iterable[bytes | None]) -> EncodedArray:
    return _encode(values, _BYTEA, _BYTEA_ARRAY, bytes)


def bools(values: Iterable[bool | None]) -> EncodedArray:
    return _encode(values, _BOOL, _BOOL_ARRAY, lambda v: b"\x01" if v else b"\x00", width=1)


def int2s(values: Iterable[int | None]) -> EncodedArray:
    return _encode(values, _INT2, _INT2_ARRAY, struct.Struct(">h").pack, width=2)


def int8s(values: Iterable[int | None]) -> EncodedArray:
    values = list(values)
    if None in values:
        return _encode(values, _INT8, _INT8_ARRAY, _INT64.pack, width=8)
    # Each element is (length 8, value): one pack call for the whole column.
    body = struct.pack(">" + "iq" * len(values), *chain.from_iterable(zip(repeat(8), values)))
    return EncodedArray(_header(_INT8, _INT8_ARRAY, len(values), False) + body, _INT8_ARRAY)


def numerics(values: Iterable[int | None]) -> EncodedArray:
    """Ints for NUMERIC columns: sent as int8[] when every value fits (the statement's
    `::numeric[]` casts it on the server, exactly), else as numeric[]."""
    values = list(values)
    present = values if None not in values else [v for v in values if v is not None]
    if not present or (min(present) >= _INT64_MIN and max(present) <= _INT64_MAX):
        return int8s(values)
    return _encode(values, _NUMERIC, _NUMERIC_ARRAY, _numeric)


def instants(values: Iterable[datetime | None]) -> EncodedArray:
    """Time-zone-aware datetimes for TIMESTAMPTZ columns (microseconds since 2000-01-01 UTC)."""
    micros: dict[datetime, bytes] = {}  # a batch's rows mostly share one instant

    def encode(value: datetime) -> bytes:
        encoded = micros.get(value)
        if encoded is None:
            if value.tzinfo is None:
                raise ValueError(f"{value!r} has no time zone")
            encoded = micros[value] = _INT64.pack((value - _POSTGRES_EPOCH) // _MICROSECOND)
        return encoded

    return _encode(values, _TIMESTAMPTZ, _TIMESTAMPTZ_ARRAY, encode, width=8)


def _encode(
    values: Iterable, element_oid: int, array_oid: int, encode, *, width: int | None = None
) -> EncodedArray:
    """Encode each value with `encode`; `width` is the byte length when every value has one."""
    values = values if isinstance(values, Sequence) else list(values)
    has_nulls = None in values
    if width is not None and not has_nulls:
        # Fixed width: the length prefix is the same for all, so it can join the values.
        prefix = _LENGTH.pack(width)
        body = prefix + prefix.join([encode(v) for v in values]) if values else b""
    else:
        pack_length = _LENGTH.pack
        parts = []
        for value in values:
            if value is None:
                parts.append(_NULL)
            else:
                encoded = encode(value)
                parts.append(pack_length(len(encoded)))
                parts.append(encoded)
        body = b"".join(parts)
    return EncodedArray(_header(element_oid, array_oid, len(values), has_nulls) + body, array_oid)


def _header(element_oid: int, array_oid: int, length: int, has_nulls: bool) -> bytes:
    if not length:
        return _EMPTY.pack(0, 0, element_oid)
    return _ONE_DIMENSION.pack(1, int(has_nulls), element_oid, length, 1)


def _numeric(value: int) -> bytes:
    """An int in NUMERIC's binary form: base-10000 digits, most significant first."""
    sign = 0x4000 if value < 0 else 0
    value = abs(value)
    digits = []
    while value:
        value, digit = divmod(value, 10_000)
        digits.append(digit)
    digits.reverse()
    weight = len(digits) - 1 if digits else 0
    while digits and digits[-1] == 0:
        digits.pop()  # trailing zero digits are implied by the weight
    return struct.pack(f">hhHH{len(digits)}h", len(digits), weight, sign, 0, *digits)
