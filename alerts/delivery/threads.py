"""How a message joins its story's thread, per channel (pure: :mod:`alerts.delivery.channels` applies it).

- e-mail: every message's ``Message-ID`` is ``<delivery id@breaking-alerts>`` (the same on a retry); an
  update's ``In-Reply-To`` and ``References`` name its first alert's, so mail clients thread it.
- Telegram: an update replies to the first alert's message (``reply_parameters``, sent even if that
  message is gone). The Bot API's ``message_id`` of the first alert (per chat) is kept in its outbox
  record (``message_ref``); unknown (not sent yet, or expired), the update is sent unthreaded.
- ntfy (server 2.16 or newer): an update is published with the first alert's message id (per topic)
  as its sequence id (``X-Sequence-ID``), so clients replace that notification with the update instead
  of showing a second one; older servers ignore the header and show both.
- webhooks: the document's ``story``, ``update`` and ``update_of`` (see :mod:`alerts.delivery.render`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from alerts.delivery.ids import message_id

REPLY_SCHEMAS = frozenset({"tgram", "ntfy", "ntfys"})  # channels whose updates need the first message's ids


@dataclass(frozen=True, slots=True)
class Thread:
    """What one send needs to thread its message: each channel uses its part."""

    message_id: str | None = None  # e-mail: this message's Message-ID
    reply_to: str | None = None  # e-mail: the Message-ID of the story's first alert (an update's)
    replies: Mapping[str, str] = field(default_factory=dict)  # Telegram chat / ntfy topic -> first message id


def thread(delivery: str, update_of: str | None, first_ref: str | None = None) -> Thread:
    """The thread of ``delivery``; for an update, ``update_of`` is its first alert's delivery and
    ``first_ref`` what that delivery's record kept of the channel's message ids."""
    return Thread(
        message_id(delivery),
        message_id(update_of) if update_of else None,
        refs(first_ref) if update_of else {},
    )


def replies_need_refs(url: str) -> bool:
    """True when an update on ``url`` replies by the channel's own message ids (Telegram, ntfy)."""
    return url.split("://", 1)[0].strip().lower() in REPLY_SCHEMAS if "://" in url else False


def encode(found: Mapping[str, str]) -> str:
    """Message ids (chat or topic -> id) as the outbox record keeps them; "" for none."""
    return json.dumps(dict(sorted(found.items())), separators=(",", ":")) if found else ""


def refs(raw: str | None) -> dict[str, str]:
    """The message ids an outbox record kept ({} when none, or unreadable)."""
    try:
        found = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}
