"""Whether fastfeedparser may misread a feed document: cheap checks of the bytes, before any parse.

fastfeedparser parses with libxml2 in recover mode (an undeclared entity or a raw ``&`` silently cuts
text), reads RSS item children by local name (a ``media:title`` before the ``title`` wins), and knows
nothing of ``xml:base``, xhtml text constructs or the HTTP charset. Each check finds a document on
which that loses what the publisher wrote; parse_feed reads those with feedparser instead. On a clean
feed the checks cost a small fraction of a parse: substring searches, precompiled regexes, and one
expat pass with no handlers (a tokenizer that builds nothing) to prove the document well-formed.

:func:`declared_entity` is the check before those: a document whose DTD declares an entity (the
billion laughs, an external entity reading a local file or URL) is refused, not parsed.
"""

from __future__ import annotations

import codecs
import re
from xml.parsers import expat

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from alerts.ingest.charset import PRESCAN_BYTES, http_charset

# A reference xml:base changes: an RSS <link> or an href that is not absolute (two literal-led regexes
# scan far faster than one alternation).
_RELATIVE_REFS = (
    re.compile(rb"<link\s*>\s*(?![A-Za-z][A-Za-z0-9+.-]*:)"),
    re.compile(rb"""\bhref\s*=\s*["']\s*(?![A-Za-z][A-Za-z0-9+.-]*:)"""),
)
_ATOM_03 = b"http://purl.org/atom/ns#"  # Atom 0.3: issued, modified, mode="base64" and mode="xml"
# An Atom text construct of a media type that is neither text nor XML: feedparser decodes its base64.
_BINARY_TEXT = re.compile(
    rb"""<(?:title|summary|content)\s[^>]*?\btype\s*=\s*["'](?!text\b|html\b|xhtml\b|text/)"""
    rb"""(?![\w.+-]+/[\w.+-]*xml\b)[\w.+-]+/"""
)
_XHTML = re.compile(rb"""http://www\.w3\.org/1999/xhtml|\btype\s*=\s*["'](?:application/)?xhtml""")
# Item children fastfeedparser reads by local name, whatever their namespace prefix.
_PREFIXED = re.compile(rb"<[A-Za-z_][\w.-]*:(title|link|description|guid|pubDate|category)[\s/>]")
_PLAIN = {
    name: re.compile(rb"<" + name + rb"[\s/>]")
    for name in (b"title", b"link", b"description", b"guid", b"pubDate", b"category")
}
_MEDIA_CONTAINERS = (b"media:content", b"media:group")  # their media:title is not the item's
_CONTAINER_NEAR = 1024  # how far back a container's start tag is first looked for
_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)  # UTF-32's start with UTF-16's
_WIDE_LABEL = re.compile(rb"^\s*<\?xml\b[^>]*?\bencoding\s*=\s*[\"']utf-(?:16|32)", re.IGNORECASE)
_UNDEFINED_ENTITY = expat.errors.codes[expat.errors.XML_ERROR_UNDEFINED_ENTITY]
# "<!ENTITY" and "<!DOCTYPE" as bytes in ASCII-compatible encodings, then in UTF-16 and UTF-32.
_WIDE_CODECS = ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
_ENTITY_DECL = b"<!ENTITY"
_DOCTYPE = b"<!DOCTYPE"
_WIDE_DECLS = tuple(("<!DOCTYPE".encode(c), "<!ENTITY".encode(c)) for c in _WIDE_CODECS)
_UNKNOWN_ENCODING = expat.errors.codes[expat.errors.XML_ERROR_UNKNOWN_ENCODING]


class _Hazard(Exception):
    """Raised by an expat handler to stop at the first entity the fast path would lose."""


class _Declared(Exception):
    """Raised by expat's EntityDeclHandler: the DTD declares an entity (its name is the argument)."""


class _PrologRead(Exception):
    """Raised by expat's StartElementHandler: the root element began, so no DTD can follow."""


