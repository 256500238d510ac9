"""Tests of alerts.matching.geo: places in English, Arabic and Spanish headlines -> countries -> regions."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.errors import ConfigError
from alerts.matching import geo
from alerts.matching.geo import Geotagger, PlaceHit, RegionTaxonomy
from alerts.matching.geo.gazetteer import add_overlay, packaged
from alerts.matching.geo.names import Builder
from alerts.yamlsource import load

ROOT = Path(__file__).resolve().parents[2]
MARK = "# HERE"  # a YAML comment on the line where a problem is expected

# the BREAKING ticker of the reference page (shared/seed/almayadeen-english-article-page.txt)
SEED = [
    (
        "Al Mayadeen correspondent to southern Lebanon: Israeli warplanes launched a raid on the Ksar Zaatar "
        "neighborhood in western Nabatieh.",
        {"MENA"},
        {"Lebanon", "Israel", "Ksar Zaatar", "Nabatieh"},
    ),
    (
        "Al Mayadeen's correspondent in Gaza: The tower destroyed by the Israeli occupation in Gaza includes "
        "media offices, including Al Mayadeen's bureau.",
        {"Palestine", "MENA"},
        {"Gaza", "Israel"},
    ),
    (
        "Al Mayadeen's correspondent in Gaza: Four fetuses and three premature babies died at Nasser Medical "
        "Complex due to malnutrition",
        {"Palestine", "MENA"},
        {"Gaza", "Nasser Medical Complex"},
    ),
    (
        "Lebanese Ministry of Health: One person was killed in an Israeli airstrike on a car in the town of "
        "Burj Qalawieh, south Lebanon.",
        {"MENA"},
        {"Lebanon", "Israel", "Burj Qalawieh"},
    ),
    (
        "Al Mayadeen correspondent: The first ship of the Maghreb fleet delivering aid to break the siege on "
        "Gaza departs from the port of Gammarth in Tunisia.",
        {"Africa", "MENA", "Palestine"},
        {"Maghreb", "Gaza", "Tunisia"},
    ),
    (
        "Channel 12: Airspace closed at Ramon Airport due to fears of drone infiltration",
        {"MENA"},
        {"Ramon Airport"},
    ),
    (
        "IOF Spokesperson: Sirens sounded over an aircraft infiltration in the Bir Ora area, and details are "
        "being examined",
        {"MENA"},
        {"Bir Ora", "Israel"},
    ),
    ("Drone infiltration sirens sound north of the Gulf of Aqaba", {"MENA"}, {"Gulf of Aqaba"}),
    (
        "Al Mayadeen's correspondent in Gaza: The Israeli occupation carried out five extremely violent "
        "raids on the western areas of Gaza City",
        {"Palestine", "MENA"},
        {"Gaza", "Israel"},
    ),
    (
        "Al Mayadeen's correspondent in Gaza: The Israeli occupation carried out major bombings in the Gaza "
        "Strip, the most violent since October 7",
        {"Palestine", "MENA"},
        {"Gaza", "Israel"},
    ),
]


@pytest.fixture(scope="module")
def tagger() -> Geotagger:
    """One tagger over the packaged taxonomy for the whole module."""
    return Geotagger(RegionTaxonomy.load())


def places(tagger: Geotagger, *texts: str) -> list[str]:
    """The canonical places ``texts`` name, in order."""
    return [hit.place for hit in tagger.tag(*texts)]


def regions(tagger: Geotagger, *texts: str) -> set[str]:
    """The regions ``texts`` fall in."""
    return set(tagger.regions(*texts))


@pytest.mark.parametrize(("line", "expected_regions", "expected_places"), SEED)
def test_seed_breaking_lines(
    tagger: Geotagger, line: str, expected_regions: set[str], expected_places: set[str]
) -> None:
    """Each BREAKING line of the reference page lands in exactly the expected regions, via the places."""
    assert regions(tagger, line) == expected_regions
    assert expected_places <= set(places(tagger, line))


def test_tunisia_is_in_africa_and_mena(tagger: Geotagger) -> None:
    """North Africa sits in both Africa and MENA; the country comes with its ISO code."""
    hit = next(hit for hit in tagger.tag(SEED[4][0]) if hit.place == "Tunisia")
    assert hit == PlaceHit("Tunisia", "Tunisia", ("TN",), ("Africa", "MENA"))


def test_israeli_maps_to_israel_in_mena_only(tagger: Geotagger) -> None:
    """The adjective Israeli is the country IL, which is in MENA but not in Palestine (documented choice)."""
    hit = next(hit for hit in tagger.tag("Israeli warplanes struck") if hit.text == "Israeli")
    assert (hit.place, hit.countries, hit.regions) == ("Israel", ("IL",), ("MENA",))


def test_hit_text_is_the_words_as_written(tagger: Geotagger) -> None:
    """A hit reports the words as they appear in the input, with their case and punctuation."""
    hits = tagger.tag("Strikes on the Gaza Strip and on al-Quds; Guinea-Bissau votes")
    assert [hit.text for hit in hits] == ["Gaza Strip", "al-Quds", "Guinea-Bissau"]


def test_words_reported_per_region(tagger: Geotagger) -> None:
    """regions() lists, per region in the site's order, the words that put the item there, once each."""
    assert tagger.regions("Israeli strike on Gaza and Beirut", "Gaza: more raids near Beirut") == {
        "MENA": ["Israeli", "Gaza", "Beirut"],
        "Palestine": ["Gaza"],
    }


