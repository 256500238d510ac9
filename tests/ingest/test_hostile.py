"""Untrusted content stays untrusted: hostile documents against every source kind (issue 12).

Titles and summaries are capped, controls and bidi embeddings removed, for every kind of source
(RSS, Atom, JSON Feed, HTML, JSON API) through :func:`alerts.ingest.sources.parse_source`; XML that
declares entities (billion laughs, external entities) is refused before any parser sees it, and the
poll records and logs the refusal. The documents are built here or read from the shared corpus.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from alerts.config.settings import Settings
from alerts.errors import FeedParseError, FeedRejected
from alerts.ingest.article import ArticleMeta
from alerts.ingest.enrich import merge
from alerts.ingest.feeds import EntitiesRefused, parse_feed
from alerts.ingest.markup import CATEGORY_LIMIT, MAX_CATEGORIES, SUMMARY_LIMIT, TITLE_LIMIT, feed_item
from alerts.ingest.sources import parse_source
from alerts.models import Feed, FeedItem
from alerts.service import pipeline
from alerts.service.runtime import Runtime
from tests.harness.configs import write_config
from tests.harness.servers import FeedServer

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
FEEDS = SHARED / "feeds"
SUITE = SHARED / "feedparser-tests"
needs_shared = pytest.mark.skipif(not FEEDS.is_dir() or not SUITE.is_dir(), reason=f"no corpus at {SHARED}")
BASE = "https://example.test/news/"
LINK = "https://example.test/a"
HUGE = "breaking " * 33_334  # 300,006 characters of words
BIDI = "Safe\u202e txt.exe\u202c and \u2066isolated\u2069 \u202aembedded\u202c \u202boverride\u202d"
BIDI += "\u2067x\u2068y"
BIDI_CLEAN = "Safe txt.exe and isolated embedded overridexy"
ARABIC = "\u200fعاجل: غارة إسرائيلية على غزة\u200e (AP) \u061c١٢"
SPANISH = "Última hora: sismo de magnitud 7,1 sacude el sur de México; «no hay víctimas»"
KINDS = ("rss", "atom", "jsonfeed", "html", "json")


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;")


def document(kind: str, title: str, summary: str = "", link: str = LINK) -> tuple[Feed, bytes]:
    """A one-item document of ``kind`` and the feed that reads it."""
    if kind == "rss":
        body = (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>T</title>'
            f"<item><title>{_xml(title)}</title><link>{_xml(link)}</link>"
            f"<description>{_xml(summary)}</description></item></channel></rss>"
        )
        return Feed("wire", BASE), body.encode()
    if kind == "atom":
        body = (
            '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title>'
            f'<entry><title>{_xml(title)}</title><link href="{_xml(link)}"/><id>urn:1</id>'
            f"<summary>{_xml(summary)}</summary></entry></feed>"
        )
        return Feed("wire", BASE), body.encode()
    if kind == "jsonfeed":
        item = {"id": "1", "title": title, "url": link, "summary": summary}
        doc = {"version": "https://jsonfeed.org/version/1.1", "title": "T", "items": [item]}
        return Feed("wire", BASE), json.dumps(doc).encode()
    if kind == "html":
        page = f'<ul><li class="i"><a href="{_xml(link)}">{_xml(title)}</a><p>{_xml(summary)}</p></li></ul>'
        selectors = (("item", "li.i"), ("title", "a"), ("link", "a"), ("summary", "p"))
        return Feed("page", BASE, format="html", selectors=selectors), page.encode()
    mapping = (("items", "data"), ("title", "headline"), ("link", "url"), ("summary", "teaser"))
    body = json.dumps({"data": [{"headline": title, "url": link, "teaser": summary}]})
    return Feed("api", BASE, format="json", json_map=mapping), body.encode()


def one(kind: str, title: str, summary: str = "", link: str = LINK) -> FeedItem:
    feed, body = document(kind, title, summary, link)
    items = parse_source(feed, body, feed.url, None)
    assert len(items) == 1, items
    return items[0]


# -- capped titles and summaries ----------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_300000_character_title_is_capped_on_a_word(kind: str) -> None:
    """Whatever the source kind, a 300,000-character title ends at TITLE_LIMIT, on a word, with '…'."""
    item = one(kind, HUGE, HUGE)
    assert len(item.title) <= TITLE_LIMIT and item.title.endswith("breaking…")
    assert len(item.summary) <= SUMMARY_LIMIT and item.summary.endswith("…")
    assert HUGE.startswith(item.title[:-1])


@pytest.mark.parametrize("kind", KINDS)
def test_a_title_of_one_endless_word_is_cut_too(kind: str) -> None:
    """A title without spaces is cut at the limit."""
    item = one(kind, "x" * 300_000)
    assert item.title == "x" * (TITLE_LIMIT - 1) + "…"


def test_categories_are_capped_in_length_and_number() -> None:
    """Each category is cut at CATEGORY_LIMIT characters; no more than MAX_CATEGORIES are kept."""
    categories = "".join(f"<category>tag{n}</category>" for n in range(3 * MAX_CATEGORIES))
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>t</title>'
        f"<link>https://example.test/a</link><category>{'long ' * 10_000}</category>{categories}"
        "</item></channel></rss>"
    ).encode()
    (item,) = parse_feed(body, BASE)
    assert len(item.categories) == MAX_CATEGORIES
    assert len(item.categories[0]) <= CATEGORY_LIMIT and item.categories[0].endswith("…")
    assert item.categories[1:3] == ("tag0", "tag1")


# -- controls and bidi embeddings --------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_bidi_embeddings_overrides_and_isolates_are_removed(kind: str) -> None:
    """U+202A-U+202E and U+2066-U+2069 leave titles and summaries of every kind."""
    item = one(kind, BIDI, f"{BIDI} \u202edone")
    assert item.title == BIDI_CLEAN
    assert item.summary == f"{BIDI_CLEAN} done"


@pytest.mark.parametrize("kind", ["jsonfeed", "html", "json"])
def test_c0_and_c1_controls_are_removed(kind: str) -> None:
    """C0 controls (but whitespace, collapsed) and C1 controls leave the text (XML cannot carry C0).

    Feed text reads the C1 controls windows-1252 defines as its characters (misdecoded quotes and
    dashes); the five it leaves undefined are used here, which every kind removes."""
    item = one(kind, "Alert\x07\x1b[31m red\x81\x9d\tnow\n", "a\x00b\x1fc\x8fd")
    assert item.title == "Alert[31m red now"
    assert item.summary == "ab cd"


def test_undefined_c1_characters_leave_xml_text() -> None:
    """In RSS and Atom, C1 controls windows-1252 leaves undefined are removed (the others are its text)."""
    for kind in ("rss", "atom"):
        feed, body = document(kind, "one&#x9d;two&#x81; three", "a&#x8f;b")
        (item,) = parse_source(feed, body.replace(b"&amp;#x", b"&#x"), feed.url, None)
        assert (item.title, item.summary) == ("onetwo three", "ab")


@pytest.mark.parametrize("kind", KINDS)
def test_arabic_with_its_marks_and_spanish_are_unchanged(kind: str) -> None:
    """RLM, LRM and the Arabic letter mark stay (Arabic uses them); Spanish is untouched."""
    assert one(kind, ARABIC, SPANISH).title == ARABIC
    assert one(kind, SPANISH, ARABIC).summary == ARABIC


def test_categories_and_links_lose_controls_too() -> None:
    """A category or link with an override character comes out without it."""
    body = (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><item><title>t</title>'
        "<link>https://example.test/a\u202eb</link><category>\u202eevil\u202c</category>"
        "<category>\u200fغزة</category></item></channel></rss>"
    ).encode()
    (item,) = parse_feed(body, BASE)
    assert item.link == "https://example.test/ab"
    assert item.categories == ("evil", "\u200fغزة")


# -- XML entities -----------------------------------------------------------------------------------

LAUGHS = "".join(f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10))
BILLION_LAUGHS = (
    f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY lol0 "lol">{LAUGHS}]>'
    '<rss version="2.0"><channel><title>T</title><item><title>&lol9;</title>'
    "<link>https://example.test/a</link></item></channel></rss>"
)
EXTERNAL = (
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    '<rss version="2.0"><channel><title>T</title><item><title>a &xxe; b</title>'
    "<link>https://example.test/a</link></item></channel></rss>"
)
PARAMETER = (
    '<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>'
    '<rss version="2.0"><channel><title>T</title><item><title>t</title></item></channel></rss>'
)
ATOM_LAUGHS = (
    f'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY lol0 "lol">{LAUGHS}]>'
    '<feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><entry><title>&lol9;</title><id>urn:1</id>'
    '<link href="https://example.test/a"/></entry></feed>'
)
RSS_091 = (
    '<?xml version="1.0" encoding="ISO-8859-1"?>\n'
    '<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN"\n'
    ' "http://my.netscape.com/publish/formats/rss-0.91.dtd">\n'
    '<rss version="0.91"><channel><title>Wire</title><link>https://example.test/</link>'
    "<description>d</description><language>en</language>"
    "<item><title>Quake hits the coast</title><link>https://example.test/q</link></item></channel></rss>"
)


@pytest.mark.parametrize(
    ("body", "name"),
    [
        (BILLION_LAUGHS.encode(), "'lol0'"),
        (EXTERNAL.encode(), "'xxe'"),
        (PARAMETER.encode(), "'remote'"),
        (ATOM_LAUGHS.encode(), "'lol0'"),
        (BILLION_LAUGHS.encode("utf-16"), "'lol0'"),
        (BILLION_LAUGHS.replace('"1.0"?>', '"1.0" encoding="shift_jis"?>').encode(), ""),  # expat lacks it
        (b"\n  junk" + BILLION_LAUGHS.encode(), ""),  # ill-formed before the DOCTYPE
    ],
)
def test_a_document_declaring_entities_is_refused(body: bytes, name: str) -> None:
    """Billion laughs, external and parameter entities: refused with the reason, quickly, never parsed."""
    started = time.monotonic()
    with pytest.raises(EntitiesRefused) as refused:
        parse_source(Feed("wire", BASE), body, BASE, None)
    assert time.monotonic() - started < 1
    assert isinstance(refused.value, FeedRejected) and isinstance(refused.value, FeedParseError)
    reason = str(refused.value)
    assert "declares XML entities (billion laughs / XXE)" in reason and "refused as defusedxml does" in reason
    assert name in reason


def test_a_plain_doctype_still_parses() -> None:
    """RSS 0.91's DOCTYPE, which declares nothing (its DTD is never loaded), is read as before."""
    (item,) = parse_feed(RSS_091.encode("latin-1"), BASE)
    assert (item.title, item.link) == ("Quake hits the coast", "https://example.test/q")