def declared_entity(body: bytes) -> str | None:
    """The name of an entity the document's DTD declares ('' when the prolog is unreadable), else None.

    General or parameter, internal (``<!ENTITY lol "&lol1;&lol1;">``, the billion laughs) or external
    (``<!ENTITY xxe SYSTEM "file:///etc/passwd">``): a feed has no use for any, so parse_feed refuses
    the document as defusedxml would. A DOCTYPE that declares nothing (RSS 0.91's
    ``<!DOCTYPE rss PUBLIC ... "rss-0.91.dtd">``) is fine: no parser here loads an external DTD.

    Cheap on nearly every feed: a substring search for ``<!ENTITY`` (in UTF-16 and UTF-32 too when the
    body holds NUL bytes). Only when one is found does expat read the prolog, stopping at the root
    element's start, so ``<!ENTITY`` quoted in an item's CDATA is no declaration. A prolog expat cannot
    read (ill-formed, an encoding it lacks) is judged on the bytes: a DOCTYPE before an ``<!ENTITY``.
    """
    pairs = [(_DOCTYPE, _ENTITY_DECL)]
    if b"\x00" in body:
        pairs += _WIDE_DECLS
    if not any(entity in body for _, entity in pairs):
        return None
    stripped = body if b"\x00" in body[:4] else body.lstrip()
    wide_lie = _WIDE_LABEL.match(stripped) is not None and b"\x00" not in stripped[:PRESCAN_BYTES]
    parser = expat.ParserCreate("utf-8" if wide_lie else None)
    parser.EntityDeclHandler = _entity_declared
    parser.StartElementHandler = _root_begun
    try:
        parser.Parse(stripped, True)
    except _Declared as declared:
        return str(declared)
    except _PrologRead:
        return None
    except (expat.ExpatError, ValueError, LookupError):  # ill-formed, or an encoding expat lacks
        pass
    for doctype, entity in pairs:
        begun = body.find(doctype)
        if begun != -1 and body.find(entity, begun) != -1:
            return ""
    return None


def _entity_declared(name: str, *_: object) -> None:
    raise _Declared(name)


def _root_begun(name: str, attributes: object) -> None:
    raise _PrologRead


def fast_path_hazard(body: bytes, content_type: str | None = None) -> str | None:
    """Why fastfeedparser may misread ``body`` (a short phrase), or None when it reads it faithfully."""
    return (
        _xml_base(body)
        or _atom_03(body)
        or _xhtml(body)
        or _charset_conflict(body, content_type)
        or _shadowing(body)
        or ("tags element" if b"<tags>" in body else None)  # comma-separated tags only feedparser reads
        or _ill_formed(body)
    )


def _xml_base(body: bytes) -> str | None:
    """xml:base with a relative link for it to change (fastfeedparser resolves against the feed only)."""
    relative = b"xml:base" in body and any(ref.search(body) for ref in _RELATIVE_REFS)
    return "xml:base" if relative else None


def _atom_03(body: bytes) -> str | None:
    """Atom 0.3 (dates, base64 and inline XML it does not read), or Atom 1.0 text in a binary type."""
    head = body[:PRESCAN_BYTES]
    if _ATOM_03 in head:
        return "Atom 0.3"
    if b"<feed" in head and b"type=" in body and _BINARY_TEXT.search(body):
        return "base64 text"
    return None


def _xhtml(body: bytes) -> str | None:
    """xhtml text constructs, which fastfeedparser reads as empty text."""
    return "xhtml content" if b"xhtml" in body and _XHTML.search(body) else None


def _charset_conflict(body: bytes, content_type: str | None) -> str | None:
    """An HTTP charset that would read the bytes otherwise than the document's own label does.

    fastfeedparser never sees the header. The header is passed over where :mod:`charset` passes it
    over: against a byte-order mark, as a server default against another label, and as a legacy
    charset on a body that is valid UTF-8 and labelled (or taken) as such.
    """
    if not content_type or "charset" not in content_type.lower() or body.isascii() or body.startswith(_BOMS):
        return None
    http, label = http_charset(body, content_type)
    fast = label or "utf-8"
    if http is None or http == fast or (fast == "utf-8" and _decodes(body, "utf-8")):
        return None
    return f"HTTP charset {http} over {fast}"


