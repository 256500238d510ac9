"""An item -> what its headline pins down about the event: content words (stemmed, per language),
places (the geotagger's canonical names, so "خان يونس" and "Khan Younis" agree), actors, what
happened, numbers and tolls, update cues, and when. Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from alerts.matching.analysis import detect_language, stem_keys
from alerts.matching.geo import Geotagger, country_places
from alerts.matching.stories import lexicon, numbers, sounds
from alerts.models import FeedItem
from alerts.text import arabic_forms, is_arabic, words

# what happened
EVENT_CONCEPTS = frozenset(
    [
        "attack",
        "court",
        "demolition",
        "quake",
        "flood",
        "storm",
        "fire",
        "election",
        "protest",
        "ceasefire",
        "talks",
        "arrest",
        "explosion",
        "shooting",
        "crash",
        "resign",
        "sanctions",
        "intercept",
        "incursion",
        "clash",
        "operation",
        "collapse",
        "kidnap",
        "capture",
        "sinking",
        "stabbing",
        "ramming",
        "assassination",
        "execution",
        "walkout",
        "coup",
        "outbreak",
        "volcano",
        "blackout",
        "blockade",
        "heatwave",
        "agreement",
        "dismissal",
        "victory",
        "censure",
        "landslide",
        "rain",
    ]
)
# what was hit: two strikes in one town, on a car and on a house, are two events
TARGET_CONCEPTS = frozenset(
    [
        "house",
        "car",
        "motorcycle",
        "school",
        "hospital",
        "camp",
        "ship",
        "boat",
        "checkpoint",
        "tank",
        "market",
        "mosque",
        "port",
        "airport",
        "base",
        "plant",
        "shelter",
        "site",
        "warship",
        "warehouse",
        "truck",
        "bulldozer",
        "police_station",
        "convoy",
        "bus",
        "train",
        "plane",
        "hotel",
    ]
)
NATURAL_CONCEPTS = frozenset(["quake", "flood", "storm", "fire", "landslide", "rain", "volcano", "heatwave"])
VERDICT_CONCEPTS = frozenset(["acquittal", "conviction"])  # a court acquits; a court jails
WEAPON_CONCEPTS = frozenset(["drone", "missile", "artillery", "bomb", "aircraft"])  # ... and with what
# beyond countries and regions: places the size of a war, and groups the geotagger knows as places
COARSE_PLACES = frozenset({"Gaza", "Gaza Strip", "West Bank", "Hezbollah", "Ansar Allah"})
SETS = (
    "terms",
    "places",
    "fine",
    "countries",
    "actors",
    "concepts",
    "numbers",
    "tolls",
    "cues",
    "names",
    "sounds",
)
# a capitalised word, or an acronym (SBU, UKMTO, M23)
_CAPITALISED = re.compile(r"\b(?:[A-Z][a-z\u00e0-\u00ff]{2,}(?:['\u2019]s)?|[A-Z]{2,6}|[A-Z]\d{1,3})\b")
_SPANISH = frozenset(words("el la los las del y que por para con una según tras muertos personas dos años"))
_ENGLISH = frozenset(words("the of and to for with says killed after is are was on at by"))


@dataclass(frozen=True, slots=True)
class StoryPrint:
    """What one report says about its event."""

    lang: str  # "en", "es" or "ar"
    terms: frozenset[str]  # content words, stemmed in the report's language
    places: frozenset[str]  # canonical place names, every one
    fine: frozenset[str]  # those finer than a country or a region (towns, camps, provinces)
    countries: frozenset[str]
    actors: frozenset[str]
    concepts: frozenset[str]
    numbers: frozenset[float]
    tolls: frozenset[float]  # numbers said of the killed or injured
    cues: frozenset[str]  # update cues: rises, confirmed, dies, claims
    # capitalised words nobody knows (a ship, a village), in Arabic every word left over: two
    # reports alike but for these are two events
    names: frozenset[str]
    # the consonants of its names (Latin script) or of its unknown words (Arabic): كفركلا and
    # Kfarkela meet where no table knows either (alerts.matching.stories.sounds)
    sounds: frozenset[str]
    at: float  # when it was published (or first seen), unix seconds
    title: str = ""
    events: frozenset[str] = field(init=False, compare=False)  # the concepts that say what happened
    targets: frozenset[str] = field(init=False, compare=False)  # ... what was hit
    weapons: frozenset[str] = field(init=False, compare=False)  # ... with what
    facts: frozenset[str] = field(init=False, compare=False)  # what any language says alike
    features: frozenset[str] = field(init=False, compare=False)  # everything compared in one language

    def __post_init__(self) -> None:
        facts = frozenset(
            [
                *(f"p:{place}" for place in self.places),
                *(f"a:{actor}" for actor in self.actors),
                *(f"c:{concept}" for concept in self.concepts),
                *(f"n:{number:g}" for number in self.numbers),
            ]
        )
        object.__setattr__(self, "events", self.concepts & EVENT_CONCEPTS)
        object.__setattr__(self, "targets", self.concepts & TARGET_CONCEPTS)
        object.__setattr__(self, "weapons", self.concepts & WEAPON_CONCEPTS)
        object.__setattr__(self, "facts", facts)
        object.__setattr__(self, "features", self.terms | facts)

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (sets as sorted lists)."""
        data: dict[str, Any] = {"lang": self.lang, "at": self.at, "title": self.title}
        for name in SETS:
            data[name] = sorted(getattr(self, name))
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoryPrint:
        """Inverse of :meth:`to_json`."""
        sets = {name: frozenset(data.get(name) or ()) for name in SETS}
        return cls(lang=data["lang"], at=float(data["at"]), title=data.get("title", ""), **sets)


