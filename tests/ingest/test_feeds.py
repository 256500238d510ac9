"""Tests of alerts.ingest.feeds: the shared feed corpus, then normalisation on small inline documents."""

from __future__ import annotations

import hashlib
import html.entities
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import alerts.ingest.feeds as parse_module
from alerts.errors import FeedParseError
from alerts.ingest.feedcheck import fast_path_hazard
from alerts.ingest.feeds import SUMMARY_TITLE_LIMIT, parse_feed
from alerts.models import FeedItem

FEEDS = Path(__file__).resolve().parents[2].parent / "shared" / "feeds"
FILES = sorted(p.name for p in FEEDS.iterdir() if p.name != "MANIFEST.tsv") if FEEDS.is_dir() else []
needs_feeds = pytest.mark.skipif(not FEEDS.is_dir(), reason=f"shared feed corpus not found at {FEEDS}")
BASE = "https://example.test/feed.xml"
ARABIC = re.compile("[\u0600-\u06ff]")

# The corpus files with no usable item: ill-formed XML, or items with no title, link or summary text.
BROKEN = {
    "feedparser_encoding_bozo_invalid-bytes-with-bom.xml",
    "feedparser_illformed_aaa_illformed.xml",
    "feedparser_illformed_undeclared_namespace.xml",
    "feedrs_rss_2.0_invalid_1.xml",
}


def corpus(name: str) -> list[FeedItem]:
    """parse_feed on one file of the shared corpus."""
    return parse_feed((FEEDS / name).read_bytes(), BASE)


def rss(items: str, channel: str = "") -> bytes:
    """A small RSS 2.0 document around ``items``."""
    head = '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
    return f"{head}{channel}{items}</channel></rss>".encode()


@pytest.fixture
def feedparser_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts calls of the feedparser fallback."""
    calls: list[int] = []
    real: Callable[..., Any] = vars(parse_module)["feedparser"].parse

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("alerts.ingest.feeds.feedparser.parse", counting)
    return calls


# -- the shared corpus ------------------------------------------------------------------------------


@needs_feeds
@pytest.mark.parametrize("name", FILES)
def test_corpus_file_gives_items_or_feed_parse_error(name: str) -> None:
    """Every corpus file yields well-formed items, or FeedParseError exactly for the broken ones, in < 2 s."""
    started = time.perf_counter()
    try:
        items = corpus(name)
    except FeedParseError as exc:
        assert name in BROKEN, f"{name} raised {exc}"
        assert str(exc) and "\n" not in str(exc) and len(str(exc)) < 250
    else:
        assert name not in BROKEN and items
        for item in items:
            assert isinstance(item, FeedItem) and item.id
            assert item.title or item.link
            assert item.published is None or item.published.utcoffset() is not None
            assert item.published is None or item.published.tzinfo is UTC
            assert item.link is None or item.link.startswith(("http://", "https://"))
            assert len(item.summary) <= 1000 and "\ufffd" not in item.title + item.summary
    assert time.perf_counter() - started < 2.0


@needs_feeds
def test_aljazeera_has_25_items_and_unescaped_text() -> None:
    """Al Jazeera: 25 items, the first title as published, and its &#039; entity read as an apostrophe."""
    items = corpus("ffp_aljazeera_all.xml")
    assert len(items) == 25
    assert items[0].title == "Stephen Colbert says CBS barred interview with Texas Democratic candidate"
    assert "Monday's broadcast" in items[0].summary and "&#039;" not in items[0].summary
    assert items[0].published == datetime(2026, 2, 18, 1, 51, tzinfo=UTC)
    assert items[0].categories == ("News",)


@needs_feeds
def test_windows_1251_feed_decodes_cyrillic() -> None:
    """A windows-1251 feed gives its Russian titles and summaries, with <br /> turned into spaces."""
    items = corpus("miniflux_parser_encoding_WINDOWS-1251.xml")
    assert items[0].title == "Цитата #17703"
    assert items[0].summary.startswith("xxx: есть у кого жаба программер xxx: кот")


@needs_feeds
@pytest.mark.parametrize("name", ["miniflux_parser_urdu_UTF8.xml", "pear_hoder_farsi.xml"])
def test_urdu_and_farsi_titles_are_arabic_script(name: str) -> None:
    """Urdu and Farsi feeds keep their Arabic-script titles."""
    items = corpus(name)
    assert all(ARABIC.search(item.title) for item in items)