def test_entity_declarations_quoted_in_content_are_no_declarations() -> None:
    """``<!ENTITY`` in an item's CDATA (an article about XXE) is text, with or without a DOCTYPE."""
    item = (
        "<item><title>How XXE works</title><link>https://example.test/x</link>"
        '<description><![CDATA[<p>Write <!ENTITY xxe SYSTEM "file:///etc/passwd"> in a DOCTYPE</p>]]>'
        "</description></item>"
    )
    plain = f'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title>{item}</channel></rss>'
    with_doctype = plain.replace("<rss ", '<!DOCTYPE rss SYSTEM "rss.dtd"><rss ')
    for body in (plain, with_doctype):
        (parsed,) = parse_feed(body.encode(), BASE)
        assert (parsed.title, parsed.summary) == ("How XXE works", "Write in a DOCTYPE")  # as a browser shows


@needs_shared
def test_no_shared_feed_is_refused_and_only_the_suites_entity_documents_are() -> None:
    """The shared corpus parses or fails as before: the only documents refused are the two feedparser
    suite documents that declare entities."""
    refused = []
    for path in sorted([*FEEDS.iterdir(), *SUITE.rglob("*.xml")]):
        if path.suffix not in (".xml", ".json"):
            continue
        try:
            parse_feed(path.read_bytes(), BASE)
        except EntitiesRefused:
            refused.append(path.relative_to(SHARED).as_posix())
        except FeedParseError:
            pass
    assert refused == [
        "feedparser-tests/wellformed/rdf/doctype_contains_entity_decl.xml",
        "feedparser-tests/wellformed/rss/entity_in_doctype.xml",
    ]