class Fingerprinter:
    """Makes :class:`StoryPrint` s with one geotagger (thread-safe as the geotagger is)."""

    def __init__(self, geotagger: Geotagger) -> None:
        self._geo = geotagger

    def fingerprint(self, item: FeedItem, at: float, lang: str | None = None) -> StoryPrint:
        """The print of ``item``'s headline (the summary adds nothing: ticker lines have none, and
        an article's summary says much that is not the event)."""
        title_words = words(item.title)
        language = _language(item.title, title_words, lang)
        hits = self._geo.tag(item.title)
        places = frozenset(hit.place for hit in hits)
        coarse = _coarse_places()
        stop = lexicon.stop_forms()
        stated = numbers.stated(item.title, title_words)
        named = {word for hit in hits for word in words(hit.text)}  # counted as their place instead
        terms = frozenset(
            _term(word, language)
            for word in title_words
            if word not in stop
            and word not in named
            and not numbers.is_number(word)
            and word not in lexicon.number_words()
            and not lexicon.is_known(word)  # a word of the lexicon counts as its concept or actor
        )
        concepts, cues = _concepts_and_cues(title_words, named)
        fine = frozenset(place for place in places if place not in coarse)
        names = _arabic_names(title_words) if language == "ar" else _names(item.title, named)
        return StoryPrint(
            lang=language,
            terms=terms,
            places=places,
            fine=fine,
            countries=frozenset(code for hit in hits for code in hit.countries),
            actors=frozenset(lexicon.lookup("actors", title_words)),
            concepts=frozenset(concepts),
            numbers=stated,
            tolls=numbers.tolls(stated - numbers.durations(title_words), concepts),
            cues=frozenset(cues),
            names=names,
            sounds=_arabic_sounds(title_words, named) if language == "ar" else sounds.sounds([*names, *fine]),
            at=at,
            title=item.title,
        )


def _concepts_and_cues(title_words: list[str], named: set[str]) -> tuple[set[str], set[str]]:
    """What happened (and to what, with what), and the update cues, with the words' context: a
    quake's "strikes" is no attack, "no casualties" no toll, gunmen who kill a shooting."""
    unplaced = [word for word in title_words if word not in named]  # Port-au-Prince is no port
    concepts = lexicon.lookup("concepts", unplaced)
    if concepts & (NATURAL_CONCEPTS | {"sanctions"}):  # "a quake strikes", sanctions "target" a sector
        concepts.discard("attack")
    if "gunmen" in concepts and concepts & lexicon.NUMBER_CONTEXT:  # gunmen kill 5; gunmen abduct a priest
        concepts.add("shooting")
    if "attack" in concepts and _LABOUR.intersection(title_words) and not concepts & WEAPON_CONCEPTS:
        concepts.discard("attack")  # rail workers strike over pensions
        concepts.add("walkout")
    numbered = lexicon.number_words()  # nueve (nine) is no nuevamente (again)
    cues = lexicon.lookup("cues", [word for word in title_words if word not in numbered])
    if _again(title_words):  # "a new Israeli airstrike", "غارة إسرائيلية جديدة"
        cues.add("again")
    if _unharmed(title_words):  # "sin causar heridos", "no one was hurt"
        cues.add("unharmed")
    if "unharmed" in cues:  # nobody killed or hurt
        concepts -= lexicon.NUMBER_CONTEXT
    if numbers.part_of(title_words, numbered):  # "three of the miners", "أحد الجنود": some of those told
        cues.add("part")
    return concepts, cues


_LABOUR = frozenset(
    words(
        "workers union unions unionists pension pensions wage wages pay salaries teachers doctors "
        "nurses dockers staff employees nationwide rail transport trabajadores sindicato sindicatos "
        "salarios docentes maestros médicos huelga نقابة النقابات عمال العمال الأجور المعلمين"
    )
)
_NEGATIONS = frozenset(words("no without sin ningún ninguna none zero دون بدون لا ولا لم"))