@needs_feeds
@pytest.mark.parametrize(
    "name", ["miniflux_encoding_invalid-prolog.xml", "miniflux_encoding_utf8-incorrect-prolog.xml"]
)
def test_namespaceless_atom_with_lying_prolog_reads_cafe_via_fallback(
    name: str, feedparser_calls: list[int]
) -> None:
    """Atom without namespace and a wrong encoding declaration is read by feedparser: title 'Café'."""
    items = corpus(name)
    assert [item.title for item in items] == ["Café"]
    assert items[0].id == "sha1:" + hashlib.sha1("Café".encode()).hexdigest()
    assert feedparser_calls


@needs_feeds
def test_heise_rdf_gives_60_items_via_fallback(feedparser_calls: list[int]) -> None:
    """The RDF 0.9 heise feed, on which fastfeedparser finds nothing, gives feedparser's 60 items."""
    items = corpus("miniflux_parser_rdf_UTF8.xml")
    assert len(items) == 60 and feedparser_calls
    assert items[0].title == "OLED-TVs: Vorsichtsmaßnahmen gegen Einbrennen"
    assert items[0].link is not None and items[0].link.startswith("https://www.heise.de/newsticker/")


@needs_feeds
def test_news_feed_uses_only_the_fast_path(feedparser_calls: list[int]) -> None:
    """A sound news feed is parsed by fastfeedparser alone; feedparser is never called."""
    assert len(corpus("ffp_bbc_world.xml")) == 33
    assert not feedparser_calls


@needs_feeds
def test_json_feed_sample() -> None:
    """JSON Feed: titles, summary, link, UTC date and tags of both items."""
    items = corpus("ffp_json_feed_sample.json")
    assert [item.title for item in items] == ["First JSON Feed Item", "Second JSON Feed Item"]
    first = items[0]
    assert (first.id, first.link, first.summary) == (
        "https://example.org/item1",
        "https://example.org/item1",
        "First item summary",
    )
    assert first.published == datetime(2024, 1, 15, 12, 0, tzinfo=UTC)
    assert first.categories == ("test", "json", "feed")


@needs_feeds
@pytest.mark.parametrize(
    ("name", "count", "title"),
    [
        ("ffp_blog_bom.xml", 10, "EF Core Lazy Loading Performance Gotcha"),
        ("ffp_blog_utf16.xml", 59, "So you want to parse a PDF?"),
        ("ffp_utf16_encoded_small.xml", 1, "UTF-16 Entry 1"),
    ],
)
def test_bom_and_utf16_declared_files(name: str, count: int, title: str) -> None:
    """A UTF-8 BOM, and UTF-8 bodies that declare UTF-16, still give every item with its title."""
    items = corpus(name)
    assert len(items) == count and items[0].title == title


@needs_feeds
def test_undeclared_latin1_is_not_mojibake() -> None:
    """A latin-1 feed without encoding declaration reads 'études', not U+FFFD, through the fallback."""
    items = corpus("miniflux_parser_no_encoding_ISO-8859-1.xml")
    assert len(items) == 9
    assert "nombre d'études montrent" in items[0].summary


# -- normalisation ----------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be"])
def test_real_utf16_body(encoding: str) -> None:
    """A body really encoded in UTF-16 (with or without BOM) decodes correctly."""
    body = rss("<item><title>Ünïcödé — 日本</title><link>https://e.org/1</link></item>")
    body = body.decode().replace('encoding="utf-8"', 'encoding="utf-16"').encode(encoding)
    assert [item.title for item in parse_feed(body, BASE)] == ["Ünïcödé — 日本"]


def test_html_stripped_and_entities_unescaped() -> None:
    """HTML in title and summary becomes plain text: tags and scripts gone, entities (even doubled) read."""
    body = rss(
        "<item><title>Gaza&amp;#039;s  &lt;b&gt;night&lt;/b&gt;\n shelling</title><link>https://e.org/1</link>"
        "<description>&lt;p&gt;Hello &lt;a href='x'&gt;world&lt;/a&gt;&lt;/p&gt;&lt;p&gt;Next&amp;amp;more"
        "&lt;br/&gt;line&lt;/p&gt;&lt;script&gt;alert(1)&lt;/script&gt;&lt;!-- hidden --&gt;"
        "</description></item>"
    )
    [item] = parse_feed(body, BASE)
    assert item.title == "Gaza's night shelling"
    assert item.summary == "Hello world Next&more line"


