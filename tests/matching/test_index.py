"""Tests of the subscription index (alerts.matching.index.Matcher), cross-checked with a naive evaluator."""

from __future__ import annotations

import random
from collections.abc import Iterable

import pytest

from alerts.matching.index import Matcher
from alerts.models import REGIONS, FeedItem, Match, Subscription
from alerts.text import words


def sub(name: str = "s", **fields: tuple[str, ...]) -> Subscription:
    """A subscription for the subscriber 'desk'."""
    return Subscription(name=name, subscribers=("desk",), **fields)


def matched(subscription: Subscription, title: str, summary: str = "", **options: object) -> bool:
    """Whether ``subscription`` matches an item with this title and summary."""
    categories = tuple(options.get("categories", ()))  # type: ignore[call-overload]
    item = FeedItem(id="1", title=title, summary=summary, categories=categories)
    feed = str(options.get("feed", "feed"))
    regions = tuple(options.get("regions", ()))  # type: ignore[call-overload]
    return bool(Matcher([subscription]).match(item, feed, regions))


@pytest.mark.parametrize(
    ("keyword", "title"),
    [
        ("libano", "Ataque en el Líbano"),
        ("Líbano", "LIBANO: alto el fuego"),
        ("médico", "MEDICO herido"),
        ("medico", "El MÉDICO habla"),
        ("GAZA", "gaza tonight"),
    ],
)
def test_case_and_accent_insensitive(keyword: str, title: str) -> None:
    """Keywords and headlines compare without case or accents, in either direction."""
    assert matched(sub(keywords=(keyword,)), title)


@pytest.mark.parametrize(
    ("keyword", "title", "expected"),
    [
        ("car", "Man carried to safety", False),
        ("car", "A scar on the city", False),
        ("car", "Car bomb in the capital", True),
        ("car", "Two cars burn", False),
        ("gaza", "Gaza's hospitals overwhelmed", True),
        ("rafah crossing", "the Rafah  crossing reopened", True),
        ("rafah crossing", "Rafah border crossing shut", False),
        ("rafah crossing", "Rafah-crossing talks", True),
        ("west bank", "West Bank raid", True),
        ("bank", "Central banker speaks", False),
    ],
)
def test_whole_words_and_phrases(keyword: str, title: str, expected: bool) -> None:
    """A term matches only as whole words, and a phrase only as consecutive words."""
    assert matched(sub(keywords=(keyword,)), title) is expected


def test_phrase_never_spans_title_and_summary() -> None:
    """A phrase split between the end of the title and the start of the summary does not match."""
    subscription = sub(keywords=("rafah crossing",))
    assert not matched(subscription, "Aid trucks wait at Rafah", "Crossing closed again")
    assert matched(subscription, "Aid trucks wait", "The Rafah crossing closed again")


def test_phrase_never_spans_two_categories() -> None:
    """A phrase split over two categories does not match; inside one category it does."""
    subscription = sub(keywords=("west bank",))
    assert not matched(subscription, "Raid overnight", categories=("West", "Bank"))
    assert matched(subscription, "Raid overnight", categories=("News", "West Bank"))


def test_keywords_are_any_of_and_reported() -> None:
    """Any one keyword suffices, and Match.terms names the keywords present (normalised)."""
    subscription = sub("mideast", keywords=("Iran", "Iraq", "Líbano"))
    item = FeedItem(id="1", title="Iran and Líbano talks")
    assert Matcher([subscription]).match(item, "f") == [Match("mideast", ("desk",), ("iran", "libano"))]
    assert not matched(subscription, "Syria talks")


def test_all_terms_required() -> None:
    """Without keywords, every `all` term must be present."""
    only_all = sub("both", all=("gaza", "ceasefire"))
    assert not matched(only_all, "Gaza strikes continue")
    assert not matched(only_all, "Ceasefire elsewhere")
    item = FeedItem(id="1", title="Gaza ceasefire holds")
    assert Matcher([only_all]).match(item, "f") == [Match("both", ("desk",), ("ceasefire", "gaza"))]


def test_all_terms_required_alongside_keywords_missing() -> None:
    """With keywords, a missing `all` term or a missing keyword prevents the match."""
    with_keywords = sub(keywords=("talks",), all=("ceasefire",))
    assert not matched(with_keywords, "Ceasefire holds")
    assert not matched(with_keywords, "Talks resume")