def test_title_and_summary_are_both_read(tagger: Geotagger) -> None:
    """tag(title, summary) finds places in either text, the same place once per distinct wording."""
    assert places(tagger, "Sirens sound in the north", "Drones over Haifa; Haifa port closed") == ["Haifa"]


def test_no_place_no_region(tagger: Geotagger) -> None:
    """A line naming no place has no hit and no region."""
    assert tagger.tag("Four fetuses and three premature babies died due to malnutrition") == []
    assert tagger.regions("", "Breaking: markets fall") == {}


# --- Arabic ---------------------------------------------------------------------------------------------


def test_arabic_breaking_south_lebanon(tagger: Geotagger) -> None:
    """An Arabic strike line finds Israel (feminine adjective) and Lebanon, in MENA."""
    line = "عاجل: غارة إسرائيلية على بلدة في جنوب لبنان"
    assert places(tagger, line) == ["Israel", "Lebanon"]
    assert regions(tagger, line) == {"MENA"}


def test_arabic_correspondent_in_gaza(tagger: Geotagger) -> None:
    """مراسل الميادين في غزة is filed under Palestine and MENA."""
    assert regions(tagger, "مراسل الميادين في غزة: شهداء في قصف على جباليا") == {"Palestine", "MENA"}


@pytest.mark.parametrize(
    ("word", "place"),
    [
        ("وغزة", "Gaza"),
        ("بغزة", "Gaza"),
        ("ولبنان", "Lebanon"),
        ("والقدس", "Jerusalem"),
        ("للعراق", "Iraq"),
        ("بالعراق", "Iraq"),
        ("فلبنان", "Lebanon"),
        ("والإسرائيلية", "Israel"),
        ("اللبنانيون", "Lebanon"),
        ("والضفة الغربية", "West Bank"),
    ],
)
def test_arabic_prefixes_are_stripped(tagger: Geotagger, word: str, place: str) -> None:
    """و ف ب ل ك ال and their combinations attached to a known place are stripped; the hit keeps the word."""
    assert [(hit.text, hit.place) for hit in tagger.tag(f"خبر {word} اليوم")] == [(word, place)]


def test_arabic_article_comes_off_demonyms_only(tagger: Geotagger) -> None:
    """الصور ("the pictures") is not صور (Tyre): a place never loses an article; a demonym may."""
    assert places(tagger, "نشر الصور من الموقع") == []
    assert places(tagger, "الإسرائيلي") == ["Israel"]


def test_arabic_words_that_need_a_preceding_word(tagger: Geotagger) -> None:
    """صور and مالي are places only after a listed word (في، على، جنوب...) or with a ب prefix."""
    assert places(tagger, "نشر صور جديدة") == []
    assert places(tagger, "غارة على صور") == ["Tyre"]
    assert places(tagger, "قصف بصور") == ["Tyre"]
    assert places(tagger, "دعم مالي للحكومة") == []
    assert places(tagger, "انقلاب في مالي") == ["Mali"]