def test_long_summary_truncated_on_word_boundary() -> None:
    """A long summary is cut to at most 1000 characters, after a whole word, ending with '…'."""
    words = " ".join(f"word{i}" for i in range(1000))
    [item] = parse_feed(rss(f"<item><title>t</title><description>{words}</description></item>"), BASE)
    assert len(item.summary) <= 1000 and item.summary.endswith("…")
    kept = item.summary[:-1]
    assert words.startswith(kept) and words[len(kept)] == " " and len(kept) > 900


def test_relative_link_made_absolute_against_base_url() -> None:
    """Without a channel link, a relative item link is resolved against base_url."""
    [item] = parse_feed(rss("<item><title>t</title><link>/news/1</link></item>"), "https://site.org/rss/feed")
    assert item.link == "https://site.org/news/1" and item.id == "https://site.org/news/1"


def test_relative_link_made_absolute_against_channel_link() -> None:
    """A relative item link is resolved against the feed's own (channel) link when there is one."""
    body = rss(
        "<item><title>t</title><link>story/2</link></item>", "<link>https://www.site.org/world/</link>"
    )
    [item] = parse_feed(body, "https://cdn.example.net/feeds/rss")
    assert item.link == "https://www.site.org/world/story/2"


@pytest.mark.parametrize("link", ["javascript:alert(1)", "mailto:a@b.org", "ftp://e.org/f"])
def test_non_http_link_dropped(link: str) -> None:
    """Links that are not http(s) become None; the titled item stays."""
    [item] = parse_feed(rss(f"<item><title>t</title><link>{link}</link></item>"), BASE)
    assert item.link is None and item.title == "t"


def test_id_prefers_guid_then_link_then_title_hash() -> None:
    """id is the guid when present, else the absolute link, else sha1 of the normalised title."""
    body = rss(
        "<item><title>a</title><guid isPermaLink='false'>urn:story:1</guid><link>https://e.org/1</link></item>"
        "<item><title>b</title><link>https://e.org/2</link></item>"
        "<item><title> Only  &amp; title </title></item>"
    )
    ids = [item.id for item in parse_feed(body, BASE)]
    assert ids == ["urn:story:1", "https://e.org/2", "sha1:" + hashlib.sha1(b"Only & title").hexdigest()]


def test_published_converted_to_utc() -> None:
    """An RFC 822 date at +0300 becomes the same instant in UTC; an unparseable date becomes None."""
    body = rss(
        "<item><title>a</title><pubDate>Mon, 01 Jan 2024 12:00:00 +0300</pubDate></item>"
        "<item><title>b</title><pubDate>someday soon</pubDate></item>"
    )
    first, second = parse_feed(body, BASE)
    assert first.published == datetime(2024, 1, 1, 9, 0, tzinfo=UTC) and first.published.tzinfo is UTC
    assert second.published is None


def test_atom_updated_used_when_no_published() -> None:
    """An Atom entry with only <updated> takes it as its published time, in UTC."""
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title><entry><id>urn:1</id><title>a</title>'
        b"<updated>2024-06-01T08:30:00-04:00</updated></entry></feed>"
    )
    [item] = parse_feed(body, BASE)
    assert item.published == datetime(2024, 6, 1, 12, 30, tzinfo=UTC)


def test_fallback_dates_from_struct_time_are_utc(feedparser_calls: list[int]) -> None:
    """Through the feedparser fallback (namespace-less Atom), dates come out as aware UTC datetimes."""
    body = b"<feed><title>x</title><entry><title>a</title><updated>2024-01-01T12:00:00+03:00</updated>"
    body += b"</entry></feed>"
    [item] = parse_feed(body, BASE)
    assert feedparser_calls and item.published == datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def test_categories_stripped_deduplicated_in_order() -> None:
    """Category terms are stripped, blank and repeated ones dropped, document order kept."""
    body = rss(
        "<item><title>t</title><category> World </category><category>Asia</category>"
        "<category>World</category><category>  </category><category>Asia &amp; Pacific</category></item>"
    )
    [item] = parse_feed(body, BASE)
    assert item.categories == ("World", "Asia", "Asia & Pacific")


