"""Tests of alerts.ingest.html: the reference site's tickers and home page, then selectors on inline pages."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import pytest

from alerts.errors import FeedParseError
from alerts.ingest.dates import parse_time
from alerts.ingest.html import Selectors, parse_html
from alerts.ingest.markup import text_id
from alerts.ingest.presets import PRESETS
from alerts.text import digest, normalise

FIXTURES = Path(__file__).parents[1] / "fixtures"
EN, AR, ES = PRESETS["almayadeen-en"], PRESETS["almayadeen-ar"], PRESETS["almayadeen-es"]
BASE = "https://example.test/news/"

# The BREAKING lines of shared/seed/almayadeen-english-article-page.txt, in order.
SEED_LINES = [
    "Al Mayadeen correspondent to southern Lebanon: Israeli warplanes launched a raid on the Ksar "
    "Zaatar neighborhood in western Nabatieh.",
    "Al Mayadeen's correspondent in Gaza: The tower destroyed by the Israeli occupation in Gaza "
    "includes media offices, including Al Mayadeen's bureau.",
    "Al Mayadeen's correspondent in Gaza: Four fetuses and three premature babies died at Nasser "
    "Medical Complex due to malnutrition",
    "Lebanese Ministry of Health: One person was killed in an Israeli airstrike on a car in the "
    "town of Burj Qalawieh, south Lebanon.",
    "Al Mayadeen correspondent: The first ship of the Maghreb fleet delivering aid to break the "
    "siege on Gaza departs from the port of Gammarth in Tunisia.",
    "Channel 12: Airspace closed at Ramon Airport due to fears of drone infiltration",
    "IOF Spokesperson: Sirens sounded over an aircraft infiltration in the Bir Ora area, and "
    "details are being examined",
    "Drone infiltration sirens sound north of the Gulf of Aqaba",
    "Al Mayadeen's correspondent in Gaza: The Israeli occupation carried out five extremely violent "
    "raids on the western areas of Gaza City",
    "Al Mayadeen's correspondent in Gaza: The Israeli occupation carried out major bombings in the "
    "Gaza Strip, the most violent since October 7",
]

# The Arabic ticker of almayadeen_ar_ticker.html: (relative href, text).
ARABIC_LINES = [
    ("/news/politics/1800101/مراسل-الميادين-في-جنوب-لبنان",
     "مراسل الميادين في جنوب لبنان: الطائرات الحربية الإسرائيلية شنّت غارة على حي كسار زعتر غربي النبطية"),
    ("/news/politics/1800102/مراسل-الميادين-في-غزة",
     "مراسل الميادين في غزة: البرج الذي دمّره الاحتلال الإسرائيلي يضم مكاتب إعلامية بينها مكتب الميادين"),
    ("/news/politics/1800103/وزارة-الصحة-اللبنانية",
     "وزارة الصحة اللبنانية: شهيد في غارة إسرائيلية على سيارة في بلدة برج قلاويه جنوبي لبنان"),
    ("/news/politics/1800104/مراسل-الميادين-في-غزة",
     "مراسل الميادين في غزة: وفاة 4 أجنّة و3 أطفال خدّج في مجمع ناصر الطبي بسبب سوء التغذية"),
    ("/news/politics/1800105/القناة-12",
     "القناة 12 الإسرائيلية: إغلاق المجال الجوي في مطار رامون خشية تسلّل مسيّرات"),
    ("/news/politics/1800106/مراسل-الميادين-في-غزة",
     "مراسل الميادين في غزة: الاحتلال نفّذ 5 غارات عنيفة جداً على المناطق الغربية لمدينة غزة"),
]  # fmt: skip


def fixture(name: str) -> bytes:
    """The bytes of one file under tests/fixtures."""
    return (FIXTURES / name).read_bytes()


def page(body: str) -> bytes:
    """A small UTF-8 page around ``body``."""
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{body}</body></html>".encode()


def test_english_ticker_gives_the_ten_seed_lines_in_order() -> None:
    """All ten BREAKING lines become items with exact titles, no link and no time."""
    items = parse_html(fixture("almayadeen_en_ticker.html"), EN.url, EN.selectors)
    assert [item.title for item in items] == SEED_LINES
    assert all(item.link is None and item.published is None and item.summary == "" for item in items)


def test_english_ticker_ids_are_text_digests_and_stable() -> None:
    """A link-less line's id is "text:" + digest(normalise(title)), the same on every parse."""
    first = parse_html(fixture("almayadeen_en_ticker.html"), EN.url, EN.selectors)
    again = parse_html(fixture("almayadeen_en_ticker.html"), EN.url, EN.selectors)
    assert [item.id for item in first] == [item.id for item in again]
    assert [item.id for item in first] == ["text:" + digest(normalise(line)) for line in SEED_LINES]
    assert len({item.id for item in first}) == 10


