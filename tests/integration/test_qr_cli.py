"""`pacioli qr decode` and `pacioli qr encode`, run through typer's CliRunner."""

from __future__ import annotations

import json
import logging
import struct
import xml.etree.ElementTree as ElementTree
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import segno
from typer.testing import CliRunner

from pacioli.cli.main import app
from pacioli.config import get_settings
from pacioli.gateways.qr import decode_emvco
from pacioli.gateways.qr.render import BORDER_DEFAULT, ERROR_CORRECTION, SCALE_DEFAULT

runner = CliRunner()

# Banco Central do Brasil's Pix manual example (see tests/unit/test_qr_emvco.py).
PIX_MANUAL_EXAMPLE = (
    "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-426655440000"
    "5204000053039865802BR5913Fulano de Tal6008BRASILIA62070503***63041D3D"
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
ENCODE_ARGS = ["qr", "encode", "--merchant-name", "Cafe Lisboa", "--city", "Lisbon",
               "--country", "PT", "--mcc", "5814", "--currency", "EUR",
               "--gui", "io.pacioli", "--merchant-account-id", "mer_123"]


@pytest.fixture(autouse=True)
def restore_logging_and_settings() -> Iterator[None]:
    """The CLI configures the root logger onto the runner's stderr; undo that afterwards."""
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    get_settings.cache_clear()


def test_decoding_a_valid_payload_prints_its_fields_as_json_and_exits_0():
    result = runner.invoke(app, ["qr", "decode", PIX_MANUAL_EXAMPLE])

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["crc_valid"] is True
    assert shown["merchant_name"] == "Fulano de Tal"
    assert shown["currency"] == "BRL"
    assert shown["merchant_accounts"][0]["gui"] == "br.gov.bcb.pix"


def test_decoding_a_tampered_payload_shows_crc_valid_false_and_exits_1():
    tampered = PIX_MANUAL_EXAMPLE.replace("BRASILIA", "BRASILIO")

    result = runner.invoke(app, ["qr", "decode", tampered])

    assert result.exit_code == 1
    shown = json.loads(result.stdout)
    assert shown["crc_valid"] is False
    assert shown["merchant_city"] == "BRASILIO"


def test_decoding_a_malformed_payload_prints_the_error_code_and_exits_1():
    result = runner.invoke(app, ["qr", "decode", PIX_MANUAL_EXAMPLE[:-8]])

    assert result.exit_code == 1
    shown = json.loads(result.stdout)
    assert shown["crc_valid"] is False
    assert shown["error"]["code"] == "qr_malformed"


def test_decoding_text_that_is_no_qr_payload_exits_1_as_unsupported():
    result = runner.invoke(app, ["qr", "decode", "hello"])

    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "qr_unsupported"


def test_decoding_a_upi_link_exits_0_with_crc_valid_null():
    result = runner.invoke(app, ["qr", "decode", "upi://pay?pa=shop@okaxis&am=10.50"])

    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert (shown["format"], shown["crc_valid"], shown["amount"]) == ("upi", None, "10.50")


def test_decoding_a_upi_link_with_a_bad_vpa_exits_1():
    result = runner.invoke(app, ["qr", "decode", "upi://pay?pa=not-a-vpa"])

    assert result.exit_code == 1
    shown = json.loads(result.stdout)
    assert shown["crc_valid"] is None
    assert shown["error"]["code"] == "qr_invalid_field"


def test_encoding_without_amount_prints_a_static_payload_that_decodes_back():
    result = runner.invoke(app, ENCODE_ARGS)

    assert result.exit_code == 0, result.output
    decoded = decode_emvco(result.stdout.strip())
    assert decoded.is_dynamic is False
    assert decoded.amount is None
    assert decoded.merchant_accounts[0].fields == {"00": "io.pacioli", "01": "mer_123"}


def test_encoding_with_amount_reference_and_expiry_makes_a_dynamic_payload():
    result = runner.invoke(app, [*ENCODE_ARGS, "--amount", "10.50", "--reference", "qr_42",
                                 "--expires-at", "2026-11-24T20:00:00+01:00"])

    assert result.exit_code == 0, result.output
    payload = result.stdout.strip()
    decoded = decode_emvco(payload)
    assert decoded.is_dynamic is True
    assert decoded.amount_minor(2) == 1050
    assert decoded.reference == "qr_42"
    assert decoded.expires_at.isoformat() == "2026-11-24T19:00:00+00:00"

    shown = json.loads(runner.invoke(app, ["qr", "decode", payload]).stdout)
    assert (shown["crc_valid"], shown["amount"], shown["point_of_initiation"]) == (
        True, "10.50", "dynamic")


def png_size(content: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk, which must follow the signature."""
    assert content[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", content[8:16])
    assert (length, kind) == (13, b"IHDR")
    return struct.unpack(">II", content[16:24])


def png_pixels(content: bytes) -> list[list[int]]:
    """The rows of a 1-bit greyscale PNG (0 black, 1 white), undoing each row's filter."""
    width, height = png_size(content)
    assert content[24:29] == bytes([1, 0, 0, 0, 0])  # 1 bit, greyscale, no interlace.
    compressed, position = b"", 8
    while position < len(content):
        length, kind = struct.unpack(">I4s", content[position:position + 8])
        if kind == b"IDAT":
            compressed += content[position + 8:position + 8 + length]
        position += 12 + length
    raw, stride = zlib.decompress(compressed), (width + 7) // 8
    rows, previous = [], bytes(stride)
    for row in range(height):
        start = row * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        for index in range(stride):
            left = line[index - 1] if index else 0
            up, up_left = previous[index], previous[index - 1] if index else 0
            line[index] = (line[index] + _predict(kind, left, up, up_left)) & 0xFF
        previous = bytes(line)
        rows.append([(line[x // 8] >> (7 - x % 8)) & 1 for x in range(width)])
    return rows


def _predict(kind: int, left: int, up: int, up_left: int) -> int:
    """PNG's row filters (none, sub, up, average, Paeth) for one byte per pixel group."""
    if kind == 4:
        estimate = left + up - up_left
        distances = [abs(estimate - left), abs(estimate - up), abs(estimate - up_left)]
        return (left, up, up_left)[distances.index(min(distances))]
    return [0, left, up, (left + up) // 2][kind]


def test_encoding_with_png_writes_a_png_of_the_printed_payloads_qr_code(tmp_path: Path):
    image = tmp_path / "qr.png"

    result = runner.invoke(app, [*ENCODE_ARGS, "--amount", "3.20", "--png", str(image)])

    assert result.exit_code == 0, result.output
    content = image.read_bytes()
    assert content.startswith(PNG_SIGNATURE)
    assert content.endswith(b"IEND\xaeB`\x82")
    # Sample the centre of every module and compare with the symbol of the payload.
    symbol = segno.make_qr(result.stdout.strip(), error=ERROR_CORRECTION, encoding="utf-8")
    pixels, scale, border = png_pixels(content), SCALE_DEFAULT, BORDER_DEFAULT
    assert len(pixels) == (symbol.symbol_size(scale=1, border=border)[0]) * scale
    sampled = [[1 - pixels[(border + row) * scale + scale // 2][(border + column) * scale
                                                                 + scale // 2]
                for column in range(len(symbol.matrix))] for row in range(len(symbol.matrix))]
    assert sampled == [[int(bool(module)) for module in row] for row in symbol.matrix]


def test_encoding_with_svg_writes_an_svg_document(tmp_path: Path):
    image = tmp_path / "qr.svg"

    result = runner.invoke(app, [*ENCODE_ARGS, "--svg", str(image)])

    assert result.exit_code == 0, result.output
    root = ElementTree.fromstring(image.read_bytes())
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert int(root.get("width")) == int(root.get("height")) > 0
    assert root.find("{http://www.w3.org/2000/svg}path") is not None


def test_encoding_an_unknown_currency_fails_with_its_code_and_writes_nothing(tmp_path: Path):
    image = tmp_path / "qr.png"
    args = [*ENCODE_ARGS, "--png", str(image)]
    args[args.index("EUR")] = "XYZ"

    result = runner.invoke(app, args)

    assert result.exit_code == 2
    assert "qr_unsupported" in result.stderr
    assert not image.exists()


def test_encoding_an_expiry_without_an_amount_fails():
    result = runner.invoke(app, [*ENCODE_ARGS, "--expires-at", "2026-11-24T20:00:00+00:00"])

    assert result.exit_code == 2
    assert "qr_invalid_field" in result.stderr


def test_encoding_an_expiry_without_a_time_zone_is_a_usage_error():
    result = runner.invoke(app, [*ENCODE_ARGS, "--amount", "1.00",
                                 "--expires-at", "2026-11-24T20:00:00"])

    assert result.exit_code == 2
    assert result.stdout == ""