def test_items_with_nothing_to_show_dropped() -> None:
    """An item with no title, link or summary text is dropped; one with only a link is kept."""
    body = rss(
        "<item><guid isPermaLink='false'>urn:1</guid><description>&lt;img src='x'/&gt;</description></item>"
        "<item><link>https://e.org/only-link</link></item>"
        "<item><title>only title</title></item>"
    )
    items = parse_feed(body, BASE)
    assert [(item.title, item.link) for item in items] == [
        ("", "https://e.org/only-link"),
        ("only title", None),
    ]


def test_well_formed_feed_with_only_unusable_items_gives_empty_list() -> None:
    """A well-formed feed whose items have no title, link or summary text gives []."""
    assert parse_feed(rss("<item><guid isPermaLink='false'>x</guid></item>"), BASE) == []


def test_broken_feed_with_only_unusable_items_raises() -> None:
    """An ill-formed feed whose items have no title, link or summary text raises FeedParseError."""
    body = rss("<item><guid isPermaLink='false'>x</guid></item>").replace(b"</rss>", b"</rss")
    with pytest.raises(FeedParseError, match="ill-formed"):
        parse_feed(body, BASE)


@pytest.mark.parametrize("body", [b"", b"  \r\n\t"])
def test_empty_body_raises(body: bytes) -> None:
    """An empty or blank body raises FeedParseError('empty body')."""
    with pytest.raises(FeedParseError, match=r"^empty body$"):
        parse_feed(body, BASE)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"\x00\x01\x02 garbage \xff", "not a feed"),
        (b"hello world", "not a feed"),
        (b"<!doctype html><html><body><p>Sign in</p></body></html>", "HTML"),
        (b"<?xml version='1.0'?><foo><bar/></foo>", "Unknown feed type"),
        (b'{"not": "a feed"}', "JSON Feed"),
    ],
)
def test_non_feeds_raise_short_message(body: bytes, reason: str) -> None:
    """Garbage, HTML, other XML and other JSON raise FeedParseError with one short line naming the reason."""
    with pytest.raises(FeedParseError, match=reason) as info:
        parse_feed(body, BASE)
    message = str(info.value)
    assert message.startswith("not a feed: ") and "\n" not in message and len(message) < 200
    assert "Traceback" not in message


@pytest.mark.parametrize(
    "body",
    [
        rss(""),
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title></feed>',
        b'{"version": "https://jsonfeed.org/version/1.1", "title": "x", "items": []}',
    ],
)
def test_well_formed_feed_without_items_gives_empty_list(body: bytes) -> None:
    """Well-formed RSS, Atom and JSON Feed documents with no items give []."""
    assert parse_feed(body, BASE) == []


def test_library_exceptions_never_escape(monkeypatch: pytest.MonkeyPatch) -> None:
    """When both libraries raise, only FeedParseError comes out, carrying the reason."""

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("library exploded")

    monkeypatch.setattr("alerts.ingest.feeds.fastfeedparser.parse", boom)
    monkeypatch.setattr("alerts.ingest.feeds.feedparser.parse", boom)
    with pytest.raises(FeedParseError, match="library exploded"):
        parse_feed(rss("<item><title>t</title></item>"), BASE)


def test_fastfeedparser_exception_falls_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """When fastfeedparser raises, feedparser's reading of the document is returned."""

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("nope")

    monkeypatch.setattr("alerts.ingest.feeds.fastfeedparser.parse", boom)
    [item] = parse_feed(rss("<item><title>kept</title><link>/x</link></item>"), "https://e.org/feed")
    assert (item.title, item.link) == ("kept", "https://e.org/x")


def test_body_naming_a_file_is_not_opened(tmp_path: Path) -> None:
    """A body that happens to be a file path is parsed as bytes, never opened as a file."""
    path = tmp_path / "feed.xml"
    path.write_bytes(rss("<item><title>from disk</title></item>"))
    with pytest.raises(FeedParseError):
        parse_feed(str(path).encode(), BASE)


