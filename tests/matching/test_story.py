"""Tests of alerts.matching.story: canonical links, headline keys and the keys that identify a story."""

from __future__ import annotations

import pytest

from alerts.matching.story import MIN_HEADLINE_WORDS, canonical_link, headline_key, story_keys
from alerts.models import FeedItem


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://www.example.com/news/a?utm_source=rss&id=5&utm_medium=feed#top", "example.com/news/a?id=5"),
        ("http://example.com/news/a?at_medium=RSS&at_campaign=x&id=5", "example.com/news/a?id=5"),
        ("https://example.com/news/a?fbclid=IwAR0abc&traffic_source=rss", "example.com/news/a"),
        ("https://example.com/news/a?UTM_Source=x&id=5", "example.com/news/a?id=5"),
        ("https://www.example.com/news/a#comments", "example.com/news/a"),
        ("https://example.com/news/a/", "example.com/news/a"),
        ("https://example.com", "example.com/"),
        ("https://example.com/?utm_source=a", "example.com/"),
        ("https://EXAMPLE.com/News/A", "example.com/News/A"),
    ],
)
def test_canonical_link(link: str, expected: str) -> None:
    """Tracking parameters, fragment, scheme, `www.` and a trailing slash are dropped."""
    assert canonical_link(link) == expected


def test_canonical_link_sorts_meaningful_params() -> None:
    """Meaningful parameters are kept and sorted, so their order does not matter."""
    first = canonical_link("https://example.com/story?page=2&id=5&utm_campaign=x")
    second = canonical_link("http://www.example.com/story?id=5&fbclid=abc&page=2#frag")
    assert first == second == "example.com/story?id=5&page=2"


def test_canonical_link_keeps_distinct_stories_apart() -> None:
    """Different meaningful parameter values, paths or hosts stay different."""
    links = [
        "https://example.com/story?id=5",
        "https://example.com/story?id=6",
        "https://example.com/other?id=5",
        "https://example.org/story?id=5",
        "https://news.example.com/story?id=5",
    ]
    assert len({canonical_link(link) for link in links}) == len(links)


def test_canonical_link_only_strips_a_leading_www() -> None:
    """`www.` is removed only as the first label of the host."""
    assert canonical_link("https://wwwexample.com/a") == "wwwexample.com/a"
    assert canonical_link("https://news.www.example.com/a") == "news.www.example.com/a"


def test_canonical_link_tolerates_unparseable_link() -> None:
    """A link urlsplit cannot parse falls back to a key instead of raising."""
    assert canonical_link("https://[example.com/story")


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Israel strikes Gaza", "israel strikes gaza"),
        ("ISRAËL strikes, Gaza!", "israel strikes gaza"),
        ("  Quake  hits   Türkiye  ", "quake hits turkiye"),
        ("Gaza's hospitals overwhelmed", "gaza hospitals overwhelmed"),
        ("قصف على غزّة", "قصف علي غزه"),
    ],
)
def test_headline_key_normalises(title: str, expected: str) -> None:
    """Case, accents, punctuation and spacing do not change the headline key."""
    assert headline_key(title) == expected


@pytest.mark.parametrize("title", ["", "Live updates", "Breaking!", "— : —", "Live - updates!!"])
def test_headline_key_refuses_short_headlines(title: str) -> None:
    """Headlines under three words are too generic to identify a story."""
    assert MIN_HEADLINE_WORDS == 3
    assert headline_key(title) is None


def test_story_keys_with_link_and_title() -> None:
    """An item with a link and a long enough title has a link key then a headline key."""
    item = FeedItem(id="g1", title="Quake hits Türkiye", link="https://www.example.com/q?utm_source=x")
    assert story_keys(item) == ("link:example.com/q", "headline:quake hits turkiye")


def test_story_keys_link_only() -> None:
    """A short title contributes no key, leaving only the link."""
    item = FeedItem(id="g1", title="Live updates", link="https://example.com/live#now")
    assert story_keys(item) == ("link:example.com/live",)


def test_story_keys_title_only() -> None:
    """Without a link the headline is the only key."""
    item = FeedItem(id="g1", title="Quake hits Türkiye")
    assert story_keys(item) == ("headline:quake hits turkiye",)


def test_story_keys_fall_back_to_id() -> None:
    """With neither link nor usable title, the item id identifies the story."""
    assert story_keys(FeedItem(id="urn:x:1", title="Update")) == ("id:urn:x:1",)
    assert story_keys(FeedItem(id="urn:x:2", title="")) == ("id:urn:x:2",)


def test_same_story_from_two_feeds_shares_a_key() -> None:
    """Two feeds' copies of a story (tracking params, case, accents differ) share keys."""
    one = FeedItem(id="a", title="Quake hits Türkiye", link="https://www.example.com/q?utm_source=a")
    two = FeedItem(id="b", title="QUAKE hits Turkiye!", link="http://example.com/q?fbclid=z#x")
    assert set(story_keys(one)) == set(story_keys(two))


def test_canonical_link_keeps_non_default_ports() -> None:
    """A non-default port is part of the story's identity; default ports are not."""
    assert canonical_link("https://example.com:8080/x") == "example.com:8080/x"
    assert canonical_link("https://example.com:443/x") == canonical_link("http://example.com/x")