def test_same_line_with_other_whitespace_case_and_punctuation_has_the_same_id() -> None:
    """Re-spaced, re-cased, re-punctuated copies of a ticker line map to the original's id."""
    original = parse_html(fixture("almayadeen_en_ticker.html"), EN.url, EN.selectors)[5]
    variant = page(
        '<div class="ticker__item">\n  CHANNEL 12 —   airspace closed at\tRamon Airport, due to fears '
        "of drone infiltration!!\n</div>"
    )
    (item,) = parse_html(variant, EN.url, EN.selectors)
    assert item.title == "CHANNEL 12 — airspace closed at Ramon Airport, due to fears of drone infiltration!!"
    assert item.id == original.id == text_id(SEED_LINES[5])


def test_a_different_line_has_a_different_id() -> None:
    """Changing one word of a line changes its id."""
    line = "Channel 12: Airspace closed at Ramon Airport"
    assert text_id(line) != text_id(line.replace("12", "13"))


def test_repeated_and_empty_ticker_elements_are_dropped() -> None:
    """The marquee's repeated lines appear once and a blank element is skipped (13 elements, 10 items)."""
    body = fixture("almayadeen_en_ticker.html")
    assert body.count(b'class="ticker__item"') == 13
    assert len(parse_html(body, EN.url, EN.selectors)) == 10


def test_first_of_several_items_with_one_id_is_kept() -> None:
    """Two headlines linking to one article give one item: the first, in its place."""
    selectors = Selectors(item="h3 a", link="@href")
    body = page(
        "<h3><a href='/a'>First</a></h3><h3><a href='/b'>Other</a></h3><h3><a href='/a'>Again</a></h3>"
    )
    assert [item.title for item in parse_html(body, BASE, selectors)] == ["First", "Other"]


def test_arabic_ticker_from_undeclared_windows_1256() -> None:
    """Arabic titles and absolute, percent-encoded links come out right from windows-1256 bytes."""
    body = fixture("almayadeen_ar_ticker.html")
    assert b"charset" not in body.lower()
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    items = parse_html(body, AR.url, AR.selectors)
    assert [item.title for item in items] == [text for _, text in ARABIC_LINES]
    expected = ["https://www.almayadeen.net" + quote(href) for href, _ in ARABIC_LINES]
    assert [item.link for item in items] == expected
    assert [item.id for item in items] == expected


def test_arabic_ticker_with_a_declared_charset_reads_the_same() -> None:
    """An HTTP charset header gives the same items as detection."""
    body = fixture("almayadeen_ar_ticker.html")
    declared = parse_html(body, AR.url, AR.selectors, "text/html; charset=windows-1256")
    assert declared == parse_html(body, AR.url, AR.selectors)