def test_all_terms_alongside_keywords_match() -> None:
    """With keywords and `all`, an item holding a keyword and every `all` term matches."""
    with_keywords = sub(keywords=("talks",), all=("ceasefire",))
    item = FeedItem(id="1", title="Ceasefire talks resume")
    assert [m.terms for m in Matcher([with_keywords]).match(item, "f")] == [("ceasefire", "talks")]


def test_exclude_vetoes() -> None:
    """An exclude term anywhere in the item vetoes an otherwise matching subscription."""
    subscription = sub(keywords=("gaza",), exclude=("football",))
    assert matched(subscription, "Gaza children play")
    assert not matched(subscription, "Gaza football team")
    assert not matched(subscription, "Gaza news", "The football league resumes")
    assert not matched(subscription, "Gaza news", categories=("Football",))


def test_regions_filter() -> None:
    """With regions, the item's regions must intersect them; region-only subscriptions match on region."""
    keyed = sub(keywords=("strike",), regions=("MENA", "Europe"))
    assert matched(keyed, "Strike hits port", regions=("MENA",))
    assert not matched(keyed, "Strike hits port", regions=("Asia",))
    assert not matched(keyed, "Strike hits port")
    region_only = sub("mena", regions=("MENA",))
    item = FeedItem(id="1", title="Anything at all")
    assert Matcher([region_only]).match(item, "f", ("Asia", "MENA")) == [
        Match("mena", ("desk",), ("region:MENA",))
    ]
    assert Matcher([region_only]).match(item, "f", ("Asia",)) == []


def test_feeds_filter() -> None:
    """With feeds, only items from those feeds match."""
    subscription = sub(keywords=("gaza",), feeds=("bbc", "aj"))
    assert matched(subscription, "Gaza update", feed="aj")
    assert not matched(subscription, "Gaza update", feed="reuters")


def test_summary_and_categories_match() -> None:
    """Terms are found in the summary and in categories, not only the title."""
    subscription = sub(keywords=("kyiv",))
    assert matched(subscription, "Drone attack overnight", "Air defence over Kyiv")
    assert matched(subscription, "Drone attack overnight", categories=("Kyiv",))
    assert not matched(subscription, "Drone attack overnight", "Air defence active", categories=("World",))


@pytest.mark.parametrize(
    ("keyword", "title"),
    [
        ("غزة", "قصف على غزّة"),
        ("غزة", "قصف على غزه"),
        ("غزه", "أخبار غزة اليوم"),
        ("غزّة", "غزة"),
        ("al-Quds", "Clashes in Al Quds"),
        ("al quds", "Clashes in al-Quds"),
        ("مستشفى", "قصف مستشفى"),
    ],
)
def test_arabic_and_hyphen_folding(keyword: str, title: str) -> None:
    """Shadda is ignored, teh marbuta equals heh, and hyphens split words."""
    assert matched(sub(keywords=(keyword,)), title)


def test_arabic_whole_words() -> None:
    """An Arabic keyword does not match inside a longer word that is not a prefixed form of it."""
    assert not matched(sub(keywords=("غزة",)), "مغزة")


def test_results_in_config_order_with_subscribers() -> None:
    """Every matching subscription is returned once, in config order, with its subscribers."""
    subscriptions = [
        Subscription("b", ("x", "y"), keywords=("gaza",)),
        Subscription("a", ("z",), keywords=("iran",)),
        Subscription("c", ("x",), keywords=("gaza", "strike")),
    ]
    item = FeedItem(id="1", title="Gaza strike, Gaza again")
    result = Matcher(subscriptions).match(item, "f")
    assert [(m.subscription, m.subscribers, m.terms) for m in result] == [
        ("b", ("x", "y"), ("gaza",)),
        ("c", ("x",), ("gaza", "strike")),
    ]


# --- randomized cross-check against a naive evaluator -------------------------------------------------

