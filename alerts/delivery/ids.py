"""The identity of a delivery (pure): one (subscriber, story, URL) record in the outbox, where a story's
update is a story of its own (``<story>/update/<n>``), so it is never deduped against the first alert.

Every delivery id of an alert is :func:`delivery_of`; :func:`update_of` names the first alert's delivery
to the same URL, which an update is threaded under (e-mail ``In-Reply-To``, a Telegram reply, an ntfy
sequence, a webhook's ``update_of``).
"""

from __future__ import annotations

from alerts.models import Alert
from alerts.text import digest

MESSAGE_ID_DOMAIN = "breaking-alerts"


def delivery_id(subscriber: str, story: str, target: str) -> str:
    """The id of one (subscriber, story, URL digest) delivery."""
    return digest(f"{subscriber}\x1f{story}\x1f{target}")


def story_key(alert: Alert) -> str:
    """What the alert is once per subscriber: its story, or for an update ``<story>/update/<n>``."""
    return f"{alert.story}/update/{alert.update}" if alert.update else alert.story


def delivery_of(alert: Alert, target: str) -> str:
    """The id of ``alert``'s delivery to ``target`` (a URL's digest)."""
    return delivery_id(alert.subscriber, story_key(alert), target)


def update_of(alert: Alert, target: str) -> str | None:
    """For an update, the id of its story's first alert delivered to ``target``; None for a first alert."""
    return delivery_id(alert.subscriber, alert.story, target) if alert.update else None


def message_id(delivery: str) -> str:
    """The e-mail ``Message-ID`` of a delivery: the same on every attempt, and known to its updates."""
    return f"<{delivery}@{MESSAGE_ID_DOMAIN}>"
