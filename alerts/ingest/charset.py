"""HTML bytes -> text, whatever the page declares about its encoding; pure, no I/O.

The order is that of a browser, with detection where a browser would guess:

1. a byte-order mark (UTF-8, UTF-16, UTF-32) wins over everything;
2. a body that is valid UTF-8 and holds multi-byte sequences is UTF-8, whatever a legacy declaration
   says: text in another encoding practically never validates as UTF-8, while templates that keep
   declaring ``iso-8859-1`` or ``windows-1256`` after a move to UTF-8 are common;
3. the ``charset`` of the HTTP ``Content-Type``;
4. ``<meta charset>`` or ``<meta http-equiv="content-type">`` (or an XML declaration) in the first 2 KB;
5. charset-normalizer's best guess (it reads Arabic windows-1256 that declares nothing);
6. UTF-8 with U+FFFD for the bytes that do not decode.

A declared charset is used only if the whole body decodes with it strictly: a declaration that lies
(bytes invalid in it) or names an unknown codec is passed over for the next step. An HTTP
``iso-8859-1``/``windows-1252`` (often a server's default rather than the page's word) yields to a
different ``<meta>`` declaration, and, when the page declares nothing, to a detected encoding in which
the text reads as a non-Latin script (Arabic shown as ``ÇáãíÇÏíä`` is the lie it undoes). Labels follow
the WHATWG Encoding Standard where Python differs: ``iso-8859-1`` and ``ascii`` mean windows-1252,
``gb2312`` means gb18030, and a ``<meta>`` naming UTF-16 means UTF-8.
"""

from __future__ import annotations

import codecs
import re
import unicodedata

import charset_normalizer