# --- Spanish --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "place", "region"),
    [
        ("Maduro denuncia amenazas contra Venezuela", "Venezuela", "Latin America"),
        ("El canciller venezolano rechaza sanciones", "Venezuela", "Latin America"),
        ("Cancillería venezolana: nuevas sanciones", "Venezuela", "Latin America"),
        ("Ataque en el sur del Líbano", "Lebanon", "MENA"),
        ("Colonos atacan aldeas en Cisjordania", "West Bank", "Palestine"),
        ("Estados Unidos despliega buques", "United States", "US & Canada"),
        ("Sanciones de EE. UU. contra Irán", "United States", "US & Canada"),
        ("Bombardeos israelíes en la Franja de Gaza", "Gaza", "Palestine"),
        ("Una periodista libanesa herida", "Lebanon", "MENA"),
    ],
)
def test_spanish(tagger: Geotagger, line: str, place: str, region: str) -> None:
    """Spanish country and place names (capitalised) and demonyms (any case, inflected) are found."""
    assert place in places(tagger, line)
    assert region in regions(tagger, line)


# --- English demonyms and capitals ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "place"),
    [
        ("Lebanese army deploys", "Lebanon"),
        ("Israelis protest", "Israel"),
        ("Iranian drones", "Iran"),
        ("Palestinians return north", "Palestine"),
        ("Yemeni forces", "Yemen"),
        ("Venezuelan oil", "Venezuela"),
        ("Congolese troops", "Congo"),
    ],
)
def test_english_demonyms(tagger: Geotagger, line: str, place: str) -> None:
    """English demonyms and their plurals name the country."""
    assert places(tagger, line) == [place]


@pytest.mark.parametrize(
    ("line", "region"),
    [
        ("Explosions heard in Tehran", "MENA"),
        ("انفجارات في طهران", "MENA"),
        ("Explosiones en Teherán", "MENA"),
        ("Air raid alert in Kyiv", "Europe"),
        ("Protests in Caracas", "Latin America"),
        ("Ottawa responds", "US & Canada"),
        ("Canberra summons envoy", "Asia-Pacific"),
        ("Talks held in Doha", "MENA"),
    ],
)
def test_capitals(tagger: Geotagger, line: str, region: str) -> None:
    """Capitals map to their country's regions, in English and in CLDR's Arabic and Spanish names."""
    assert regions(tagger, line) == {region}


def test_congo_is_both_congos(tagger: Geotagger) -> None:
    """A bare "Congo" maps to both countries (DR Congo and Congo-Brazzaville), hence Africa."""
    [hit] = tagger.tag("Fighting in eastern Congo")
    assert set(hit.countries) == {"CD", "CG"}
    assert hit.regions == ("Africa",)


def test_region_level_names(tagger: Geotagger) -> None:
    """Names of regions themselves (Middle East, Latin America, الشرق الأوسط) tag the region, no country."""
    [hit] = tagger.tag("Carrier heads to the Middle East")
    assert (hit.countries, hit.regions) == ((), ("MENA",))
    assert regions(tagger, "Leaders of Latin America meet") == {"Latin America"}
    assert regions(tagger, "توتر في الشرق الأوسط") == {"MENA"}


# --- ambiguity rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Michael Jordan buys a team", []),
        ("Jordan Peterson speaks in London", ["London"]),
        ("Jordan's king meets Egyptian president", ["Jordan", "Egypt"]),
        ("King of Jordan visits Washington", ["Jordan", "United States"]),
        ("Protests in Amman, Jordan", ["Amman", "Jordan"]),
        ("Jordan closes its airspace", ["Jordan"]),
        ("Chad Daybell trial resumes", []),
        ("Chad: soldiers killed near the border", ["Chad"]),
    ],
)
def test_person_names_are_not_places(tagger: Geotagger, line: str, expected: list[str]) -> None:
    """Jordan/Chad do not count next to a capitalised word that is no place (a person's name)."""
    assert places(tagger, line) == expected


