"""The numbers a headline states: digits in any script (5.1, 1,200, 4.000, ٨), words (eight, ocho,
ثمانية, شهيدان), with their scale (three thousand, 500 ألف), which of them are tolls, and whether a
number is some of those told ("three of the miners"). Pure."""

from __future__ import annotations

import itertools
import re
import unicodedata

from alerts.matching.stories import lexicon
from alerts.text import is_arabic, words

_NUMBER = re.compile(r"^\d+$")  # a word that is a number (words() splits "5.1")
_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")
_ARABIC_DIGITS = str.maketrans(
    {chr(base + digit): str(digit) for base in (0x0660, 0x06F0) for digit in range(10)}
)
_PARTITIVES = frozenset(words("أحد إحدى"))


def is_number(word: str) -> bool:
    """True for a word written in digits."""
    return bool(_NUMBER.match(word))


def stated(title: str, title_words: list[str]) -> frozenset[float]:
    """The numbers a headline states, in digits (5.1, 1,200, ٨) or words (eight, ocho, ثمانية);
    years and unstated numbers ("dozens") left out."""
    found: set[float] = set()
    for match in _DIGITS.finditer(unicodedata.normalize("NFKC", title).translate(_ARABIC_DIGITS)):
        text = match.group()
        thousands = re.fullmatch(r"\d{1,3}(?:,\d{3})+|\d{1,3}(?:\.\d{3})+", text)  # 4,000; 4.000
        value = float(re.sub(r"[.,]", "", text) if thousands else text.replace(",", "."))
        if not (1900 <= value <= 2100 and value.is_integer()):
            found.add(value)
    found.update(_number_words(title_words))
    named = lexicon.number_words()
    for before, word, after in zip(["", *title_words[:-1]], title_words, [*title_words[1:], ""], strict=True):
        value = float(word) if _NUMBER.match(word) else float(named.get(word, 0))
        if value and after in _SCALES:  # three thousand, 500 ألف, 2 millones
            found.discard(value)
            found.add(value * _SCALES[after])
        elif word in _ONE_SCALE and not (_NUMBER.match(before) or named.get(before)):  # مليون برميل
            found.add(_SCALES[word])
    return frozenset(found)


_ONE_SCALE = frozenset(words("million millón مليون ألف"))  # a scale word alone is one of it
_SCALES = {
    normal: scale
    for written, scale in (
        ("thousand thousands mil ألف آلاف الف", 1000.0),
        ("million millions millón millones مليون ملايين", 1_000_000.0),
    )
    for normal in words(written)
}


def durations(title_words: list[str]) -> set[float]:
    """Numbers of hours, days, weeks ("in one week", "48 horas", "خلال 24 ساعة"): no tolls."""
    named = lexicon.number_words()
    found = set()
    for word, after in itertools.pairwise(title_words):
        if after in _TIME_UNITS and (_NUMBER.match(word) or named.get(word)):
            found.add(float(word) if _NUMBER.match(word) else float(named[word]))
    return found


_TIME_UNITS = frozenset(
    words(
        "hour hours day days week weeks month months year years minutes hora horas día días semana "
        "semanas mes meses año años minutos ساعة ساعات يوم أيام يومين أسبوع أسابيع شهر أشهر"
    )
)


def _number_words(title_words: list[str]) -> set[float]:
    """Numbers written in words, compounds joined: twenty five (twenty-five), خمسة عشر (15)."""
    named = lexicon.number_words()
    found: set[float] = set()
    position = 0
    while position < len(title_words):
        value = named.get(title_words[position])
        if not value:
            position += 1
            continue
        after = named.get(title_words[position + 1], 0) if position + 1 < len(title_words) else 0
        if value >= 20 and value % 10 == 0 and 0 < after < 10:  # twenty five
            value, position = value + after, position + 1
        elif value < 10 and after == 10 and is_arabic(title_words[position]):  # خمسة عشر
            value, position = value + 10, position + 1
        found.add(float(value))
        position += 1
    return found


def tolls(numbers: frozenset[float], concepts: set[str]) -> frozenset[float]:
    """The numbers said of the killed or injured: whole numbers beside such words (a magnitude 6.1
    is no toll), none in a court's sentence."""
    if not concepts & lexicon.NUMBER_CONTEXT or "court" in concepts:
        return frozenset()
    return frozenset(number for number in numbers if number.is_integer())


def part_of(title_words: list[str], numbered: dict[str, int]) -> bool:
    """Some of a number told: "4 of the 9 miners", "tres de los ocho", or "one of" in Arabic (أحد).
    A number of a whole must follow: "story number 1 of the drill" is a label, not a part."""
    for position, word in enumerate(title_words):
        if word in _PARTITIVES:
            return True
        if not (_NUMBER.match(word) or numbered.get(word)):
            continue
        after = title_words[position + 1 : position + 3]
        if after[:1] == ["of"] or after in (["de", "los"], ["de", "las"]):
            whole = title_words[position + 2 : position + 5]
            if any(_NUMBER.match(each) or numbered.get(each) for each in whole):
                return True
    return False
