"""Text that fits (pure): HTML escaping, lengths as Telegram counts them, cuts on a word boundary, times."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime

_HREF_UNSAFE = str.maketrans(
    {'"': "%22", "'": "%27", "<": "%3C", ">": "%3E", " ": "%20", "\n": None, "\r": None}
)


def clean(text: str) -> str:
    """``text`` with its whitespace collapsed to single spaces."""
    return " ".join(text.split())


def escape(text: str) -> str:
    """``text`` as HTML text (``<``, ``>`` and ``&`` escaped)."""
    return html.escape(text, quote=False)


def href(link: str) -> str:
    """An attribute-safe href; quotes are percent-encoded (Apprise turns ``&quot;`` back into ``"``)."""
    return html.escape(link.translate(_HREF_UNSAFE), quote=True)


def utf16(text: str) -> int:
    """Length in UTF-16 code units (as Telegram counts)."""
    return len(text.encode("utf-16-le")) // 2


def shorten(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, cut on a word boundary (see :func:`fit`)."""
    return fit(text, lambda s: len(s) <= limit)


def fit(text: str, fits: Callable[[str], bool]) -> str:
    """The longest word-prefix of ``text`` (+ "…" if cut) that ``fits``; a character cut for a huge word."""
    if fits(text):
        return text
    words = text.split(" ")
    low, high = 0, len(words) - 1  # the longest k with fits(words[:k] + "…"), by bisection
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(" ".join(words[:middle]) + "…") else (low, middle - 1)
    if low:
        return " ".join(words[:low]).rstrip() + "…"
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(text[:middle] + "…") else (low, middle - 1)
    return text[:low] + "…" if low else ""


def when(published: str | None) -> str | None:
    """``published`` as ``YYYY-MM-DD HH:MM UTC`` (naive times are taken as UTC), else as given."""
    if not published:
        return None
    try:
        moment = datetime.fromisoformat(published)
    except ValueError:
        return shorten(clean(published), 40)
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def iso(timestamp: float) -> str:
    """Epoch seconds as ISO 8601 in UTC."""
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
