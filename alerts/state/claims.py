"""Dedupe claims: an item of a feed, or a story for a subscriber, is claimed once.

A claim is held (``p:<owner>``) while its work is being recorded, then confirmed (``d``) for the
dedupe window; a worker that dies in between leaves held claims that the next poll takes over as
soon as the owner's heartbeat lapses (:mod:`alerts.state.liveness`), so the work is redone (and
the outbox dedupes its deliveries). The hold bounds a worker that lives but is stuck. Each batch
is one Lua call.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import redis

from alerts.errors import StoreUnavailable
from alerts.state import keys
from alerts.state.connection import script, translated
from alerts.state.liveness import Liveness

CONFIRMED = "d"


@dataclass(frozen=True, slots=True)
class Held:
    """Claims this worker holds until its work is recorded: then confirmed, or released on failure."""

    keys: tuple[str, ...] = ()

    def __add__(self, other: Held) -> Held:
        return Held(self.keys + other.keys)


@dataclass(frozen=True, slots=True)
class ItemClaim:
    """The outcome of claiming a feed's items: which were new, and the claims of those."""

    won: list[bool]
    held: Held


@dataclass(frozen=True, slots=True)
class StoryClaim:
    """The outcome of claiming (subscriber, story) pairs: which won, and the claims of each pair."""

    won: list[bool]
    groups: tuple[tuple[str, ...], ...]

    @property
    def held(self) -> Held:
        """The claims of every pair, won or not (a loser's keys join its story)."""
        return Held(tuple(key for group in self.groups for key in group))

    def part(self, positions: Iterable[int]) -> Held:
        """The claims of the pairs at ``positions``."""
        return Held(tuple(key for position in positions for key in self.groups[position]))


class Claims:
    """Claims of items and stories."""

    def __init__(self, client: redis.Redis, liveness: Liveness) -> None:
        self._client = client
        self._liveness = liveness
        self._items = script(client, "claim_items")
        self._stories = script(client, "claim_stories")
        self._confirm = script(client, "confirm")
        self._release = script(client, "release")

    def items(self, feed: str, item_ids: Sequence[str], ttl: int, hold: int | None = None) -> ItemClaim:
        """For each item id, whether this call is the first to see it in ``ttl`` seconds.

        New claims are held for ``hold`` seconds (default: ``ttl``) until confirmed.
        """
        if not item_ids:
            return ItemClaim([], Held())
        item_keys = [keys.item_seen(feed, item_id) for item_id in item_ids]
        owner, stale = self._liveness.owner, self._liveness.stale()
        with translated():
            result = self._items(keys=[keys.WORKERS, *item_keys], args=[ttl, hold or ttl, owner, stale])
        won = [bool(flag) for flag in result]
        return ItemClaim(won, Held(tuple(key for key, new in zip(item_keys, won, strict=True) if new)))

    def stories(self, pairs: Sequence[tuple[str, Sequence[str]]], hold: int) -> StoryClaim:
        """For each (subscriber, story keys), True if none of its keys was claimed before; all its keys
        are then held for ``hold`` seconds."""
        if not pairs:
            return StoryClaim([], ())
        groups = tuple(
            tuple(keys.story_sent(subscriber, key) for key in story) for subscriber, story in pairs
        )
        flat = [key for group in groups for key in group]
        owner, stale = self._liveness.owner, self._liveness.stale()
        with translated():
            result = self._stories(
                keys=[keys.WORKERS, *flat], args=[hold, owner, stale, *(len(group) for group in groups)]
            )
        return StoryClaim([bool(flag) for flag in result], groups)

    def confirm(self, held: Held, ttl: int) -> None:
        """Make held claims final for ``ttl`` seconds (their work is recorded)."""
        if held.keys:
            with translated():
                self._confirm(keys=list(held.keys), args=[CONFIRMED, ttl])

    def release(self, held: Held) -> None:
        """Undo claims whose work could not be handed on (so a retry can claim them again); while
        Redis is away, as soon as it is back."""
        if not held.keys:
            return
        value = "p:" + self._liveness.owner

        def release() -> None:
            with translated():
                self._release(keys=list(held.keys), args=[value])

        try:
            release()
        except StoreUnavailable:
            self._liveness.later(release)
