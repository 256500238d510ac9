"""Tests of alerts.ingest.charset: BOMs, HTTP and in-page declarations, lies, undeclared pages."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from alerts.ingest.charset import codec_for, declared_encodings, decode_html

FIXTURES = Path(__file__).parents[1] / "fixtures"
TICKER = "مراسل الميادين في غزة: الاحتلال الإسرائيلي نفّذ غارات عنيفة جداً على المناطق الغربية لمدينة غزة"
SPANISH = "El niño y la canción del año: España pide el alto el fuego en Gaza y Líbano"


def arabic_page(head: str = "") -> str:
    """A small Arabic ticker page with ``head`` in its <head>."""
    return (
        f"<!DOCTYPE html><html lang='ar' dir='rtl'><head>{head}<title>الميادين</title></head><body>"
        f"<div id='ticker-box'><ul><li><div class='ticker-item'><div class='ticker-text'><a href='/news/1'>"
        f"<p>{TICKER}</p></a></div></div></li></ul></div><p>عاجل: وزارة الصحة اللبنانية</p></body></html>"
    )


def test_undeclared_windows_1256_fixture_is_detected() -> None:
    """The Arabic ticker fixture, windows-1256 with no declaration anywhere, decodes exactly."""
    body = (FIXTURES / "almayadeen_ar_ticker.html").read_bytes()
    assert b"charset" not in body.lower()
    assert decode_html(body, None) == body.decode("windows-1256")
    assert decode_html(body, "text/html") == body.decode("windows-1256")


def test_undeclared_windows_1256_small_page_is_detected() -> None:
    """A short windows-1256 page without a declaration still reads as Arabic."""
    assert TICKER in decode_html(arabic_page().encode("windows-1256"), None)


@pytest.mark.parametrize(
    ("head", "content_type"),
    [
        ("", "text/html; charset=windows-1256"),
        ("", 'text/html; charset="CP1256"'),
        ("<meta charset='windows-1256'>", None),
        ('<meta http-equiv="Content-Type" content="text/html; charset=windows-1256">', "text/html"),
    ],
)
def test_declared_windows_1256(head: str, content_type: str | None) -> None:
    """An HTTP charset or a <meta> declaration (either form) is honoured."""
    assert TICKER in decode_html(arabic_page(head).encode("windows-1256"), content_type)


def test_bom_wins_over_declarations() -> None:
    """A UTF-8 or UTF-16 byte-order mark beats a contrary header and <meta>."""
    text = arabic_page("<meta charset='windows-1256'>")
    utf8 = codecs.BOM_UTF8 + text.encode("utf-8")
    utf16 = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    assert decode_html(utf8, "text/html; charset=iso-8859-1") == text
    assert decode_html(utf16, "text/html; charset=windows-1256") == text


def test_declaration_that_fails_strictly_is_passed_over_for_detection() -> None:
    """<meta charset=utf-8> on windows-1256 bytes (invalid UTF-8) falls through to detection."""
    body = arabic_page("<meta charset='utf-8'>").encode("windows-1256")
    assert TICKER in decode_html(body, "text/html; charset=utf-8")


def test_valid_utf8_wins_over_a_legacy_declaration() -> None:
    """A page converted to UTF-8 that still declares windows-1256 or latin-1 is read as UTF-8."""
    body = arabic_page("<meta charset='windows-1256'>").encode("utf-8")
    assert TICKER in decode_html(body, "text/html; charset=windows-1256")
    assert SPANISH in decode_html(f"<p>{SPANISH}</p>".encode(), "text/html; charset=ISO-8859-1")


def test_server_default_latin1_yields_to_the_page_meta() -> None:
    """An HTTP iso-8859-1 (a server default) loses to a different <meta> in the page."""
    body = arabic_page("<meta charset='windows-1256'>").encode("windows-1256")
    assert TICKER in decode_html(body, "text/html; charset=ISO-8859-1")


def test_server_default_latin1_on_undeclared_arabic_is_detected() -> None:
    """An HTTP iso-8859-1 on an undeclared Arabic page gives Arabic, not Latin mojibake."""
    body = (FIXTURES / "almayadeen_ar_ticker.html").read_bytes()
    assert decode_html(body, "text/html; charset=iso-8859-1") == body.decode("windows-1256")


def test_latin1_declaration_on_western_text_is_kept() -> None:
    """A true iso-8859-1 (windows-1252) Spanish page keeps its accents and curly quotes."""
    body = f"<p>“{SPANISH}”</p>".encode("windows-1252")
    assert f"“{SPANISH}”" in decode_html(body, "text/html; charset=iso-8859-1")


def test_undeclared_windows_1252_prefers_windows_1252_over_central_european() -> None:
    """Undeclared Spanish bytes read as windows-1252 ("año"), not cp1250's "ańo"."""
    body = f"<html><body><h3>{SPANISH}</h3><p>Señor Muñoz</p></body></html>".encode("windows-1252")
    text = decode_html(body, None)
    assert SPANISH in text and "Señor Muñoz" in text


def test_unknown_and_pseudo_charsets_are_ignored() -> None:
    """Labels Python does not know, or that are not text encodings, do not derail decoding."""
    body = arabic_page("<meta charset='x-bogus'>").encode("windows-1256")
    assert TICKER in decode_html(body, "text/html; charset=unicode-escape")
    assert codec_for("x-bogus") is None and codec_for("unicode-escape") is None and codec_for("rot13") is None


def test_meta_utf16_means_utf8_and_header_utf16_needs_nul_bytes() -> None:
    """<meta charset=utf-16> on ASCII-readable bytes means UTF-8; a UTF-16 header without NULs is a lie."""
    assert declared_encodings(b"<meta charset='utf-16'><p>x</p>", None) == (None, ["utf-8"])
    assert decode_html(b"<p>plain ascii</p>", "text/html; charset=utf-16") == "<p>plain ascii</p>"


def test_whatwg_labels() -> None:
    """Browsers' meanings: latin-1 and ascii are windows-1252, gb2312 is gb18030."""
    assert codec_for("ISO-8859-1") == codec_for("us-ascii") == "cp1252"
    assert codec_for("GB2312") == "gb18030"
    assert codec_for("windows-1256") == "cp1256"


def test_undecodable_bytes_never_raise() -> None:
    """Bytes valid in no declared or detected encoding still give text."""
    body = b"<p>\xff\xfe\x00\x81\x8d\x90 " + bytes(range(128, 256)) + b"</p>"
    assert decode_html(body, "text/html; charset=utf-8").startswith("<p>")
