"""Every Redis key and its lifetime, in one place."""

from __future__ import annotations

import hashlib

PREFIX = "alerts:"

SCHEDULE = PREFIX + "schedule"  # ZSET feed -> next due (unix seconds)
INTERVALS = PREFIX + "intervals"  # HASH feed -> poll interval (seconds)
SCHEDULE_FINGERPRINT = PREFIX + "schedule:fingerprint"  # STRING config fingerprint of the schedule
FEED_STATE = PREFIX + "feed:"  # HASH per feed: etag, last_modified, seeded, last_ok, last_error
POLL_LOCK = PREFIX + "lock:poll:"  # STRING per feed, held while one worker polls it
ITEM_SEEN = PREFIX + "seen:"  # STRING per (feed, item id): processed once
STORY_SENT = PREFIX + "story:"  # STRING per (subscriber, story key): alerted once
DELIVERY = PREFIX + "delivery:"  # STRING per (subscriber, story, url): sending / sent
WEBSUB = PREFIX + "websub:"  # HASH per feed: its WebSub subscription
WEBSUB_FEEDS = PREFIX + "websub:feeds"  # SET of feeds with a subscription
HOST_SLOTS = PREFIX + "host:"  # ZSET per host: poll slots in use (token -> expiry)

POLL_LOCK_TTL_MS = 60_000
DELIVERY_CLAIM_TTL = 300  # a crashed send is retried after this many seconds
DELIVERY_DONE_TTL = 7 * 24 * 3600


def digest(value: str) -> str:
    """A short, stable, key-safe digest of an arbitrary string."""
    return hashlib.blake2b(value.encode("utf-8"), digest_size=12).hexdigest()


def feed_state(feed: str) -> str:
    """The hash holding a feed's conditional-GET validators and health."""
    return FEED_STATE + feed


def poll_lock(feed: str) -> str:
    """The lock a worker holds while polling ``feed``."""
    return POLL_LOCK + feed


def host_slots(host: str) -> str:
    """The concurrent polls in progress on one host."""
    return HOST_SLOTS + host


def websub(feed: str) -> str:
    """The WebSub subscription of one feed."""
    return WEBSUB + "feed:" + feed


def article(url: str) -> str:
    """Cached metadata of one article page."""
    return f"{PREFIX}article:{digest(url)}"


def item_seen(feed: str, item_id: str) -> str:
    """Marks one item of one feed as processed."""
    return f"{ITEM_SEEN}{feed}:{digest(item_id)}"


def story_sent(subscriber: str, story_key: str) -> str:
    """Marks one story (canonical link or headline) as alerted to one subscriber."""
    return f"{STORY_SENT}{subscriber}:{digest(story_key)}"


def delivery(subscriber: str, story: str, target: str) -> str:
    """Tracks one alert to one of a subscriber's URLs."""
    return f"{DELIVERY}{subscriber}:{story}:{target}"