def test_a_poll_of_a_billion_laughs_feed_is_rejected_with_the_reason(
    feed_server: FeedServer, config_dir: Path, redis_url: str
) -> None:
    """The poll records the failure (feed health) and logs feed.rejected naming the reason."""
    feed_server.feed("wire").raw = BILLION_LAUGHS.encode()
    write_config(
        config_dir,
        feeds=[{"name": "wire", "url": feed_server.url("wire")}],
        subscribers=[{"name": "desk", "notify": ["json://127.0.0.1:9/unused"]}],
        subscriptions=[{"name": "watch", "subscribers": ["desk"], "keywords": ["lol"]}],
    )
    runtime = Runtime(Settings(config_dir=config_dir, redis_url=redis_url, dedupe_window=3600))
    jobs: list[Any] = []
    with capture_logs() as logs:
        report = pipeline.poll_feed(runtime, "wire", jobs.extend)
    assert report.status == "failed" and "declares XML entities" in (report.error or "")
    assert not [event for event in logs if event["event"] == "feed.failed"]
    (failed,) = [event for event in logs if event["event"] == "feed.rejected"]
    assert failed["error_type"] == "EntitiesRefused" and "billion laughs" in failed["error"]
    assert "declares XML entities" in runtime.store.feeds.get("wire")["last_error"]
    assert jobs == []


def test_what_an_article_page_adds_is_capped_and_cleaned_too() -> None:
    """Enrichment completes an item from its page: that text is held to the readers' rules."""
    item = feed_item(id="x", title="", link="https://example.com/a")
    meta = ArticleMeta(
        url=None,
        title="Page \u202etitle",
        description="word " * 100_000,
        author=None,
        published=None,
        updated=None,
        category=None,
        keywords=tuple(f"k{n}" for n in range(500)),
        lang=None,
        region=None,
    )
    merged = merge(item, meta)
    assert merged.title == "Page title"
    assert len(merged.summary) <= SUMMARY_LIMIT and merged.summary.endswith("…")
    assert len(merged.categories) == MAX_CATEGORIES
