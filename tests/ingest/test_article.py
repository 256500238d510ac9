"""Tests of alerts.ingest.article: the Lavrov article page's JSON block, meta tags and their precedence."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alerts.errors import FeedParseError
from alerts.ingest.article import ArticleMeta, parse_article

FIXTURES = Path(__file__).parents[1] / "fixtures"
URL = "https://english.almayadeen.net/news/politics/lavrov-calls-on-palestinian-movements-to-re-unite"
BLOCK = re.compile(rb'(<script id="tawsiyat-metadata" type="text/tawsiyat">)(.*?)(</script>)', re.DOTALL)
KEYWORDS = (
    "genocide in Gaza",
    "Sergey Lavrov",
    "war on Gaza",
    "Palestine",
    "Russia",
    "Israel",
    "ceasefire",
    "Palestinian Liberation Organization",
    "PLO",
)
EXPECTED = ArticleMeta(
    url=URL,
    title="Lavrov calls on Palestinian movements to re-unite",
    description="Russia has consistently encouraged Palestinian movements to unite under the platform of the "
    "Palestine Liberation Organization (PLO) and cautions them about the risks associated with division.",
    author="Al Mayadeen English",
    published=datetime(2024, 1, 24, 22, 1, tzinfo=UTC),
    updated=datetime(2024, 1, 24, 22, 14, 37, tzinfo=UTC),
    category="Politics",
    keywords=KEYWORDS,
    lang="en",
    region="Palestine",
)


def article() -> bytes:
    """The article page fixture."""
    return (FIXTURES / "almayadeen_article.html").read_bytes()


def metadata() -> dict[str, Any]:
    """The fixture's tawsiyat-metadata block as a dict."""
    match = BLOCK.search(article())
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(2))
    return data


def with_block(raw: bytes | None) -> bytes:
    """The fixture with its JSON block's content replaced by ``raw`` (None removes the block)."""
    if raw is None:
        return BLOCK.sub(b"", article())
    return BLOCK.sub(lambda m: m.group(1) + raw + m.group(3), article())


def test_article_fixture_gives_every_field() -> None:
    """The Lavrov page gives url, title, description, author, times, category, keywords, lang and region."""
    assert parse_article(article(), URL) == EXPECTED


def test_json_block_wins_over_meta_tags() -> None:
    """Where the JSON block and the meta tags disagree, the JSON block's values are taken."""
    data = metadata() | {
        "title": "Lavrov urges Palestinian unity",
        "published_time": "2024-01-24T20:00:00+02:00",
        "author": "Agencies",
        "keywords": "Lavrov, PLO",
        "lang": "en-GB",
        "url": "/news/politics/lavrov-urges-palestinian-unity",
        "classes": [{"mapping": "category", "value": "Analysis"}, {"mapping": "region", "value": "MENA"}],
    }
    meta = parse_article(with_block(json.dumps(data).encode()), URL)
    assert meta.title == "Lavrov urges Palestinian unity"
    assert meta.published == datetime(2024, 1, 24, 18, 0, tzinfo=UTC)
    assert (meta.author, meta.keywords, meta.lang) == ("Agencies", ("Lavrov", "PLO"), "en")
    assert meta.url == "https://english.almayadeen.net/news/politics/lavrov-urges-palestinian-unity"
    assert (meta.category, meta.region) == ("Analysis", "MENA")


def test_meta_tags_when_there_is_no_json_block() -> None:
    """Without the block, the same fields come from og:*, article:*, keywords, author and <html lang>."""
    meta = parse_article(with_block(None), URL)
    assert meta == EXPECTED


def test_malformed_json_falls_back_to_meta_tags_without_raising() -> None:
    """A truncated or non-object JSON block is ignored; the meta tags still give every field."""
    truncated = json.dumps(metadata())[:-40].encode()
    assert parse_article(with_block(truncated), URL) == EXPECTED
    assert parse_article(with_block(b'["not", "an", "object"]'), URL) == EXPECTED
    assert parse_article(with_block(b""), URL) == EXPECTED


def test_meta_fallback_values_are_the_meta_tags() -> None:
    """Meta-tag values differing from the block show up once the block is gone."""
    body = with_block(None).replace(b'content="Politics"', b'content="World"')
    body = body.replace(b"2024-01-24T22:01:00+00:00", b"2024-01-24T21:00:00+00:00")
    meta = parse_article(body, URL)
    assert (meta.category, meta.published) == ("World", datetime(2024, 1, 24, 21, 0, tzinfo=UTC))


def test_json_fields_only_fill_what_they_have() -> None:
    """A block with a title only keeps the meta tags for every other field."""
    meta = parse_article(with_block(b'{"title": "Only a title", "classes": "nonsense"}'), URL)
    assert meta.title == "Only a title"
    assert (meta.author, meta.category, meta.keywords) == (EXPECTED.author, "Politics", KEYWORDS)


def test_region_from_a_class_beats_one_from_keywords() -> None:
    """A "region" class wins over other classes, any class over keywords; keywords alone can name one."""
    data = metadata()
    data["classes"] = [
        {"mapping": "coverage", "value": "MENA"},
        {"mapping": "region", "value": "us & canada"},
    ]
    assert parse_article(with_block(json.dumps(data).encode()), URL).region == "US & Canada"
    data["classes"] = [{"mapping": "coverage", "value": "MENA"}]
    assert parse_article(with_block(json.dumps(data).encode()), URL).region == "MENA"
    data["classes"] = []
    assert parse_article(with_block(json.dumps(data).encode()), URL).region == "Palestine"
    data["keywords"] = "Russia, Lavrov"
    assert parse_article(with_block(json.dumps(data).encode()), URL).region is None


def test_arabic_article_with_arabic_commas_and_lists() -> None:
    """Keywords split on "،" too, an author list is joined, lang comes from the block."""
    page = (
        '<html lang="ar"><head><script id="tawsiyat-metadata" type="text/tawsiyat">'
        '{"title": "لافروف يدعو إلى الوحدة الفلسطينية", "keywords": "غزة، فلسطين، روسيا",'
        ' "author": [{"name": "الميادين"}, "وكالات"], "lang": "ar", "published_time": 1706133660}'
        "</script></head><body></body></html>"
    ).encode()
    meta = parse_article(page, "https://www.almayadeen.net/news/politics/1")
    assert meta.keywords == ("غزة", "فلسطين", "روسيا")
    assert (meta.author, meta.lang, meta.region) == ("الميادين, وكالات", "ar", None)
    assert meta.published == datetime(2024, 1, 24, 22, 1, tzinfo=UTC)
    assert meta.url == "https://www.almayadeen.net/news/politics/1"


def test_page_without_metadata_gives_empty_fields() -> None:
    """A page with neither block nor meta tags gives its <title>, its URL and nothing else."""
    meta = parse_article(b"<html><head><title> Hello </title></head></html>", "https://example.test/a")
    assert meta == ArticleMeta(
        url="https://example.test/a",
        title="Hello",
        description=None,
        author=None,
        published=None,
        updated=None,
        category=None,
        keywords=(),
        lang=None,
        region=None,
    )


def test_empty_body_raises_feed_parse_error() -> None:
    """Only an empty body is an error."""
    with pytest.raises(FeedParseError, match="empty body"):
        parse_article(b"", URL)
