"""Every Redis key of breaking-alerts, in one place."""

from __future__ import annotations

from alerts.text import digest

PREFIX = "alerts:"

SCHEDULE = PREFIX + "schedule"  # ZSET feed -> next due (unix seconds)
INTERVALS = PREFIX + "intervals"  # HASH feed -> poll interval (seconds)
SCHEDULE_FINGERPRINT = PREFIX + "schedule:fingerprint"  # STRING config fingerprint of the schedule
FEED_STATE = PREFIX + "feed:"  # HASH per feed: etag, last_modified, seeded, last_ok, last_error
POLL_LOCK = PREFIX + "lock:poll:"  # STRING per feed, held while one worker polls it
ITEM_SEEN = PREFIX + "seen:"  # STRING per (feed, item id): processed once
STORY_SENT = PREFIX + "story:"  # STRING per (subscriber, story key): alerted once
WEBSUB = PREFIX + "websub:"  # HASH per feed: its WebSub subscription
WEBSUB_FEEDS = PREFIX + "websub:feeds"  # SET of feeds with a subscription
OUTBOX = PREFIX + "outbox:"  # HASH per delivery (subscriber, story, URL): state, attempts, alert
OUTBOX_RECORD = OUTBOX + "d:"  # prefix of the HASH per delivery
OUTBOX_DUE = PREFIX + "outbox:due"  # ZSET delivery -> when to (re)try or check it
OUTBOX_DEAD = PREFIX + "outbox:dead"  # ZSET delivery -> when it was given up
OUTBOX_CREATED = PREFIX + "outbox:created"  # ZSET delivery not yet sent or dead -> when it was created
HISTORY = PREFIX + "history"  # STREAM of sent and dead deliveries
HOST_SLOTS = PREFIX + "host:"  # ZSET per host: poll slots in use (token -> expiry)
WORKERS = PREFIX + "workers"  # ZSET owner (one worker process) -> server time of its last heartbeat
OWNED = PREFIX + "owned:"  # SET per owner: the deliveries whose next step that process is to take
CONFIG = PREFIX + "config"  # HASH: the configuration the workers last loaded (or the edit they rejected)


def feed_state(feed: str) -> str:
    """The hash holding a feed's conditional-GET validators and health."""
    return FEED_STATE + feed


def poll_lock(feed: str) -> str:
    """The lock a worker holds while polling ``feed``."""
    return POLL_LOCK + feed


def owned(owner: str) -> str:
    """The deliveries one worker process is responsible for (handed out, received or being sent)."""
    return OWNED + owner


def host_slots(host: str) -> str:
    """The concurrent polls in progress on one host."""
    return HOST_SLOTS + host


HELD_DUE = PREFIX + "held:due"  # ZSET subscriber -> when its held alerts go out as a digest
HELD = PREFIX + "held:"  # prefix of the HASH per subscriber of its held alerts
HELD_TAKEN = PREFIX + "held-taken:"  # HASH per subscriber: held alerts a digest is being made of


def held(subscriber: str) -> str:
    """A subscriber's held alerts (story -> alert JSON), waiting for a digest."""
    return HELD + subscriber


def held_taken(subscriber: str) -> str:
    """A subscriber's held alerts taken for a digest whose deliveries are not recorded yet (its
    maker's, until then: given back if that process dies)."""
    return HELD_TAKEN + subscriber


def recent(subscriber: str) -> str:
    """Times of a subscriber's instant alerts in the last hour (for caps and bursts)."""
    return PREFIX + "recent:" + subscriber


def rate(destination: str) -> str:
    """The rate bucket (GCRA theoretical arrival time) of one destination."""
    return PREFIX + "rate:" + destination


def outbox(delivery: str) -> str:
    """One delivery's record."""
    return OUTBOX_RECORD + delivery


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


def websub_attempt(feed: str) -> str:
    """Set while one (re)subscription attempt of a feed is the only one allowed."""
    return WEBSUB + "attempt:" + feed


def websub_pending(feed: str, token: str) -> str:
    """HASH (with an expiry) of one (un)subscription request of a feed waiting for the hub's
    verification, by the token of its callback."""
    return WEBSUB + "pending:" + feed + ":" + token


def websub_refused(feed: str, hub: str) -> str:
    """Set while a refusal to subscribe a feed through a hub has been logged recently."""
    return f"{WEBSUB}refused:{feed}:{digest(hub)}"


STORIES = PREFIX + "stories:"  # one event reported by many items (alerts.matching.stories)
STORY_RECORD = STORIES + "s:"  # HASH per story: its fingerprint, first item, updates, last update
STORY_SOURCES = STORIES + "src:"  # ZSET per story: feed -> when it first reported the story
STORY_RECIPIENTS = STORIES + "to:"  # SET per story: the subscribers its first alert went to
STORY_BUCKET = STORIES + "b:"  # SET per sketch band or fact key: the stories that have it
STORY_RECENT = STORIES + "recent"  # ZSET story -> when it last gained a report


def story_record(story: str) -> str:
    """A story's record."""
    return STORY_RECORD + story


def story_sources(story: str) -> str:
    """The feeds that reported a story, by when each first did."""
    return STORY_SOURCES + story


def story_recipients(story: str) -> str:
    """The subscribers a story's first alert went to (its updates go to them)."""
    return STORY_RECIPIENTS + story


def story_bucket(key: str) -> str:
    """The stories sharing one sketch band or fact (``key`` is already a short digest)."""
    return STORY_BUCKET + key