def test_person_rule_is_off_in_title_case(tagger: Geotagger) -> None:
    """In a Title Case Headline every word is capitalised, so the neighbours prove nothing: Jordan counts."""
    assert places(tagger, "Jordan Closes Border Crossing With Syria After Clashes") == ["Jordan", "Syria"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("nice weather in the north", []),
        ("Nice: truck attack on the promenade", ["Nice"]),
        ("a turkey dinner", []),
        ("Turkey shells Kurdish positions", ["Turkey"]),
        ("tell us what happened", []),
        ("US warships head to the region", ["United States"]),
        ("U.S. envoy arrives", ["United States"]),
    ],
)
def test_latin_names_need_capitals(tagger: Geotagger, line: str, expected: list[str]) -> None:
    """Latin-script names count only when capitalised in the text; acronyms only in capitals."""
    assert places(tagger, line) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Elections in Guinea-Bissau", ["Guinea-Bissau"]),
        ("Papua New Guinea earthquake", ["Papua New Guinea"]),
        ("Equatorial Guinea oil", ["Equatorial Guinea"]),
        ("Guinea junta", ["Guinea"]),
        ("Nigeria floods", ["Nigeria"]),
        ("Niger coup", ["Niger"]),
        ("South Sudan and Sudan talks", ["South Sudan", "Sudan"]),
        ("New Mexico wildfire", ["New Mexico (US state)"]),
    ],
)
def test_longest_name_wins(tagger: Geotagger, line: str, expected: list[str]) -> None:
    """The longest name wins, whole words only: Guinea-Bissau is not Guinea, Nigeria is not Niger."""
    assert places(tagger, line) == expected


def test_georgia_is_the_country_unless_us_cues(tagger: Geotagger) -> None:
    """Georgia is the country; with a US cue (Atlanta, "US state") anywhere in the texts, the US state."""
    assert tagger.regions("Protests in Georgia over foreign agents law") == {
        "Asia": ["Georgia"],
        "Europe": ["Georgia"],
    }
    assert tagger.regions("Georgia votes", "Long lines in Atlanta suburbs") == {
        "US & Canada": ["Georgia", "Atlanta"]
    }


def test_town_comma_us_state_is_a_us_town(tagger: Geotagger) -> None:
    """ "Lebanon, Pennsylvania" and "Paris, Texas" are US towns; "Tbilisi, Georgia" stays the country."""
    assert regions(tagger, "A fire in Lebanon, Pennsylvania") == {"US & Canada"}
    assert places(tagger, "Paris, Texas mayor resigns") == ["Texas (US state)"]
    assert places(tagger, "Athens, Georgia police") == ["Georgia (US state)"]
    assert places(tagger, "Rally in Tbilisi, Georgia") == ["Tbilisi", "Georgia"]


def test_blockers_tag_nothing(tagger: Geotagger) -> None:
    """Phrases such as Indian Ocean or Al Mayadeen English contain a place word but tag nothing."""
    assert tagger.tag("Cyclone in the Indian Ocean") == []
    assert tagger.tag("Al Mayadeen English") == []


# --- the taxonomy ---------------------------------------------------------------------------------------


def test_expansion_adds_ancestors() -> None:
    """Palestine sits inside MENA: expanding it, or a Palestinian country, adds MENA."""
    taxonomy = RegionTaxonomy.load()
    assert taxonomy.expand(["Palestine"]) == ("MENA", "Palestine")
    assert taxonomy.expand(["Europe"]) == ("Europe",)
    assert taxonomy.regions_of("PS") == ("MENA", "Palestine")
    assert taxonomy.parent("Palestine") == "MENA"


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("IL", ("MENA",)),
        ("EG", ("Africa", "MENA")),
        ("TR", ("MENA",)),
        ("CN", ("Asia", "Asia-Pacific")),
        ("IN", ("Asia",)),
        ("ID", ("Asia-Pacific",)),
        ("RU", ("Europe",)),
        ("MX", ("Latin America",)),
        ("ca", ("US & Canada",)),
        ("AQ", ()),
        ("ZZ", ()),
    ],
)
def test_default_regions_of_countries(code: str, expected: tuple[str, ...]) -> None:
    """The default taxonomy's documented choices, per country."""
    assert RegionTaxonomy.load().regions_of(code) == expected


def test_every_inhabited_country_has_a_region() -> None:
    """Only Antarctica and the uninhabited territories are left out of the default taxonomy."""
    taxonomy = RegionTaxonomy.load()
    missing = {code for code in geo.country_codes() if not taxonomy.regions_of(code)}
    assert missing == {"AQ", "BV", "GS", "HM", "TF", "UM", "IO"}


