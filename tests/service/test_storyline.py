"""Story assignment on a real Redis: reports of one event from several feeds and languages join one
story, with its sources; a revised toll is an update for the story's recipients, at most once per
ALERTS_STORY_UPDATE_EVERY; two events in one town stay two stories; `alerts stories` lists them."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

from alerts.matching.geo import Geotagger, RegionTaxonomy
from alerts.matching.stories.compare import StoryPolicy
from alerts.models import Feed, FeedItem
from alerts.service.storyline import Placement, Storyline
from alerts.state.store import Store

NOW = 1_800_000_000.0


@pytest.fixture(scope="module")
def geotagger() -> Geotagger:
    return Geotagger(RegionTaxonomy.load())


@pytest.fixture
def storyline(store: Store, geotagger: Geotagger) -> Storyline:
    return Storyline(geotagger, StoryPolicy(), store.stories, ttl=48 * 3600)


def _place(storyline: Storyline, feed: str, titles: Sequence[str], now: float = NOW) -> list[Placement]:
    items = [
        FeedItem(id=f"{feed}:{title}", title=title, link=f"https://{feed}.test/{abs(hash(title))}")
        for title in titles
    ]
    return storyline.place(Feed(name=feed, url=f"https://{feed}.test/rss"), items, now)


def test_one_event_from_four_feeds_in_two_languages_is_one_story_with_four_sources(
    storyline: Storyline,
) -> None:
    (first,) = _place(
        storyline,
        "almayadeen",
        ["Al Mayadeen's correspondent in Gaza: Israeli airstrike kills 8 in Khan Younis"],
    )
    (second,) = _place(
        storyline,
        "reuters",
        ["Israeli strike kills eight in Khan Younis, Gaza health ministry says"],
        NOW + 60,
    )
    (third,) = _place(storyline, "ap", ["Eight killed as Israeli airstrike hits Khan Younis"], NOW + 120)
    (arabic,) = _place(
        storyline, "almayadeen_ar", ["مراسل الميادين: 8 شهداء في غارة إسرائيلية على خان يونس"], NOW + 180
    )
    assert first.opened and not (second.opened or third.opened or arabic.opened)
    assert {second.story, third.story, arabic.story} == {first.story}
    assert arabic.sources == ("almayadeen", "reuters", "ap", "almayadeen_ar")
    assert not (second.update or third.update or arabic.update)


def test_a_revised_toll_is_one_update_for_the_recipients_then_held_for_update_every(
    storyline: Storyline, store: Store
) -> None:
    (first,) = _place(storyline, "wire", ["Israeli strike kills 8 in Khan Younis"])
    store.stories.add_recipients([(first.story, "desk"), (first.story, "night")], ttl=3600)
    (revised,) = _place(
        storyline, "bbc", ["Death toll from Israeli strike on Khan Younis rises to 12"], NOW + 600
    )
    assert revised.story == first.story
    assert (revised.update, revised.changes, revised.recipients) == (
        1,
        ("toll 12 (was 8)",),
        ("desk", "night"),
    )
    (again,) = _place(storyline, "ap", ["Toll from Israeli strike on Khan Younis rises to 12"], NOW + 660)
    assert again.story == first.story and again.update == 0, "the same fact is known now"
    (soon,) = _place(storyline, "afp", ["Israeli strike on Khan Younis: toll rises to 15"], NOW + 700)
    assert soon.story == first.story and soon.update == 0, "within ALERTS_STORY_UPDATE_EVERY of the last"
    (later,) = _place(storyline, "afp", ["Israeli strike on Khan Younis: toll rises to 15"], NOW + 1300)
    assert (later.update, later.changes) == (2, ("toll 15 (was 12)",))


def test_two_events_in_one_town_and_a_report_in_one_poll_stay_apart(storyline: Storyline) -> None:
    car, motorcycle = _place(
        storyline,
        "wire",
        [
            "Israeli drone strike on a car in Tyre kills 2",
            "Israeli drone strikes a motorcycle near Tyre, 1 killed",
        ],
    )
    assert car.opened and motorcycle.opened and car.story != motorcycle.story


def test_two_reports_of_one_event_in_one_poll_join_each_other(storyline: Storyline) -> None:
    first, second = _place(
        storyline,
        "live",
        ["Israeli strike kills 8 in Khan Younis", "Eight killed as Israeli airstrike hits Khan Younis"],
    )
    assert first.opened and not second.opened and second.story == first.story


def test_recent_lists_stories_with_sources_updates_and_recipients(storyline: Storyline, store: Store) -> None:
    (first,) = _place(storyline, "wire", ["Israeli strike kills 8 in Khan Younis"])
    store.stories.add_recipients([(first.story, "desk")], ttl=3600)
    _place(storyline, "bbc", ["Death toll from Israeli strike on Khan Younis rises to 12"], NOW + 600)
    (story,) = store.stories.recent(since=0)
    assert (story.story, story.sources, story.updates, story.recipients) == (
        first.story,
        ("wire", "bbc"),
        1,
        ("desk",),
    )
    assert story.title == "Israeli strike kills 8 in Khan Younis"


def test_explain_names_the_story_a_headline_would_join_and_files_nothing(
    storyline: Storyline, store: Store
) -> None:
    (first,) = _place(storyline, "wire", ["Israeli strike kills 8 in Khan Younis"])
    feed = Feed(name="bbc", url="https://bbc.test/rss")
    report, match = storyline.explain(
        feed, FeedItem(id="x", title="Toll from Israeli strike on Khan Younis rises to 12"), NOW + 60
    )
    assert match is not None and match.story == first.story
    assert match.changes == ("toll 12 (was 8)",) and "p:Khan Younis" in match.verdict.shared
    assert "Khan Younis" in report.places
    assert store.stories.sources(first.story) == ("wire",), "explaining files nothing"


class _LookThenLetOtherFile:
    """StoryState as one worker sees it when another files a report of the same event between its
    lookup and its filing (the same instant, on another machine)."""

    def __init__(self, state: object, other: Callable[[], object]) -> None:
        self._state = state
        self._other = other

    def candidates(self, *args: object) -> object:
        found = self._state.candidates(*args)  # type: ignore[attr-defined]
        self._other()
        return found

    def __getattr__(self, name: str) -> object:
        return getattr(self._state, name)


def test_two_workers_opening_one_event_at_the_same_instant_make_one_story(
    store: Store, geotagger: Geotagger
) -> None:
    """Both look and find nothing; the second to file sees the first's story and joins it."""
    first = Storyline(geotagger, StoryPolicy(), store.stories, ttl=3600)
    placed: list[Placement] = []
    racing = _LookThenLetOtherFile(
        store.stories,
        lambda: placed.extend(_place(first, "reuters", ["Israeli strike kills 8 in Khan Younis"])),
    )
    second = Storyline(geotagger, StoryPolicy(), racing, ttl=3600)  # type: ignore[arg-type]
    (late,) = _place(second, "ap", ["Eight killed as Israeli airstrike hits Khan Younis"])
    (early,) = placed
    assert early.opened and not late.opened and late.story == early.story
    assert late.sources == ("reuters", "ap")
