"""Money on the wire: decimal strings in major units, converted here and nowhere else.

Requests carry `{"amount": "10.50", "currency": "USD"}`; the ledger speaks ints of minor
units. The conversion needs the asset's scale, which `AssetScales` keeps in memory.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from pacioli.ledger.domain.errors import UnknownAsset
from pacioli.ledger.domain.money import Asset, format_minor, parse_major

# 39 integer digits, a point and 18 decimals fit in 58 characters; anything longer is not
# an amount, and refusing it early keeps int() away from megabyte-long digit strings.
AMOUNT_LENGTH_MAX = 64
# ASCII digits only: Python's \d and int() would also accept other scripts' digits.
_AMOUNT_SHAPE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")


def _require_decimal_string(value: Any) -> Any:
    if not isinstance(value, str):
        kind = "number" if isinstance(value, int | float) else type(value).__name__
        raise PydanticCustomError(
            "invalid_amount",
            "amount must be a decimal string such as \"10.50\", not a JSON {kind}",
            {"kind": kind},
        )
    if len(value) > AMOUNT_LENGTH_MAX or not _AMOUNT_SHAPE.fullmatch(value):
        raise PydanticCustomError(
            "invalid_amount", "amount must be a decimal string such as \"10.50\""
        )
    return value


AmountStr = Annotated[
    str,
    BeforeValidator(_require_decimal_string),
    WithJsonSchema(
        {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?$", "examples": ["10.50"],
         "description": "A decimal string in major units, at most the asset's scale in decimals."}
    ),
]
"""A decimal string as sent by a client; its sign, scale and size are checked on conversion."""


class AssetScales:
    """The scale of every asset, loaded from the ledger and reloaded when a code is missing.

    An asset's scale never changes once it exists, so a cached entry is never stale; an
    asset created since the last load (perhaps by another process) is a miss, and a miss
    reloads the whole (small) list.
    """

    def __init__(self, load: Callable[[], Iterable[Asset]]) -> None:
        self._load = load
        self._scales: dict[str, int] = {}
        self._lock = threading.Lock()

    def knows(self, code: str) -> bool:
        """Whether `code`'s scale is loaded (then no call below reads the database)."""
        return code in self._scales

    def scale_of(self, code: str) -> int:
        """Raises: UnknownAsset."""
        scale = self._scales.get(code)
        if scale is None:
            with self._lock:
                self._scales = {asset.code: asset.scale for asset in self._load()}
            scale = self._scales.get(code)
        if scale is None:
            raise UnknownAsset(f"no asset has the code {code!r}")
        return scale

    def to_minor(self, amount: str, code: str, *, allow_zero: bool = False) -> int:
        """Raises: UnknownAsset, InvalidAmount."""
        return parse_major(amount, self.scale_of(code), allow_zero=allow_zero)

    def to_major(self, amount_minor: int, code: str) -> str:
        return format_minor(amount_minor, self.scale_of(code))