def test_spanish_preset_selects_only_news_headline_links() -> None:
    """Only h3 links to /news/ articles become items: not menus, videos, opinion, h4 or section links."""
    items = parse_html(fixture("almayadeen_es_home.html"), ES.url, ES.selectors)
    site = "https://espanol.almayadeen.net/news/"
    assert [(item.title, item.link) for item in items] == [
        (
            "Lavrov llama a los movimientos palestinos a reunificarse",
            site + "politica/1805011/lavrov-llama-a-los-movimientos-palestinos-a-reunificarse",
        ),
        (
            "Ministerio de Salud libanés: un muerto en ataque israelí contra un auto en Burj Qalawieh",
            site + "politica/1805012/ministerio-de-salud-libanes-un-muerto-en-ataque-israeli-contra-un"
            "-auto-en-burj-qalawieh",
        ),
        (
            "Presidente croata se niega a reunirse con el canciller israelí por el genocidio en Gaza",
            site + "politica/1805013/presidente-croata-se-niega-a-reunirse-con-el-canciller-israeli-por-el"
            "-genocidio-en-gaza",
        ),
        (
            "Maduro advierte sobre amenazas y llama a la «batalla por la verdad» en defensa de Venezuela",
            site + "internacional/1805014/maduro-advierte-sobre-amenazas-y-llama-a-la-batalla-por-la-verdad",
        ),
        (
            "La Flotilla Global Sumud denuncia un nuevo ataque con drones en aguas de Túnez",
            site + "politica/1805041/la-flotilla-sumud",
        ),
    ]
    assert all(item.id == item.link for item in items)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_selectors_parse_back_from_their_mapping(name: str) -> None:
    """Each preset's selectors survive Selectors.parse of their config mapping; lang set, region None."""
    preset = PRESETS[name]
    selectors = preset.selectors
    mapping = {key: value for key in Selectors.__slots__ if (value := getattr(selectors, key)) is not None}
    assert Selectors.parse(mapping) == selectors
    assert preset.format == "html" and preset.url.startswith("https://") and preset.url.endswith("/")
    assert preset.lang == {"almayadeen-en": "en", "almayadeen-ar": "ar", "almayadeen-es": "es"}[name]
    assert preset.region is None


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"title": "h3"}, "'item' is required"),
        ({"item": ""}, "'item' is required"),
        ({"item": "li", "titel": "h3"}, "unknown selector key(s) titel"),
        ({"item": "h3 >"}, "selectors.item: 'h3 >' is not a valid CSS selector"),
        ({"item": "li", "title": "a[href^="}, "selectors.title: 'a[href^=' is not a valid CSS selector"),
        ({"item": "li", "link": "a::@href"}, "selectors.link: 'a::' is not a valid CSS selector"),
        ({"item": "a@href"}, "selectors.item: 'a@href' must be a CSS selector of elements"),
        ({"item": "li", "summary": "  "}, "selectors.summary: expected a CSS selector"),
        ({"item": "li", "time": 5}, "selectors.time: expected a string, got int"),
    ],
)
def test_invalid_selectors_raise_value_error_naming_the_field(mapping: dict[str, str], message: str) -> None:
    """Selectors.parse rejects a missing item, unknown keys, bad CSS and misplaced @attributes."""
    with pytest.raises(ValueError) as caught:
        Selectors.parse(mapping)
    assert message in str(caught.value)


def test_attribute_syntax_and_at_signs_inside_css() -> None:
    """A "css@attr" value reads an attribute; an @ inside a quoted attribute value stays part of the CSS."""
    selectors = Selectors.parse({"item": "li", "title": "a[href*='@']", "link": "a[href*='@']@data-url"})
    body = page("<ul><li><a href='mailto:desk@example.test' data-url='/s/1'>Desk</a></li></ul>")
    (item,) = parse_html(body, BASE, selectors)
    assert (item.title, item.link) == ("Desk", "https://example.test/s/1")


def test_selector_matching_nothing_raises_feed_parse_error() -> None:
    """A page without the ticker's elements (changed markup) is a parse error naming the selector."""
    with pytest.raises(FeedParseError, match=r"^selector '\.ticker__item' matched nothing$"):
        parse_html(fixture("almayadeen_es_home.html"), EN.url, EN.selectors)


