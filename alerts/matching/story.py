"""What makes two items the same story: a canonical link, or the same normalised headline."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

from w3lib.url import canonicalize_url, url_query_cleaner

from alerts.models import FeedItem
from alerts.text import normalise

MIN_HEADLINE_WORDS = 3  # shorter headlines ("Live updates") are too generic to identify a story

_TRACKING = re.compile(
    r"^(utm_\w+|at_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|yclid|_ga|_gl|ocid|cmpid|"
    r"traffic_source|maca|ito|ns_\w+|ref|ref_src|smid|xtor|wt_mc|spm|s_cid|mkt_tok|oly_\w+|vero_\w+|"
    r"__twitter_impression)$",
    re.IGNORECASE,
)


def canonical_link(link: str) -> str:
    """``link`` without scheme, ``www.``, default port, fragment or tracking parameters; query sorted."""
    try:
        query = urlsplit(link).query
        tracking = [key for key, _ in parse_qsl(query, keep_blank_values=True) if _TRACKING.match(key)]
        cleaned = url_query_cleaner(link, tracking, remove=True) if tracking else link
        parts = urlsplit(canonicalize_url(cleaned))
        port = parts.port
    except ValueError:
        return link
    host = (parts.hostname or "").removeprefix("www.")
    if port and port not in (80, 443):
        host += f":{port}"
    path = parts.path.rstrip("/") or "/"
    return host + path + (f"?{parts.query}" if parts.query else "")


def headline_key(title: str) -> str | None:
    """The normalised headline, or None when it is too short to identify a story."""
    normal = normalise(title)
    return normal if len(normal.split()) >= MIN_HEADLINE_WORDS else None


def story_keys(item: FeedItem) -> tuple[str, ...]:
    """Every key that identifies the item's story; two items sharing any key are one story."""
    keys = []
    if item.link:
        keys.append("link:" + canonical_link(item.link))
    headline = headline_key(item.title)
    if headline:
        keys.append("headline:" + headline)
    if not keys:
        keys.append("id:" + item.id)
    return tuple(keys)