_NEW_BEFORE = frozenset(words("new fresh nuevo nueva nuevos nuevas"))  # ... a new (Israeli) strike
_NEW_AFTER = frozenset(words("جديد جديدة جديدين جديدتين"))  # غارة (إسرائيلية) جديدة
_HAPPENINGS = frozenset(
    ["attack", "explosion", "quake", "shooting", "stabbing", "ramming", "incursion", "clash", "intercept"]
)


def _again(title_words: list[str]) -> bool:
    """ "New" within three words before (Arabic: two after) a word of what happened: it happened
    again. A new commander, a new law are no news of this kind."""
    for position, word in enumerate(title_words):
        if word in _NEW_BEFORE:
            window = title_words[position + 1 : position + 4]
        elif word in _NEW_AFTER:
            window = title_words[max(0, position - 2) : position]
        else:
            continue
        if lexicon.lookup("concepts", window) & _HAPPENINGS:
            return True
    return False


def _unharmed(title_words: list[str]) -> bool:
    """A word of harm (killed, injured) within three words after a negation."""
    return any(
        word in _NEGATIONS
        and lexicon.lookup("concepts", title_words[position + 1 : position + 4]) & lexicon.NUMBER_CONTEXT
        for position, word in enumerate(title_words)
    )


def _names(title: str, placed: set[str]) -> frozenset[str]:
    """Capitalised words of a Latin-script headline that no table knows and that do not start it or
    a clause (after a colon): the names of ships, villages, people the lexicon lacks."""
    found = set()
    for clause in re.split(r"[:\u2014\u2013-]\s", title):
        for position, match in enumerate(_CAPITALISED.finditer(clause)):
            word = match.group()
            if position == 0 and clause.lstrip().startswith(word):
                continue
            (normal,) = words(word) or [""]
            if (
                normal
                and normal not in placed
                and not lexicon.is_known(normal)
                and not lexicon.is_title(normal)
            ):
                found.add(normal)
    return frozenset(found)


def _language(title: str, title_words: list[str], given: str | None) -> str:
    if given in ("en", "es", "ar"):
        return given
    if detect_language(title) == "ar":
        return "ar"
    spanish = sum(word in _SPANISH for word in title_words)
    english = sum(word in _ENGLISH for word in title_words)
    return "es" if spanish > english else "en"


def _term(word: str, language: str) -> str:
    """One stem per word, in the report's language; an Arabic word by the shortest stem of its forms
    without the attached prepositions and conjunctions (لمركز and مركز are one word)."""
    if is_arabic(word):
        stems = {
            key for form in {word, *arabic_forms(word)} for key in stem_keys(form) if key.startswith("ar:")
        }
        return min(stems, key=lambda key: (len(key), key)) if stems else word
    prefix = f"{'es' if language == 'es' else 'en'}:"
    return next((key for key in sorted(stem_keys(word)) if key.startswith(prefix)), word)


def _arabic_names(title_words: list[str]) -> frozenset[str]:
    """The words an Arabic headline names after a ship, village, town, neighbourhood or camp
    (السفينة ماجيك سيز, قرية سنجل): Arabic has no capitals to tell a name."""
    markers = lexicon.name_markers()
    found = set()
    for position, word in enumerate(title_words):
        if word in markers or any(form in markers for form in arabic_forms(word)):
            for name in title_words[position + 1 : position + 3]:
                if name in lexicon.stop_forms() or lexicon.is_known(name) or lexicon.is_title(name):
                    break
                found.add(name)
    return frozenset(found)


def _arabic_sounds(title_words: list[str], placed: set[str]) -> frozenset[str]:
    """The skeletons of an Arabic headline's words that no table knows, alone and with the next
    such word (أم درمان): the names a Latin-script report may write."""
    runs: list[list[str]] = [[]]
    for word in title_words:
        if (
            word in placed
            or word in lexicon.stop_forms()
            or lexicon.is_known(word)
            or lexicon.is_title(word)
            or word in lexicon.name_markers()
            or numbers.is_number(word)
            or word in lexicon.number_words()
        ):
            runs.append([])
        else:
            runs[-1].append(word)
    bare = [form for run in runs for word in run for form in arabic_forms(word)]  # بكراكاس: كراكاس
    return sounds.sounds(bare).union(*(sounds.sounds(run, neighbours=True) for run in runs if run))


@cache
def _coarse_places() -> frozenset[str]:
    """Place names that stand for a whole country or region (compared only as context)."""
    return country_places() | COARSE_PLACES