def test_matches_without_any_title_raise_feed_parse_error() -> None:
    """Elements that all lack a title (e.g. the title selector no longer matches) are a parse error."""
    selectors = Selectors(item="li", title="p.headline")
    with pytest.raises(FeedParseError, match="matched 2 element"):
        parse_html(page("<ul><li><span>a</span></li><li>b</li></ul>"), BASE, selectors)


def test_empty_body_raises_feed_parse_error() -> None:
    """An empty or blank body is a parse error, not an empty list."""
    with pytest.raises(FeedParseError, match="empty body"):
        parse_html(b"  \n", BASE, EN.selectors)


def test_every_field_relative_to_the_item() -> None:
    """Title, link, time, summary and categories come from inside each item; relative links resolve."""
    selectors = Selectors.parse(
        {
            "item": "article.story",
            "title": "h2",
            "link": "h2 a@href",
            "time": "time",
            "summary": ".dek",
            "categories": ".tags a",
        }
    )
    body = page(
        """
        <article class="story"><h2><a href="../politics/a-1"> First <em>story</em></a></h2>
          <time datetime="2024-01-24T22:01:00+02:00">24 Jan</time><p class="dek">One<br>two</p>
          <p class="tags"><a>Palestine</a> <a>Russia</a><a>Palestine</a></p></article>
        <article class="story"><h2><a href="javascript:void(0)">Second</a></h2>
          <time>Wed, 24 Jan 2024 20:05:00 GMT</time></article>
        <article class="story"><h2>Third</h2><time datetime="yesterday"></time></article>
        """
    )
    first, second, third = parse_html(body, BASE, selectors)
    assert (first.title, first.link, first.id) == (
        "First story",
        "https://example.test/politics/a-1",
        first.link,
    )
    assert first.published == datetime(2024, 1, 24, 20, 1, tzinfo=UTC)
    assert (first.summary, first.categories) == ("One two", ("Palestine", "Russia"))
    assert (second.link, second.id) == (None, text_id("Second"))
    assert second.published == datetime(2024, 1, 24, 20, 5, tzinfo=UTC)
    assert (third.title, third.published, third.categories) == ("Third", None, ())


def test_item_own_attribute_base_href_and_scripts() -> None:
    """An "@href" value reads the item itself, <base href> sets the base, script text is not title."""
    selectors = Selectors(item="h3 a", link="@href")
    body = page(
        "<base href='https://cdn.example.test/es/'><h3><a href='news/1'>Uno<script>x()</script></a></h3>"
    )
    (item,) = parse_html(body, BASE, selectors)
    assert (item.title, item.link) == ("Uno", "https://cdn.example.test/es/news/1")


def test_relative_selectors_match_descendants_not_the_item_itself() -> None:
    """Like querySelector, a relative selector never returns the item element itself."""
    selectors = Selectors(item="div.card", title="div")
    body = page("<div class='card'>outer <div>inner</div></div>")
    assert [item.title for item in parse_html(body, BASE, selectors)] == ["inner"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-24T22:01:00Z", datetime(2024, 1, 24, 22, 1, tzinfo=UTC)),
        ("2024-01-24T22:01:00.5+02:00", datetime(2024, 1, 24, 20, 1, 0, 500000, tzinfo=UTC)),
        ("2024-01-24 22:01:00", datetime(2024, 1, 24, 22, 1, tzinfo=UTC)),
        ("Wed, 24 Jan 2024 22:01:00 +0200", datetime(2024, 1, 24, 20, 1, tzinfo=UTC)),
        ("1706133660", datetime(2024, 1, 24, 22, 1, tzinfo=UTC)),
        (1706133660000, datetime(2024, 1, 24, 22, 1, tzinfo=UTC)),
        (1706133660.5, datetime(2024, 1, 24, 22, 1, 0, 500000, tzinfo=UTC)),
        ("yesterday", None),
        ("", None),
        (0, None),
        (True, None),
        (float("nan"), None),
        (1e300, None),
    ],
)
def test_parse_time(value: object, expected: datetime | None) -> None:
    """ISO 8601, RFC 2822 and epochs become UTC datetimes; anything else gives None."""
    assert parse_time(value) == expected
