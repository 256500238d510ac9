"""Stories in Redis: each open story's prints and sources, the buckets that find candidates for a new
report, what its sent alerts said, and who got its first alert. Everything expires with the dedupe
window. Prints are JSON objects made by the matching layer; this module only stores them."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis

from alerts.state import keys
from alerts.state.connection import execute_scripted, queue_script, script, translated

CANDIDATES = 4  # stories compared with each report at most (the best ranked by shared buckets)
MAX_PRINTS = 3  # prints kept per story: the first report's and the latest others'
BUCKET_CAP = 8  # stories kept per bucket (the newest): bounds the work of a very common bucket


@dataclass(frozen=True, slots=True)
class Candidate:
    """An open story a report may join: its reports' prints (a JSON list, as stored: the caller
    parses and may cache them), and what its sent alerts said (a JSON object, or "")."""

    story: str
    prints: str
    known: str


@dataclass(frozen=True, slots=True)
class Lookup:
    """The candidates of one report, and when (server time) they were read."""

    at: float
    candidates: list[Candidate]


@dataclass(frozen=True, slots=True)
class Filing:
    """A report to file: open ``story`` (``opened``) or join it. An opening is refused if another
    story was filed under one of its buckets since ``looked`` (unless ``force``)."""

    story: str
    feed: str
    print: dict[str, Any]
    buckets: Sequence[str]
    opened: bool
    title: str
    item: str
    looked: float = 0.0
    force: bool = False


@dataclass(frozen=True, slots=True)
class Raced:
    """An opening refused: these stories were filed under its buckets meanwhile."""

    stories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Story:
    """A story as ``alerts stories`` lists it."""

    story: str
    title: str
    feed: str
    item: str
    opened: float
    last: float
    updates: int
    sources: tuple[str, ...]
    recipients: tuple[str, ...]


class StoryState:
    """The stories of the dedupe window."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._candidates = script(client, "story_candidates")
        self._file = script(client, "story_file")
        self._update = script(client, "story_update")

    def candidates(self, buckets: Sequence[Sequence[str]], window: float) -> list[Lookup]:
        """For each report's bucket keys, the open stories (a report in the last ``window`` seconds)
        it may join."""
        if not buckets:
            return []

        def build(pipe: Any) -> None:
            for each in buckets:
                weights = Counter(each)  # a bucket standing for several bands counts as many
                queue_script(
                    pipe,
                    self._candidates,
                    [keys.story_bucket(key) for key in weights],
                    [window, CANDIDATES, keys.STORY_RECORD, *weights.values()],
                )

        with translated():
            results = execute_scripted(self._client, build, [self._candidates])
        found = []
        for flat in results:
            stories = [Candidate(flat[i], flat[i + 1], flat[i + 2] or "") for i in range(1, len(flat), 3)]
            found.append(Lookup(float(flat[0]), stories))
        return found

    def records(self, stories: Sequence[str]) -> list[Candidate]:
        """The prints of ``stories`` that are still open (for a report that raced them)."""
        with translated():
            pipe = self._client.pipeline(transaction=False)
            for story in stories:
                pipe.hmget(keys.story_record(story), "prints", "known")
            results = pipe.execute()
        return [
            Candidate(story, str(prints), str(known or ""))
            for story, (prints, known) in zip(stories, results, strict=True)
            if prints
        ]

    def file(self, filings: Sequence[Filing], ttl: int) -> list[tuple[str, ...] | Raced]:
        """Open or join each filing's story (in order): each story's sources after it, or
        :class:`Raced` for an opening that found stories filed meanwhile."""
        if not filings:
            return []

        def build(pipe: Any) -> None:
            for each in filings:
                story = each.story
                queue_script(
                    pipe,
                    self._file,
                    [
                        keys.story_record(story),
                        keys.story_sources(story),
                        keys.STORY_RECENT,
                        *(keys.story_bucket(key) for key in dict.fromkeys(each.buckets)),
                    ],
                    [
                        story,
                        each.feed,
                        "",
                        ttl,
                        json.dumps(each.print, ensure_ascii=False, separators=(",", ":")),
                        MAX_PRINTS,
                        "1" if each.opened else "0",
                        each.title,
                        each.item,
                        BUCKET_CAP,
                        each.looked,
                        "1" if each.force else "0",
                    ],
                )
            pipe.zremrangebyscore(keys.STORY_RECENT, "-inf", time.time() - ttl)

        with translated():
            results = execute_scripted(self._client, build, [self._file])
        return [
            Raced(tuple(str(story) for story in reply[1:]))
            if reply and reply[0] == "raced"
            else tuple(str(feed) for feed in reply)
            for reply in results[: len(filings)]
        ]

    def take_update(
        self, story: str, now: float, every: float, known: dict[str, Any]
    ) -> tuple[int, tuple[str, ...]]:
        """The story's next update number and its recipients, or (0, ()) if its last update was less
        than ``every`` seconds ago; ``known`` becomes what the story's alerts have said."""
        with translated():
            result = self._update(
                keys=[keys.story_record(story), keys.story_recipients(story)],
                args=[now, every, json.dumps(known, ensure_ascii=False, separators=(",", ":"))],
            )
        return int(result[0]), tuple(sorted(str(each) for each in result[1:]))

    def add_recipients(self, story_subscribers: Sequence[tuple[str, str]], ttl: int) -> None:
        """Note who got each story's first alert (its updates go to them)."""
        if not story_subscribers:
            return
        with translated():
            pipe = self._client.pipeline(transaction=False)
            for story, subscriber in story_subscribers:
                pipe.sadd(keys.story_recipients(story), subscriber)
            for story in {story for story, _ in story_subscribers}:
                pipe.expire(keys.story_recipients(story), ttl)
            pipe.execute()

    def sources(self, story: str) -> tuple[str, ...]:
        """The feeds that reported ``story``, the first first."""
        with translated():
            return tuple(str(feed) for feed in self._client.zrange(keys.story_sources(story), 0, -1))

    def recent(self, since: float, limit: int = 200) -> list[Story]:
        """The stories that gained a report since ``since``, the latest first."""
        with translated():
            ids = [
                str(each)
                for each in self._client.zrevrangebyscore(
                    keys.STORY_RECENT, "+inf", since, start=0, num=limit, withscores=False
                )
            ]
            pipe = self._client.pipeline(transaction=False)
            for story in ids:
                pipe.hmget(keys.story_record(story), "title", "feed", "item", "opened", "updates")
                pipe.zrange(keys.story_sources(story), 0, -1, withscores=True)
                pipe.smembers(keys.story_recipients(story))
            results = pipe.execute()
        stories = []
        for position, story in enumerate(ids):
            record, sources, recipients = results[3 * position : 3 * position + 3]
            if record[0] is None:
                continue
            stories.append(
                Story(
                    story=story,
                    title=str(record[0]),
                    feed=str(record[1]),
                    item=str(record[2]),
                    opened=float(record[3] or 0),
                    last=max((float(score) for _, score in sources), default=float(record[3] or 0)),
                    updates=int(record[4] or 0),
                    sources=tuple(str(feed) for feed, _ in sources),
                    recipients=tuple(sorted(str(each) for each in recipients)),
                )
            )
        return stories