def test_undeclared_latin1_inline_decodes() -> None:
    """A latin-1 body with no declaration gives 'Café crème', not replacement characters."""
    body = "<rss version='2.0'><channel><title>t</title><item><title>Café crème</title></item></channel>"
    body += "</rss>"
    [item] = parse_feed(body.encode("latin-1"), BASE)
    assert item.title == "Café crème"


# -- what the fast path used to lose: each read as feedparser reads it ----------------------------

ATOM = (
    '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"{attrs}><title>x</title>'
)
NAMESPACES = (
    ' xmlns:media="http://search.yahoo.com/mrss/" xmlns:atom="http://www.w3.org/2005/Atom"'
    ' xmlns:foo="http://foo.example/ns" xmlns:content="http://purl.org/rss/1.0/modules/content/"'
)


def rss_ns(items: str) -> bytes:
    """A small RSS 2.0 document declaring the media, atom, content and a foreign namespace."""
    head = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"{NAMESPACES}><channel><title>T</title>'
    return f"{head}{items}</channel></rss>".encode()


def atom(entries: str, attrs: str = "") -> bytes:
    """A small Atom 1.0 document around ``entries``."""
    return (ATOM.format(attrs=attrs) + entries + "</feed>").encode()


def test_undeclared_entity_keeps_the_title_and_every_link() -> None:
    """One HTML entity XML does not declare neither cuts titles at it nor strips &amp; from any link."""
    body = rss(
        "<item><title>Don&rsquo;t stop</title><link>https://e.org/a?x=1&amp;y=2</link></item>"
        "<item><title>Gaza&nbsp;talks</title><link>https://e.org/b?x=1&amp;y=2</link></item>"
    )
    items = parse_feed(body, BASE)
    assert [item.title for item in items] == ["Don\u2019t stop", "Gaza talks"]
    assert [item.link for item in items] == ["https://e.org/a?x=1&y=2", "https://e.org/b?x=1&y=2"]


def test_every_html_named_entity_survives_in_a_title() -> None:
    """All 252 HTML 4 named entities, undeclared in XML, are read as their characters."""
    names = sorted(html.entities.name2codepoint)
    body = rss(
        "".join(
            f"<item><title>a &{name}; b</title><link>https://e.org/{name}</link></item>" for name in names
        )
    )
    titles = {item.link: item.title for item in parse_feed(body, BASE)}
    wrong = [
        name
        for name in names
        if titles.get(f"https://e.org/{name}")
        != " ".join(f"a {chr(html.entities.name2codepoint[name])} b".split())
    ]
    assert len(names) == 252 and not wrong


def test_raw_ampersand_in_a_link_is_kept() -> None:
    """A raw '&' in a link (ill-formed XML) is kept, not dropped with what follows it."""
    [item] = parse_feed(rss("<item><title>t</title><link>https://e.org/?a=1&b=2&c</link></item>"), BASE)
    assert item.link == "https://e.org/?a=1&b=2&c"


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ("<media:title>Photo caption</media:title><title>Real</title><link>https://e.org/1</link>", "Real"),
        ("<title>Real</title><foo:link>https://fake.example/</foo:link><link>https://e.org/1</link>", "Real"),
        (
            '<atom:link rel="self" href="https://fake.example/"/><title>Real</title><link>https://e.org/1</link>',
            "Real",
        ),
    ],
)
def test_namespaced_element_does_not_shadow_the_items_own(fields: str, expected: str) -> None:
    """A prefixed title or link before the item's own does not replace it (nor blank the link)."""
    [item] = parse_feed(rss_ns(f"<item>{fields}</item>"), BASE)
    assert (item.title, item.link) == (expected, "https://e.org/1")


def test_foreign_description_does_not_shadow_the_items_own() -> None:
    """A foreign-namespace description before the RSS one leaves the summary the item's own."""
    body = rss_ns(
        "<item><title>t</title><foo:description>module data</foo:description>"
        "<description>Real</description></item>"
    )
    [item] = parse_feed(body, BASE)
    assert item.summary == "Real"


