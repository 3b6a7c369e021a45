"""`pacioli qr …`: decode a QR payment payload, or make one (with its PNG or SVG image)."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import typer

from pacioli.cli.common import fail
from pacioli.gateways.qr import (
    QrError,
    crc_hex,
    decode_any,
    encode_emvco,
    merchant_qr,
    render_png,
    render_svg,
)

app = typer.Typer(no_args_is_help=True,
                  help="QR payment payloads: EMVCo merchant-presented codes and UPI links.")

EXIT_UNTRUSTED = 1  # `decode`: the payload is malformed, tampered with or not supported.


@app.command("decode")
def decode(
    payload: str = typer.Argument(..., help="An EMVCo payload (000201…) or a upi://pay? link."),
) -> None:
    """Print the payload's fields as JSON with `crc_valid`; exit 1 if it cannot be trusted.

    A payload whose CRC does not match is still shown (crc_valid: false) and exits 1; one
    that cannot be parsed prints {"crc_valid": …, "error": {"code", "message"}} and exits 1.
    A UPI link has no CRC: crc_valid is null.
    """
    try:
        decoded = decode_any(payload, verify_crc=False)
    except QrError as error:
        typer.echo(json.dumps({"crc_valid": _crc_valid(payload),
                               "error": {"code": error.code, "message": str(error)}}))
        raise typer.Exit(EXIT_UNTRUSTED) from None
    fields = decoded.to_dict()
    typer.echo(json.dumps(fields, ensure_ascii=False))
    if fields["crc_valid"] is False:
        raise typer.Exit(EXIT_UNTRUSTED)


def _crc_valid(payload: str) -> bool | None:
    """Whether an unparseable payload's CRC matches: None for a UPI link, False if absent."""
    text = payload.strip()
    if text[:4].lower() == "upi:":
        return None
    return text[-8:-4] == "6304" and crc_hex(text[:-4]) == text[-4:].upper()


@app.command("encode")
def encode(
    merchant_name: str = typer.Option(..., help="Field 59, up to 25 characters."),
    city: str = typer.Option(..., help="Field 60, up to 15 characters."),
    country: str = typer.Option(..., help="Field 58, ISO 3166 two letters (BR, IN …)."),
    mcc: str = typer.Option(..., help="Merchant category code, 4 digits (0000: not given)."),
    currency: str = typer.Option(..., help="ISO 4217 alpha (BRL) or numeric (986) code."),
    gui: str = typer.Option(..., help="Template 26, subfield 00: the payment system's id."),
    merchant_account_id: str | None = typer.Option(
        None, help="Template 26, subfield 01: the merchant's id there (a Pix key …)."),
    amount: str | None = typer.Option(
        None, help="Fixed amount (\"10.50\"): makes a dynamic QR. Without it, static."),
    reference: str | None = typer.Option(None, help="Reference label (62, subfield 05)."),
    expires_at: datetime | None = typer.Option(
        None, formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z"],
        help="Expiry of a dynamic QR, with its zone: 2026-11-24T19:00:00+00:00."),
    postal_code: str | None = typer.Option(None, help="Field 61."),
    png: Path | None = typer.Option(None, help="Also write the QR image as PNG to this file."),
    svg: Path | None = typer.Option(None, help="Also write the QR image as SVG to this file."),
) -> None:
    """Make an EMVCo merchant-presented payload and print it (static without --amount)."""
    try:
        payload = encode_emvco(merchant_qr(
            merchant_name=merchant_name, merchant_city=city, country_code=country,
            merchant_category_code=mcc, currency=currency, gui=gui,
            merchant_account_id=merchant_account_id, amount=amount, reference=reference,
            expires_at=expires_at, postal_code=postal_code,
        ))
        images = [(png, render_png(payload)) if png else None,
                  (svg, render_svg(payload).encode("utf-8")) if svg else None]
    except QrError as error:
        fail(f"{error.code}: {error}")
    for path, content in filter(None, images):
        try:
            path.write_bytes(content)
        except OSError as error:
            fail(f"cannot write {path}: {error.strerror}")
    typer.echo(payload)
