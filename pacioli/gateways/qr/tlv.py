"""EMVCo ID-length-value (TLV) data objects: parse a string into pairs and build it back.

Each data object is a two-digit numeric id, a two-digit length, and a value of that many
characters (1..99). Lengths count characters, not bytes: the EMVCo specification's own
example carries Chinese text in the language template with lengths in characters.
Templates (26-51, 62, 64, 80-99) are data objects whose value is itself a TLV string.
"""

from __future__ import annotations

from collections.abc import Iterable

from pacioli.gateways.qr.errors import QrInvalidField, QrMalformed

VALUE_LENGTH_MAX = 99


def parse_tlv(text: str, *, where: str = "payload") -> list[tuple[str, str]]:
    """Split a TLV string into (id, value) pairs, in order, refusing duplicate ids.

    `where` names the level being parsed ("payload", "template 62" …) in error messages.
    Raises: QrMalformed.
    """
    pairs: list[tuple[str, str]] = []
    seen: set[str] = set()
    position = 0
    while position < len(text):
        header = text[position:position + 4]
        if len(header) < 4 or not header.isascii() or not header.isdigit():
            raise QrMalformed(f"{where}: expected a 2-digit id and 2-digit length at"
                              f" character {position}, found {header!r}")
        data_id, length = header[:2], int(header[2:])
        if length == 0:
            raise QrMalformed(f"{where}: field {data_id} has length 00")
        value = text[position + 4:position + 4 + length]
        if len(value) < length:
            raise QrMalformed(f"{where}: field {data_id} declares {length} characters,"
                              f" only {len(value)} remain")
        if data_id in seen:
            raise QrMalformed(f"{where}: field {data_id} appears twice")
        seen.add(data_id)
        pairs.append((data_id, value))
        position += 4 + length
    return pairs


def build_tlv(pairs: Iterable[tuple[str, str]], *, where: str = "payload") -> str:
    """Join (id, value) pairs into a TLV string, checking each id and value length.

    Raises: QrInvalidField (an id that is not two digits, an empty or too long value).
    """
    parts = []
    for data_id, value in pairs:
        if len(data_id) != 2 or not data_id.isascii() or not data_id.isdigit():
            raise QrInvalidField(f"{where}: id {data_id!r} is not two digits")
        if not 1 <= len(value) <= VALUE_LENGTH_MAX:
            raise QrInvalidField(f"{where}: field {data_id} must be 1..{VALUE_LENGTH_MAX}"
                                 f" characters long, not {len(value)}")
        parts.append(f"{data_id}{len(value):02d}{value}")
    return "".join(parts)