PRESCAN_BYTES = 2048
_BOMS: tuple[tuple[bytes, str], ...] = (  # UTF-32 first: its LE mark starts with UTF-16's
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_HTTP_CHARSET = re.compile(r"""charset\s*=\s*["']?\s*([^\s"';,]+)""", re.IGNORECASE)
_META = re.compile(rb"<meta\b[^>]*?\bcharset\s*=\s*[\"']?\s*([A-Za-z0-9._:()-]+)", re.IGNORECASE)
_XML_DECL = re.compile(rb"^\s*<\?xml\b[^>]*?\bencoding\s*=\s*[\"']([A-Za-z0-9._:-]+)", re.IGNORECASE)
_WHATWG = {  # Python codec name -> the codec a browser uses for that label
    "ascii": "cp1252",
    "iso8859-1": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "euc_kr": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
}
_WIDE = frozenset({"utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"})
_NOT_CHARSETS = frozenset({"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "utf-7"})
_SERVER_DEFAULT = "cp1252"
_C1 = re.compile("[\x80-\x9f]")
_C1_AS_WINDOWS_1252 = {  # the five bytes windows-1252 leaves undefined stay as they are (WHATWG)
    code: bytes([code]).decode(_SERVER_DEFAULT)
    for code in range(0x80, 0xA0)
    if code not in b"\x81\x8d\x8f\x90\x9d"
}


def decode_html(body: bytes, content_type: str | None) -> str:
    """The text of an HTML (or any text) document, decoded as described in the module docstring."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return body[len(bom) :].decode(encoding, errors="replace")
    utf8 = _strict(body, "utf-8")
    if utf8 is not None and not body.isascii():
        return utf8
    http, document = declared_encodings(body, content_type)
    http = _weighed(http, document)
    for encoding in ([http] if http else []) + document:
        text = _strict(body, encoding)
        if text is None:
            continue
        if encoding == _SERVER_DEFAULT and not document and (other := _non_latin_reading(body)):
            return other
        return text
    if utf8 is not None:  # pure ASCII: every ASCII-compatible declaration reads it alike
        return utf8
    detected = _detect(body)
    return detected[1] if detected else body.decode("utf-8", errors="replace")


def declared_encodings(body: bytes, content_type: str | None) -> tuple[str | None, list[str]]:
    """The codec the HTTP header declares and those the document declares, unknown labels dropped."""
    http = None
    if content_type and (match := _HTTP_CHARSET.search(content_type)):
        http = codec_for(match.group(1))
        if http in _WIDE and b"\x00" not in body[:PRESCAN_BYTES]:
            http = None  # UTF-16/32 text without NUL bytes: the header is wrong
    head = body[:PRESCAN_BYTES]
    labels = [m.group(1) for m in _META.finditer(head)]
    if declaration := _XML_DECL.match(head):
        labels.insert(0, declaration.group(1))
    document: list[str] = []
    for label in labels:
        encoding = codec_for(label.decode("ascii", "replace"))
        if encoding in _WIDE:
            encoding = "utf-8"  # a document read as ASCII to find its label is not UTF-16 (WHATWG)
        if encoding and encoding not in document:
            document.append(encoding)
    return http, document


def http_charset(body: bytes, content_type: str | None) -> tuple[str | None, str | None]:
    """(the HTTP charset if it counts, the document's own label), as codecs; None for no word.

    A server's default iso-8859-1/windows-1252 does not count against a different document label.
    """
    http, document = declared_encodings(body, content_type)
    return _weighed(http, document), document[0] if document else None


def _weighed(http: str | None, document: list[str]) -> str | None:
    """The HTTP codec, unless it is a server default that the document's own, different word beats."""
    return None if http == _SERVER_DEFAULT and document and document[0] != http else http


def codec_for(label: str) -> str | None:
    """The Python codec for a charset label (the WHATWG meaning where it differs), or None."""
    try:
        info = codecs.lookup(label.strip().strip("\"'"))
    except (LookupError, ValueError):
        return None
    if info.name in _NOT_CHARSETS or not getattr(info, "_is_text_encoding", True):
        return None
    return _WHATWG.get(info.name, info.name)


def utf8_read_as_latin1(text: str) -> str:
    """``text`` re-read as UTF-8 when it is UTF-8 misread as Latin-1 ("CafÃ©" -> "Café"), else as is.

    Step 2 of the module docstring, for text a parser already decoded (or that character references
    spelled): Latin-1 characters that together form valid multi-byte UTF-8 practically never are
    anything else.
    """
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


def windows_1252_controls(text: str) -> str:
    """``text`` with C1 control characters read as the windows-1252 characters they stand for.

    Text labelled iso-8859-1 that is really windows-1252 (the reason the WHATWG reads the label as
    windows-1252) turns curly quotes, dashes and the euro sign into invisible C1 controls, and so does
    such text converted to UTF-8 as if it were Latin-1. No reader means a C1 control in prose.
    """
    return text.translate(_C1_AS_WINDOWS_1252) if _C1.search(text) else text


def _strict(body: bytes, encoding: str) -> str | None:
    """``body`` decoded with ``encoding`` if every byte is valid in it, else None."""
    try:
        return body.decode(encoding)
    except (UnicodeError, LookupError):
        return None


def _detect(body: bytes) -> tuple[str, str] | None:
    """charset-normalizer's best (codec, text); windows-1252 wins its ties, as in browsers.

    Western text fits cp1250, cp1252 and cp1257 equally well by its measures, and its first pick
    (cp1250) turns "año" into "ańo"; windows-1252 is the WHATWG default for undeclared pages.
    """
    matches = charset_normalizer.from_bytes(body)
    best = matches.best()
    if best is None:
        return None
    for match in matches:
        if (match.chaos, -match.coherence) > (best.chaos, -best.coherence):
            break
        if _SERVER_DEFAULT in match.could_be_from_charset:
            return _SERVER_DEFAULT, str(match)
    return codec_for(best.encoding) or best.encoding, str(best)


def _non_latin_reading(body: bytes) -> str | None:
    """The detected reading of ``body`` when its letters are mostly of a non-Latin script, else None."""
    detected = _detect(body)
    if detected is None or detected[0] == _SERVER_DEFAULT:
        return None
    text = detected[1]
    latin = other = 0
    for char in text:
        if ord(char) >= 0x80 and char.isalpha():
            if unicodedata.name(char, "").startswith("LATIN"):
                latin += 1
            else:
                other += 1
    return text if other > latin else None


def undeclared_as_utf8(body: bytes, content_type: str | None) -> bytes:
    """``body`` re-encoded as UTF-8 when it declares no encoding (no BOM, HTTP charset, XML or meta
    label) and is not UTF-8: read as :func:`decode_html` reads it (by detection), where a feed parser
    would assume UTF-8 or windows-1252 and turn Hebrew or Arabic into Latin gibberish. Else unchanged.
    Costs a UTF-8 check on most documents; the detection runs only for the undeclared legacy ones."""
    if any(body.startswith(bom) for bom, _ in _BOMS) or _strict(body, "utf-8") is not None:
        return body
    http, document = declared_encodings(body, content_type)
    if http or document:
        return body
    return decode_html(body, None).encode("utf-8")