def test_media_title_inside_media_content_keeps_the_fast_path(feedparser_calls: list[int]) -> None:
    """media:title nested in media:content is no item child: the item is read by fastfeedparser alone."""
    body = rss_ns(
        "<item><media:content url='https://e.org/i.jpg'><media:title>Caption</media:title></media:content>"
        "<title>Real</title><link>https://e.org/1</link><atom:link rel='standout' href='https://e.org/2'/></item>"
    )
    [item] = parse_feed(body, BASE)
    assert (item.title, item.link) == ("Real", "https://e.org/1") and not feedparser_calls


def test_xhtml_title_and_summary_are_read() -> None:
    """Atom type="xhtml" title and summary give their text, not empty strings."""
    div = '<div xmlns="http://www.w3.org/1999/xhtml">'
    body = atom(
        f'<entry><id>urn:1</id><title type="xhtml">{div}Hello <b>world</b></div></title>'
        f'<summary type="xhtml">{div}<p>Short <i>summary</i></p></div></summary>'
        '<link href="https://e.org/1"/></entry>'
    )
    [item] = parse_feed(body, BASE)
    assert (item.title, item.summary) == ("Hello world", "Short summary")


def test_xml_base_resolves_relative_links() -> None:
    """A relative entry link resolves against xml:base, not the feed URL."""
    body = atom(
        '<entry><id>urn:1</id><title>t</title><link href="story/2"/></entry>',
        ' xml:base="https://base.example/news/"',
    )
    [item] = parse_feed(body, "https://cdn.example.net/feed")
    assert item.link == "https://base.example/news/story/2"


def test_http_charset_wins_over_the_document_label() -> None:
    """windows-1251 bytes labelled iso-8859-1 but served with charset=windows-1251 read as Cyrillic."""
    body = "<?xml version='1.0' encoding='iso-8859-1'?><rss version='2.0'><channel><title>T</title><item>"
    body += "<title>Мир</title><link>https://e.org/1</link></item></channel></rss>"
    [item] = parse_feed(body.encode("windows-1251"), BASE, "application/rss+xml; charset=windows-1251")
    assert item.title == "Мир"


def test_server_default_latin1_header_on_utf8_keeps_utf8(feedparser_calls: list[int]) -> None:
    """A server's default charset=iso-8859-1 on a UTF-8 feed is passed over: fast path, no mojibake."""
    body = rss("<item><title>Líbano: alto el fuego</title><link>https://e.org/1</link></item>")
    [item] = parse_feed(body, BASE, "text/xml; charset=ISO-8859-1")
    assert item.title == "Líbano: alto el fuego" and not feedparser_calls


def test_windows_1252_quotes_in_a_latin1_feed(feedparser_calls: list[int]) -> None:
    """Curly quotes, dash and euro written as windows-1252 bytes in a Latin-1 feed read as such."""
    body = "<?xml version='1.0' encoding='iso-8859-1'?><rss version='2.0'><channel><title>T</title><item>"
    body += "<title>“Quoted” – café €5</title><link>https://e.org/1</link></item></channel></rss>"
    [item] = parse_feed(body.encode("windows-1252"), BASE)
    assert item.title == "“Quoted” – café €5" and not feedparser_calls


def test_utf8_read_as_latin1_is_repaired() -> None:
    """UTF-8 bytes spelled as Latin-1 character references ("CafÃ©") read as the UTF-8 text."""
    [item] = parse_feed(rss("<item><title>Caf&#195;&#169; &#226;&#128;&#166;</title></item>"), BASE)
    assert item.title == "Café …"


def test_script_in_content_encoded_does_not_leak() -> None:
    """A content-only item's summary is its content's text: script source is not in it."""
    body = rss_ns(
        "<item><title>t</title><content:encoded><![CDATA[<p>Body text</p><script>alert('x')</script>"
        "<style>p{color:red}</style><p>More</p>]]></content:encoded></item>"
    )
    [item] = parse_feed(body, BASE)
    assert item.summary == "Body text More"


def test_content_only_summary_is_not_cut_at_512_characters() -> None:
    """A long content-only item gives a summary of up to 1000 characters, not a 512-character stub."""
    words = " ".join(f"word{i}" for i in range(400))
    [item] = parse_feed(
        rss_ns(f"<item><title>t</title><content:encoded>&lt;p&gt;{words}&lt;/p&gt;</content:encoded></item>"),
        BASE,
    )
    assert 900 < len(item.summary) <= 1000 and words.startswith(item.summary[:-1])


