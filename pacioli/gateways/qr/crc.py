"""CRC-16/CCITT-FALSE, the checksum of EMVCo merchant-presented QR payloads (field 63).

Polynomial 0x1021, initial value 0xFFFF, no reflection, no final XOR; the check value
of b"123456789" is 0x29B1. EMVCo computes it over the payload's bytes up to and
including the "6304" that opens field 63; Pacioli encodes text as UTF-8, as EMVCo
does for the characters beyond ASCII allowed in the language template (64).
"""

from __future__ import annotations

POLYNOMIAL = 0x1021
INITIAL = 0xFFFF


def _make_table() -> tuple[int, ...]:
    """The 256 CRCs of one byte each, so the main loop runs once per byte, not per bit."""
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ POLYNOMIAL) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
        table.append(crc)
    return tuple(table)


_TABLE = _make_table()


def crc16_ccitt_false(data: bytes) -> int:
    """The CRC-16/CCITT-FALSE of `data`, an int in 0..0xFFFF."""
    crc = INITIAL
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ _TABLE[(crc >> 8) ^ byte]
    return crc


def crc_hex(text: str) -> str:
    """The CRC of `text` (as UTF-8) in the form field 63 carries: four upper-case hex digits."""
    return f"{crc16_ccitt_false(text.encode('utf-8')):04X}"
