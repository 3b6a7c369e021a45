"""QR images of a payload: PNG bytes and SVG text, drawn by segno.

Error correction level M (15 % of the symbol can be lost) is the usual choice for
payment QRs shown on screens and printed at counters; segno raises it for free when
the payload leaves room. Text is encoded as UTF-8, as EMVCo payloads are.
"""

from __future__ import annotations

import io

import segno

from pacioli.gateways.qr.errors import QrInvalidField

SCALE_DEFAULT = 8  # Pixels (PNG) or user units (SVG) per module.
BORDER_DEFAULT = 4  # The quiet zone, in modules, that ISO/IEC 18004 asks for.
ERROR_CORRECTION = "m"


def _make(text: str) -> segno.QRCode:
    """The QR symbol of `text`. Raises: QrInvalidField (empty, or too long for any QR)."""
    if not text:
        raise QrInvalidField("there is nothing to draw: the payload is empty")
    try:
        return segno.make_qr(text, error=ERROR_CORRECTION, encoding="utf-8")
    except segno.DataOverflowError as error:
        raise QrInvalidField(f"the payload does not fit in a QR code: {error}") from None


def render_png(text: str, *, scale: int = SCALE_DEFAULT, border: int = BORDER_DEFAULT) -> bytes:
    """A PNG image of the QR code of `text`, black on white. Raises: QrInvalidField."""
    buffer = io.BytesIO()
    _make(text).save(buffer, kind="png", scale=scale, border=border)
    return buffer.getvalue()


def render_svg(text: str, *, scale: int = SCALE_DEFAULT, border: int = BORDER_DEFAULT) -> str:
    """An SVG document (text) of the QR code of `text`, black on white. Raises: QrInvalidField."""
    buffer = io.BytesIO()
    _make(text).save(buffer, kind="svg", scale=scale, border=border, title="Payment QR code")
    return buffer.getvalue().decode("utf-8")