def _shadowing(body: bytes) -> str | None:
    """A prefixed element (media:title, foo:link) that would stand for an RSS item's own child.

    fastfeedparser takes the first child of an item with the local name, whatever its namespace;
    one nested in media:content or media:group is not a child and is passed over.
    """
    for match in _PREFIXED.finditer(body):
        at = match.start()
        near = max(0, at - _CONTAINER_NEAR)
        if body.startswith(b"<media:", at) and any(_open(body, c, near, at) for c in _MEDIA_CONTAINERS):
            continue  # the commonest case, told cheaply: media:title just inside media:content
        item = body.rfind(b"<item", 0, at)
        if item == -1:
            item = body.rfind(b":item", 0, at)  # <rss:item>
        name = match.group(1)
        if item == -1 or _PLAIN[name].search(body, item, at):
            continue  # before any item, or the item's own element comes first (fastfeedparser keeps it)
        if body.find(b"item>", item + 5, at) != -1:
            continue  # after the item's end: channel level (Atom entries are read by namespace)
        if not any(_open(body, container, item, at) for container in _MEDIA_CONTAINERS):
            return f"namespaced {name.decode()}"
    return None


def _open(body: bytes, name: bytes, start: int, at: int) -> bool:
    """Whether the last ``name`` element begun between ``start`` and ``at`` is still open at ``at``."""
    begun = body.rfind(b"<" + name, start, at)
    if begun == -1:
        return False
    end = body.find(b">", begun, at)
    return end != -1 and body[end - 1] != ord("/") and body.find(b"</" + name, end, at) == -1


def _ill_formed(body: bytes) -> str | None:
    """Anything libxml2's recover mode would silently repair or drop: a strict expat pass.

    Catches undeclared entities (which cut text at the entity), raw ``&`` (dropped), entities declared
    in a DTD (left unexpanded) and any other ill-formedness. A UTF-16 label on 8-bit bytes is read
    as UTF-8, as fastfeedparser does; an encoding expat lacks (multi-byte CJK) is checked by libxml2.
    """
    body = body.lstrip()
    wide_lie = _WIDE_LABEL.match(body) is not None and b"\x00" not in body[:PRESCAN_BYTES]
    parser = expat.ParserCreate("utf-8" if wide_lie else None)
    parser.EntityDeclHandler = _declared
    parser.SkippedEntityHandler = _skipped
    try:
        parser.Parse(body, True)
    except _Hazard as hazard:
        return str(hazard)
    except LookupError:
        return "unknown encoding"
    except ValueError:  # "multi-byte encodings are not supported"
        return _ill_formed_to_libxml2(body)
    except expat.ExpatError as error:
        if error.code == _UNKNOWN_ENCODING:
            return _ill_formed_to_libxml2(body)
        if error.code == _UNDEFINED_ENTITY:
            return "undeclared entity"
        return f"ill-formed XML ({expat.ErrorString(error.code)})"
    return None


def _ill_formed_to_libxml2(body: bytes) -> str | None:
    """The strict check for encodings expat cannot read: libxml2 without recovery."""
    if b"<!DOCTYPE" in body[:PRESCAN_BYTES]:
        return "DTD"  # entities it declares or implies stay unexpanded in fastfeedparser
    parser = etree.XMLParser(recover=False, resolve_entities=False, no_network=True, huge_tree=True)
    try:
        etree.fromstring(body, parser)
    except etree.XMLSyntaxError as error:
        return f"ill-formed XML ({error.msg})"
    return None


def _declared(name: str, *_: object) -> None:
    """EntityDeclHandler: a DTD declares an entity, which fastfeedparser would not expand."""
    raise _Hazard("entity declared in DTD")


def _skipped(name: str, is_parameter_entity: bool) -> None:
    """SkippedEntityHandler: an entity only an external DTD could define."""
    raise _Hazard("undeclared entity")


def _decodes(body: bytes, encoding: str) -> bool:
    """Whether every byte of ``body`` is valid in ``encoding``."""
    try:
        body.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True
