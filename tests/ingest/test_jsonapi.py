"""Tests of alerts.ingest.jsonapi: a nested news API fixture, WordPress-style bodies, and mapping errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from alerts.errors import FeedParseError
from alerts.ingest.jsonapi import JsonMapping, parse_json_api
from alerts.ingest.markup import text_id

FIXTURES = Path(__file__).parents[1] / "fixtures"
BASE = "https://english.almayadeen.net/api/v1/latest"
SITE = "https://english.almayadeen.net/news/politics/"
MAPPING = JsonMapping.parse(
    {
        "items": "data.articles",
        "title": "headline",
        "link": "links.web",
        "time": "published_ms || published",
        "summary": "teaser",
        "id": "uid",
        "categories": "tags[].name",
    }
)


def api() -> bytes:
    """The news API fixture."""
    return (FIXTURES / "news_api.json").read_bytes()


def test_nested_mapping_gives_items_in_order() -> None:
    """Entries with a title become items, in order; the empty title and the repeated uid are dropped."""
    items = parse_json_api(api(), BASE, MAPPING)
    assert [item.id for item in items] == ["9001", "9002", "9003", "9005", items[4].id]
    assert [item.title for item in items] == [
        "Lavrov calls on Palestinian movements to re-unite",
        "Drone infiltration sirens sound north of the Gulf of Aqaba",
        "Channel 12: Airspace closed at Ramon Airport due to fears of drone infiltration",
        "Lebanese Ministry of Health: One person was killed in an Israeli airstrike on a car in the town of "
        "Burj Qalawieh, south Lebanon.",
        "IOF Spokesperson: Sirens sounded over an aircraft infiltration in the Bir Ora area, and details are "
        "being examined",
    ]


def test_links_resolve_against_the_base_url() -> None:
    """Relative links become absolute; a missing link is None."""
    links = [item.link for item in parse_json_api(api(), BASE, MAPPING)]
    assert links == [
        SITE + "lavrov-calls-on-palestinian-movements-to-re-unite",
        None,
        SITE + "channel-12-airspace-closed-at-ramon-airport",
        SITE + "lebanese-ministry-of-health-one-person-killed",
        None,
    ]


def test_times_from_epoch_ms_iso_rfc2822_and_epoch_seconds() -> None:
    """Epoch milliseconds, ISO 8601 with an offset, RFC 2822 and epoch seconds become UTC; junk is None."""
    published = [item.published for item in parse_json_api(api(), BASE, MAPPING)]
    assert published == [
        datetime(2024, 1, 24, 22, 1, tzinfo=UTC),
        datetime(2024, 1, 24, 19, 30, tzinfo=UTC),
        datetime(2024, 1, 24, 20, 5, tzinfo=UTC),
        datetime(2024, 1, 24, 21, 20, tzinfo=UTC),
        None,
    ]


def test_summaries_are_plain_text_and_categories_deduplicated() -> None:
    """HTML in summaries is reduced to text with entities decoded; category lists lose repeats."""
    items = parse_json_api(api(), BASE, MAPPING)
    assert items[0].summary == (
        "Russia has consistently encouraged Palestinian movements to unite under the platform of the PLO "
        "& cautions them about division."
    )
    assert items[3].summary == "Burj Qalawieh – south Lebanon"
    assert [item.categories for item in items] == [("Palestine", "Russia"), (), ("MENA",), (), ()]


def test_without_id_or_link_the_id_is_the_ticker_text_id() -> None:
    """An entry with neither id nor link gets the same text id as the same line on an HTML ticker."""
    mapping = JsonMapping(items="data.articles", title="headline")
    items = parse_json_api(api(), BASE, mapping)
    assert items[1].id == text_id("Drone infiltration sirens sound north of the Gulf of Aqaba")
    assert all(item.id.startswith("text:") for item in items)


def test_wordpress_style_rendered_titles_and_top_level_list() -> None:
    """A top-level list ("@"), nested title.rendered with entities, and dates without a zone (UTC)."""
    body = (
        b'[{"id": 7, "date_gmt": "2024-01-24T22:01:00", "link": "https://example.test/?p=7",'
        b' "title": {"rendered": "Gaza&#8217;s hospitals <em>under siege</em>"}}]'
    )
    mapping = JsonMapping.parse({"items": "@", "title": "title.rendered", "link": "link", "time": "date_gmt"})
    (item,) = parse_json_api(body, "https://example.test/wp-json/wp/v2/posts", mapping)
    assert (item.title, item.id, item.link) == (
        "Gaza’s hospitals under siege",
        item.link,
        "https://example.test/?p=7",
    )
    assert item.published == datetime(2024, 1, 24, 22, 1, tzinfo=UTC)


def test_function_that_rejects_its_input_gives_a_missing_field() -> None:
    """A JMESPath type error on one entry leaves that field empty instead of failing the document."""
    mapping = JsonMapping(items="rows", title="t", summary="join(', ', tags)")
    body = b'{"rows": [{"t": "a", "tags": ["x", "y"]}, {"t": "b", "tags": [1, 2]}]}'
    assert [item.summary for item in parse_json_api(body, BASE, mapping)] == ["x, y", ""]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty body"),
        (b"<html>not json</html>", "not JSON"),
        (b'{"data": {"articles": {"uid": 1}}}', "items 'data.articles' gave an object, not a list"),
        (b'{"data": {}}', "items 'data.articles' gave nothing, not a list"),
        (b'{"data": {"articles": "none"}}', "gave a string, not a list"),
    ],
)
def test_bad_documents_raise_feed_parse_error(body: bytes, message: str) -> None:
    """Invalid JSON, or an items expression that gives no list, is a parse error."""
    with pytest.raises(FeedParseError, match=message):
        parse_json_api(body, BASE, MAPPING)


def test_well_formed_document_with_an_empty_list_gives_no_items() -> None:
    """An empty items list is a quiet source, not an error."""
    assert parse_json_api(b'{"data": {"articles": []}}', BASE, MAPPING) == []


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"title": "headline"}, "'items' is required"),
        ({"items": "data.articles"}, "'title' is required"),
        ({"items": "data.articles", "title": "headline", "url": "link"}, "unknown json mapping key(s) url"),
        ({"items": "data.articles[", "title": "headline"}, "json mapping 'items': invalid JMESPath"),
        (
            {"items": "rows", "title": "headline", "time": "to_number("},
            "json mapping 'time': invalid JMESPath",
        ),
        (
            {"items": "rows", "title": "headline", "id": "nope(uid)"},
            "'id': invalid JMESPath 'nope(uid)': unknown",
        ),
        ({"items": "rows", "title": "join(', ')"}, "join() takes 2 argument(s), got 1"),
        ({"items": "rows", "title": "a || upper(b)"}, "unknown function upper()"),
        (
            {"items": "rows", "title": "headline", "link": 3},
            "json mapping 'link': expected a JMESPath string",
        ),
    ],
)
def test_invalid_mappings_raise_value_error_naming_the_field(mapping: dict[str, str], message: str) -> None:
    """JsonMapping.parse compiles every expression and names the field that is wrong."""
    with pytest.raises(ValueError) as caught:
        JsonMapping.parse(mapping)
    assert message in str(caught.value)


def test_direct_construction_is_validated_too() -> None:
    """Building a JsonMapping in code compiles its expressions as well."""
    with pytest.raises(ValueError, match="json mapping 'summary'"):
        JsonMapping(items="rows", title="t", summary="a..b")