BASE_WORDS = ["gaza", "rafah", "crossing", "border", "israel", "iran", "car", "bomb", "strike", "libano"]
BASE_WORDS += ["medico", "west", "bank", "al", "quds", "sport", "kyiv", "talks", "غزة", "القدس"]
SURFACE = [*BASE_WORDS, "Gaza's", "GAZA", "Líbano", "MÉDICO", "غزّة", "al-Quds", "scar", "carried", "cars"]
SURFACE += ["West-Bank", "banks", "the", "a", "in", "of", ",", ":", "—", "!", "Rafah,", "(Kyiv)"]
FEEDS = ["f1", "f2", "f3"]


def occurs(term: str, fields: Iterable[str]) -> bool:
    """``term`` appears as consecutive whole words inside one of ``fields``."""
    needle = words(term)
    for field in fields:
        tokens = words(field)
        for start in range(len(tokens) - len(needle) + 1):
            if needle and tokens[start : start + len(needle)] == needle:
                return True
    return False


def naive(
    subscriptions: list[Subscription], item: FeedItem, feed: str, regions: tuple[str, ...]
) -> list[Match]:
    """The matching rules written out plainly: feeds, regions, exclude, all, any keyword."""
    fields = [item.title, item.summary, *item.categories]
    out = []
    for s in subscriptions:
        keyword_hits = {" ".join(words(t)) for t in s.keywords if occurs(t, fields)}
        all_terms = {" ".join(words(t)) for t in s.all}
        region_hits = sorted(set(s.regions) & set(regions))
        if (
            (s.feeds and feed not in s.feeds)
            or (s.regions and not region_hits)
            or any(occurs(t, fields) for t in s.exclude)
            or not all(occurs(t, fields) for t in s.all)
            or (s.keywords and not keyword_hits)
        ):
            continue
        terms = sorted(keyword_hits | all_terms) + [f"region:{r}" for r in region_hits]
        out.append(Match(s.name, s.subscribers, tuple(terms)))
    return out


def random_terms(rng: random.Random, most: int) -> tuple[str, ...]:
    """Up to ``most`` one- or two-word terms from the base vocabulary."""
    terms = []
    for _ in range(rng.randint(0, most)):
        size = rng.choice((1, 1, 1, 2))
        terms.append(" ".join(rng.choice(BASE_WORDS) for _ in range(size)))
    return tuple(terms)


def random_text(rng: random.Random, low: int, high: int) -> str:
    """A headline-like jumble of surface forms."""
    return " ".join(rng.choice(SURFACE) for _ in range(rng.randint(low, high)))


@pytest.mark.parametrize(
    "all_with_keywords",
    [False, True],
)
def test_index_equals_naive_evaluator(all_with_keywords: bool) -> None:
    """For random subscriptions and headlines, the Aho-Corasick index agrees with the naive rules."""
    rng = random.Random(20240611)
    subscriptions = []
    for index in range(300):
        keywords = random_terms(rng, 3)
        needs_all = rng.random() < 0.3 and (all_with_keywords or not keywords)
        subscriptions.append(
            Subscription(
                name=f"s{index}",
                subscribers=(f"u{index % 7}",),
                keywords=keywords,
                all=(random_terms(rng, 1) or (rng.choice(BASE_WORDS),)) if needs_all else (),
                exclude=random_terms(rng, 1) if rng.random() < 0.3 else (),
                regions=tuple(rng.sample(REGIONS, rng.choice((0, 0, 0, 1, 2)))),
                feeds=tuple(rng.sample(FEEDS, rng.choice((0, 0, 0, 1)))),
            )
        )
    matcher = Matcher(subscriptions)
    total = phrases = with_all = 0
    for index in range(300):
        item = FeedItem(
            id=str(index),
            title=random_text(rng, 3, 10),
            summary=random_text(rng, 0, 12),
            categories=tuple(random_text(rng, 1, 2) for _ in range(rng.randint(0, 2))),
        )
        feed = rng.choice(FEEDS)
        regions = tuple(rng.sample(REGIONS, rng.randint(0, 2)))
        expected = naive(subscriptions, item, feed, regions)
        assert matcher.match(item, feed, regions) == expected, item
        total += len(expected)
        phrases += sum(1 for m in expected for t in m.terms if " " in t)
        with_all += sum(1 for m in expected if subscriptions[int(m.subscription[1:])].all)
    assert total > 500 and phrases > 20 and with_all > 20  # real matches, phrases and `all` exercised
