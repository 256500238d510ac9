"""What a message says of its story (pure): an update is titled ``Update: <headline>`` and lists what it
changed (``What changed: 12 killed (was 8); confirmed``); a story's first alert names the other feeds that
reported it (``Also reported by: reuters, bbc``). Each channel kind places and escapes these lines
(:mod:`alerts.delivery.render`, :mod:`alerts.delivery.plain`)."""

from __future__ import annotations

from collections.abc import Sequence

from alerts.models import Alert

UPDATE_PREFIX = "Update: "
CHANGES_LABEL = "What changed: "
SOURCES_LABEL = "Also reported by: "
MAX_CHANGES = 10  # changes listed at most (the matcher's first, the most material)
CHANGE_LIMIT = 120  # characters of one change
MAX_SOURCES = 8  # feeds named at most, then "(+N more)"
SOURCE_LIMIT = 60  # characters of one feed name


def titled(alert: Alert, headline: str) -> str:
    """``headline`` as the message shows it: ``Update: <headline>`` for an update, else unchanged."""
    return UPDATE_PREFIX + headline if alert.update else headline


def changed(alert: Alert) -> str | None:
    """``What changed: a; b`` for an update with changes, else None."""
    if not alert.update:
        return None
    changes = [_short(change, CHANGE_LIMIT) for change in alert.changes[:MAX_CHANGES]]
    changes = [change for change in changes if change]
    return CHANGES_LABEL + "; ".join(changes) if changes else None


def others(alert: Alert, sources: Sequence[str]) -> list[str]:
    """The feeds other than the alert's own that reported its story, the first first, once each."""
    own = " ".join(alert.feed.split())
    names = (" ".join(str(source).split()) for source in sources)
    return [name for name in dict.fromkeys(names) if name and name != own]


def also_reported(alert: Alert, sources: Sequence[str]) -> str | None:
    """``Also reported by: a, b (+N more)`` for a story's first alert that others reported, else None."""
    names = others(alert, sources)
    if alert.update or not names:
        return None
    shown = ", ".join(_short(name, SOURCE_LIMIT) for name in names[:MAX_SOURCES])
    more = f" (+{len(names) - MAX_SOURCES} more)" if len(names) > MAX_SOURCES else ""
    return SOURCES_LABEL + shown + more


def story_lines(alert: Alert, sources: Sequence[str]) -> tuple[str | None, str | None]:
    """The ``What changed`` and ``Also reported by`` lines of ``alert`` (None where it has none)."""
    return changed(alert), also_reported(alert, sources)


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0] or text[: limit - 1]
    return cut + "…"
