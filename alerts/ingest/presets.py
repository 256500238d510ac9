"""Ready-made HTML sources of the reference site (``preset:`` in feeds.yaml): its English, Arabic and
Spanish editions, read off the public scrapers' selectors."""

from __future__ import annotations

from dataclasses import dataclass

from alerts.ingest.html import Selectors


@dataclass(frozen=True, slots=True)
class Preset:
    """A ready-made HTML source of the reference site."""

    url: str
    format: str
    selectors: Selectors
    lang: str
    region: str | None = None


PRESETS: dict[str, Preset] = {
    "almayadeen-en": Preset(
        url="https://english.almayadeen.net/",
        format="html",
        selectors=Selectors(item=".ticker__item"),
        lang="en",
    ),
    "almayadeen-ar": Preset(
        url="https://www.almayadeen.net/",
        format="html",
        selectors=Selectors(item="#ticker-box ul li .ticker-item .ticker-text", title="a p", link="a@href"),
        lang="ar",
    ),
    # The headline links themselves: other h3 links (videos, opinion) and section headings are not news.
    "almayadeen-es": Preset(
        url="https://espanol.almayadeen.net/",
        format="html",
        selectors=Selectors(
            item="h3 a[href^='/news/']:not([href='/news/']), h3 a[href^='https://espanol.almayadeen.net/news/']",
            link="@href",
        ),
        lang="es",
    ),
}