def test_override_replaces_the_defaults(tmp_path: Path) -> None:
    """A regions.yaml in the config directory replaces the packaged taxonomy (here: IL under Palestine)."""
    path = tmp_path / "regions.yaml"
    path.write_text(
        "MENA: [LB, SY, IL, PS]\nPalestine:\n  parent: MENA\n  countries: [PS, IL]\n", encoding="utf-8"
    )
    taxonomy = RegionTaxonomy.load(path)
    assert taxonomy.regions_of("IL") == ("MENA", "Palestine")
    assert taxonomy.regions_of("EG") == ()
    tagger = Geotagger(taxonomy)
    assert tagger.regions("Israeli strike in Lebanon") == {
        "MENA": ["Israeli", "Lebanon"],
        "Palestine": ["Israeli"],
    }


def test_packaged_regions_file_loads_as_an_override() -> None:
    """The packaged file is itself a valid override (same format)."""
    taxonomy = RegionTaxonomy.load(geo.DATA_DIR / geo.REGIONS_FILE)
    assert taxonomy.regions_of("PS") == RegionTaxonomy.load().regions_of("PS")


def override_problems(tmp_path: Path, text: str) -> list[tuple[int, str]]:
    """Write ``text`` as regions.yaml and return the (line, message) problems its loading raises."""
    path = tmp_path / "regions.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        RegionTaxonomy.load(path)
    assert all(problem.file == str(path) for problem in caught.value.problems)
    return [(problem.line, problem.message) for problem in caught.value.problems]


def marked_line(text: str) -> int:
    """The 1-based line carrying the MARK comment."""
    return next(number for number, line in enumerate(text.splitlines(), 1) if MARK in line)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("MENA:\n  - LB\n  - XX  # HERE\n", "unknown country code 'XX' in MENA"),
        ("Europe: [FR, DE]\nNordics: [SE]  # HERE\n", "unknown region 'Nordics'"),
        ("Palestine:\n  countries: [PS]\n  parent: Levant  # HERE\n", "unknown parent region 'Levant'"),
        ("Europe:\n  - FR\n  - false  # HERE\n", "false is read as a boolean: quote it"),
        ("Europe:\n  countries: [FR]\n  members: [DE]  # HERE\n", "unknown field 'members'"),
        (
            "MENA:\n  parent: Palestine  # HERE\n  countries: [LB]\n"
            "Palestine:\n  parent: MENA\n  countries: [PS]\n",
            "cycle: MENA -> Palestine -> MENA",
        ),
        ("MENA: [LB]\nEurope: FR: DE  # HERE\n", "invalid YAML"),
    ],
)
def test_override_errors_name_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    """Each mistake in a regions.yaml becomes a ConfigError problem at its file and line."""
    found = override_problems(tmp_path, text)
    assert any(line == marked_line(text) and message in problem for line, problem in found), found


def test_missing_override_file_is_a_config_error(tmp_path: Path) -> None:
    """An override path that does not exist is a ConfigError, not a crash."""
    with pytest.raises(ConfigError, match="file not found"):
        RegionTaxonomy.load(tmp_path / "regions.yaml")


# --- data and speed -------------------------------------------------------------------------------------


def test_data_coverage() -> None:
    """The packages give every ISO country a name, and thousands of names, cities and capitals in all."""
    stats = geo.stats()
    assert stats["countries"] >= 249
    assert stats["cities"] >= 1500
    assert stats["capitals"] >= 240
    assert stats["keys"] >= 4500


def test_overlay_has_no_conflicting_names() -> None:
    """No normalised name in places.yaml points at two different places."""
    assert packaged().conflicts == ()


def test_overlay_mistakes_name_file_and_line(tmp_path: Path) -> None:
    """An unknown code or region in places.yaml is reported at its line, as config mistakes are."""
    path = tmp_path / "places.yaml"
    path.write_text(
        "countries:\n  QQ: {names: [Nowhere]}\nplaces:\n  Atlantis:\n    regions: [Oceanus]\n",
        encoding="utf-8",
    )
    problems = add_overlay(Builder([]), load(path), {"PS": "Palestine"})
    assert [(problem.line, problem.message) for problem in problems] == [
        (2, "unknown country code 'QQ'"),
        (5, "unknown region 'Oceanus'"),
    ]