def test_description_only_items_are_kept_titled_with_their_summary() -> None:
    """RSS items with only a description are kept, titled with its text cut on a word at 200 characters."""
    long = " ".join(f"word{i}" for i in range(100))
    body = rss(
        "<item><description>Quake hits &lt;b&gt;north&lt;/b&gt; coast</description></item>"
        f"<item><description>{long}</description><guid isPermaLink='false'>urn:2</guid></item>"
    )
    short, cut = parse_feed(body, BASE)
    assert (short.title, short.summary, short.link) == ("Quake hits north coast",) * 2 + (None,)
    assert short.id == "sha1:" + hashlib.sha1(b"Quake hits north coast").hexdigest()
    assert cut.id == "urn:2" and len(cut.title) <= SUMMARY_TITLE_LIMIT and cut.title.endswith("…")
    assert long.startswith(cut.title[:-1]) and long[len(cut.title) - 1] == " "


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (rss("<item><title>Don&rsquo;t</title></item>"), "undeclared entity"),
        (rss("<item><title>a</title><link>https://e.org/?a=1&b=2</link></item>"), "ill-formed"),
        (rss("<item><title>a</title></item>").replace(b"</channel>", b""), "ill-formed"),
        (
            b"<!DOCTYPE rss [<!ENTITY c 'x'>]>" + rss("<item><title>&c;</title></item>").split(b"?>", 1)[1],
            "DTD",
        ),
        (rss_ns("<item><media:title>m</media:title><title>t</title></item>"), "namespaced title"),
        (
            rss_ns("<item><atom:link rel='self' href='https://e.org/'/><link>https://e.org/1</link></item>"),
            "namespaced link",
        ),
        (
            atom(
                '<entry><title type="xhtml"><div xmlns="http://www.w3.org/1999/xhtml">t</div></title></entry>'
            ),
            "xhtml",
        ),
        (atom('<entry><link href="a/b"/></entry>', ' xml:base="https://e.org/"'), "xml:base"),
        (
            b'<feed version="0.3" xmlns="http://purl.org/atom/ns#"><entry><title>t</title></entry></feed>',
            "Atom 0.3",
        ),
    ],
)
def test_hazards_are_detected(body: bytes, reason: str) -> None:
    """Each document the fast path would misread is flagged, with a reason naming why."""
    assert reason in (fast_path_hazard(body) or "")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (
            rss(
                "<item><title>Caf&#233; &amp; <![CDATA[Don&rsquo;t &nbsp;]]></title><link>https://e.org/?a=1&amp;b=2</link></item>"
            ),
            None,
        ),
        (
            rss_ns(
                "<item><title>t</title><media:content url='x'><media:title>m</media:title>"
                "</media:content></item>"
            ),
            None,
        ),
        (
            rss_ns(
                "<item><title>t</title><link>https://e.org/1</link><atom:link rel='standout' href='https://e.org/2'/></item>"
            ),
            None,
        ),
        (
            atom(
                '<entry><title>t</title><link href="https://e.org/a"/></entry>', ' xml:base="https://e.org/"'
            ),
            None,
        ),
        (rss("<item><title>Líbano</title></item>"), "text/xml; charset=iso-8859-1"),
    ],
)
def test_clean_documents_are_not_flagged(body: bytes, content_type: str | None) -> None:
    """Entities in CDATA, nested media:title, a later atom:link, unused xml:base, a server default: safe."""
    assert fast_path_hazard(body, content_type) is None


def test_an_undeclared_legacy_encoding_is_detected_not_read_as_latin() -> None:
    """Hebrew in windows-1255 with no declaration anywhere reads as Hebrew, not as Latin mojibake."""
    text = "הפגנה גדולה בתל אביב נגד הממשלה. המשטרה עצרה עשרות מפגינים ליד הכנסת בירושלים."
    body = f"<rss><channel><item><title>{text}</title><link>https://news.test/1</link></item></channel></rss>"
    [item] = parse_feed(body.encode("windows-1255"), "https://news.test/")
    assert item.title == text
