"""Matching in English, Spanish and Arabic: normalisation, attached prefixes, stems, queries, regex."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.config.load import load_config
from alerts.errors import ConfigError
from alerts.matching.index import Matcher
from alerts.models import FeedItem, Subscription
from alerts.text import normalise


def matches(subscription: Subscription, title: str, summary: str = "", **context: object) -> bool:
    """Whether ``subscription`` matches an item with this title and summary."""
    item = FeedItem(id="1", title=title, summary=summary)
    feed = str(context.get("feed", "wire"))
    regions = tuple(context.get("regions", ()))  # type: ignore[call-overload]
    lang = context.get("lang")
    return bool(Matcher([subscription]).match(item, feed, regions, lang))  # type: ignore[arg-type]


def keywords(*terms: str, stem: bool = False) -> Subscription:
    return Subscription("s", ("desk",), keywords=terms, stem=stem)


def query(text: str, stem: bool = False) -> Subscription:
    return Subscription("s", ("desk",), query=text, stem=stem)


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("Líbano", "libano"),
        ("Médico", "medico"),
        ("غزّة", "غزه"),
        ("أحمد إبراهيم آمن ٱلقدس", "احمد ابراهيم امن القدس"),
        ("مستشفى", "مستشفي"),
        ("فلسطيـــن", "فلسطين"),
        ("٧ أكتوبر ۱۲", "7 اكتوبر 12"),
        ("Gaza's", "gaza"),
        ("al-Quds", "al quds"),
        ("'Israel'", "israel"),
        ("ﬁre", "fire"),
    ],
)
def test_one_normalisation_for_three_languages(text: str, normal: str) -> None:
    """NFKC, casefold, accents, tashkeel, tatweel, alef forms, ى/ة, digits, possessives, hyphens."""
    assert normalise(text) == normal


@pytest.mark.parametrize(
    ("term", "title"),
    [
        ("غزة", "وغزة تحت القصف"),
        ("غزة", "قصف عنيف بغزة"),
        ("غزة", "مساعدات لغزة"),
        ("لبنان", "غارات على ولبنان"),
        ("مستشفى", "قصف المستشفى"),
        ("مستشفى", "والمستشفى خارج الخدمة"),
        ("مستشفى", "نقل الجرحى للمستشفى"),
        ("الاحتلال", "والاحتلال يواصل"),
        ("الاحتلال", "مواجهات بالاحتلال"),
        ("أحمد", "احمد"),
        ("إسرائيل", "اسرائيل"),
    ],
)
def test_arabic_attached_prefixes_and_alef_forms(term: str, title: str) -> None:
    """An Arabic term matches its forms with و ف ب ل ك and ال attached, and every alef form."""
    assert matches(keywords(term), title)


@pytest.mark.parametrize(
    ("term", "title"),
    [
        ("غزة", "مغزة"),  # not a prefix: an unrelated word
        ("بنان", "رسم البنانا"),
        ("لبنان", "لبنانيون"),  # a longer word, not a prefixed form
    ],
)
def test_arabic_short_terms_do_not_match_inside_other_words(term: str, title: str) -> None:
    """Only the listed prefixes are removed: a term never matches inside an unrelated longer word."""
    assert not matches(keywords(term), title)


@pytest.mark.parametrize(
    ("term", "title", "stemmed"),
    [
        ("strike", "Israeli strikes on Nabatieh", True),
        ("strike", "Israeli strikes on Nabatieh", False),
        ("ataque", "Nuevos ataques en Gaza", True),
        ("ataque", "Nuevos ataques en Gaza", False),
        ("hospital", "Two hospitals shelled", True),
    ],
)
def test_stems_only_with_stem_true(term: str, title: str, stemmed: bool) -> None:
    """`stem: true` matches inflected forms (Snowball English/Spanish); without it words are exact."""
    assert matches(keywords(term, stem=stemmed), title) is stemmed


def test_issue_example_query() -> None:
    """The documented example query matches and rejects as a newsroom expects."""
    sub = query('(gaza OR rafah) AND ("medical complex" OR hospital*) AND NOT football')
    assert matches(sub, "Four babies died at Nasser Medical Complex in Gaza")
    assert matches(sub, "Rafah hospitals overwhelmed")
    assert not matches(sub, "Gaza football team visits hospital")
    assert not matches(sub, "Medical complex opens in Rafah football stadium")
    assert not matches(sub, "Hospitals overwhelmed in Khan Younis")


def test_field_scopes_and_metadata() -> None:
    """title:, summary:, feed:, region: and lang: restrict where and what matches."""
    assert matches(query("title:gaza"), "Gaza update", "nothing")
    assert not matches(query("title:gaza"), "Update", "about Gaza")
    assert matches(query('summary:"rafah crossing"'), "Update", "The Rafah crossing reopened")
    assert matches(query("strike feed:agency"), "Strike", feed="agency")
    assert not matches(query("strike feed:agency"), "Strike", feed="wire")
    assert matches(query('strike region:"US & Canada"'), "Strike", regions=("US & Canada",))
    assert not matches(query("strike region:MENA"), "Strike", regions=("Europe",))
    assert matches(query("lang:ar غزة"), "قصف على غزة")
    assert not matches(query("lang:es gaza"), "Gaza", lang="en")


def test_near_counts_words_between() -> None:
    """NEAR/n accepts terms whose positions differ by at most n words, in either order."""
    sub = query("israeli NEAR/4 raid")
    assert matches(sub, "Israeli warplanes launched a raid")
    assert matches(sub, "A raid by Israeli warplanes")
    assert not matches(query("israeli NEAR/3 raid"), "Israeli warplanes launched a raid")
    assert not matches(sub, "Israeli warplanes were seen before they launched a raid")


def test_regex_runs_on_a_linear_time_engine() -> None:
    """regex: matches case-insensitively with RE2; a catastrophic pattern finishes at once."""
    assert matches(Subscription("s", ("d",), regex=r"\bsirens? sound"), "Drone infiltration SIRENS SOUND")
    evil = Subscription("s", ("d",), regex=r"(a+)+$")
    assert not matches(evil, "a" * 5000 + "!")


def _write(directory: Path, subscriptions: str) -> None:
    (directory / "feeds.yaml").write_text("feeds:\n  - name: wire\n    url: https://example.com/rss\n")
    (directory / "subscriptions.yaml").write_text(
        'subscribers:\n  - name: desk\n    notify: ["json://127.0.0.1:9/x"]\nsubscriptions:\n' + subscriptions
    )


def test_query_syntax_error_names_file_line_and_column(tmp_path: Path) -> None:
    """A query syntax error is reported as subscriptions.yaml:LINE:COLUMN with the parser's message."""
    _write(tmp_path, "  - name: q\n    subscribers: [desk]\n    query: '(gaza OR rafah AND hospital'\n")
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    [problem] = caught.value.problems
    assert (Path(problem.file).name, problem.line, problem.column) == ("subscriptions.yaml", 7, 13)
    assert str(problem).endswith("subscriptions.yaml:7:13: query: " + problem.message.split(": ", 1)[1])
    assert "unmatched '('" in problem.message


def test_invalid_regex_and_unknown_query_names_are_config_errors(tmp_path: Path) -> None:
    """An RE2-invalid regex, an unknown feed and an unknown region in a query are reported with lines."""
    _write(
        tmp_path,
        "  - name: r\n    subscribers: [desk]\n    regex: '(unclosed'\n"
        "  - name: q\n    subscribers: [desk]\n    query: 'strike feed:nope region:Atlantis'\n",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path, env={})
    found = sorted((p.line, p.message.split(":")[0]) for p in caught.value.problems)
    assert found == [(7, "regex"), (10, "query"), (10, "query")]
    messages = " ".join(p.message for p in caught.value.problems)
    assert "unknown feed 'nope'" in messages and "unknown region 'Atlantis'" in messages
