"""Story assignment for a poll's new items, before matching fans out: each item joins the open story
it reports (same language by its words and facts, other languages by its facts) or opens one; a
report that adds a material fact is an update of its story, for the subscribers who got it.

Two round trips per poll whatever its size: the candidates of every item (one Lua call each, in one
pipeline), then the filings. Two workers filing reports of one event at the same instant may each
open a story: a repeat, never a lost alert.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Container, Sequence
from dataclasses import dataclass
from functools import lru_cache

from alerts import log
from alerts.matching import alerts as fanout
from alerts.matching.geo import Geotagger
from alerts.matching.stories import sketch
from alerts.matching.stories.compare import StoryPolicy, Verdict, changes, compare, union
from alerts.matching.stories.fingerprint import Fingerprinter, StoryPrint
from alerts.matching.story import story_keys
from alerts.models import Alert, Feed, FeedItem, Match
from alerts.state.stories import Candidate, Filing, Raced, StoryState
from alerts.text import digest

_logger = log.get("alerts.stories")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where one item went: its story, who else reported it, and whether it is an update."""

    story: str
    opened: bool
    sources: tuple[str, ...] = ()
    update: int = 0  # > 0: this item is the story's n-th update
    changes: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()  # an update's: who got the story's first alert
    verdict: Verdict | None = None  # why it joined (None: it opened the story)


@dataclass(frozen=True, slots=True)
class StoryMatch:
    """The open story a report would join, and why (``alerts explain``)."""

    story: str
    title: str
    verdict: Verdict
    changes: tuple[str, ...]


class Storyline:
    """Places reports into stories (one per process: the fingerprinter caches words)."""

    def __init__(self, geotagger: Geotagger, policy: StoryPolicy, state: StoryState, ttl: int) -> None:
        self._prints = Fingerprinter(geotagger)
        self._policy = policy
        self._state = state
        self._ttl = ttl

    def place(self, feed: Feed, items: Sequence[FeedItem], now: float) -> list[Placement]:
        """The story of each item (in order), filed in Redis; updates taken (at most one per story
        every ``update_every``)."""
        if not items:
            return []
        prints = [self._prints.fingerprint(item, _at(item, now), feed.lang) for item in items]
        buckets = [sketch.bucket_keys(each) for each in prints]
        lookups = self._state.candidates(buckets, self._policy.window)
        opened_here: dict[str, dict[str, Candidate]] = {}  # bucket -> stories this poll opened there
        filings: list[Filing] = []
        decided: list[tuple[Verdict | None, Candidate | None]] = []
        for item, report, lookup, keys in zip(items, prints, lookups, buckets, strict=True):
            here = {story: each for key in keys for story, each in opened_here.get(key, {}).items()}
            best = self._best(report, [*lookup.candidates, *here.values()])
            data = report.to_json()
            if best is None:
                story = digest(story_keys(item)[0])
                opened = Candidate(story, _dumps([data]), _dumps(data))
                for key in keys:
                    opened_here.setdefault(key, {})[story] = opened
                decided.append((None, None))
            else:
                story = best[0].story
                decided.append((best[1], best[0]))
            filings.append(Filing(story, feed.name, data, keys, best is None, item.title, item.id, lookup.at))
        filed = self._state.file(filings, self._ttl)
        raced = [position for position, outcome in enumerate(filed) if isinstance(outcome, Raced)]
        if raced:
            self._settle_races(raced, filed, filings, prints, decided)
        placements = []
        for item, report, (why, joined), outcome, filing in zip(
            items, prints, decided, filed, filings, strict=True
        ):
            feeds = outcome if isinstance(outcome, tuple) else ()
            if why is None or joined is None:
                placements.append(Placement(filing.story, True, feeds))
                continue
            placements.append(self._joined(feed, item, report, filing.story, why, joined, feeds, now))
        return placements

    def _settle_races(
        self,
        raced: list[int],
        filed: list[tuple[str, ...] | Raced],
        filings: list[Filing],
        prints: list[StoryPrint],
        decided: list[tuple[Verdict | None, Candidate | None]],
    ) -> None:
        """Openings that found stories filed meanwhile (another worker, the same instant): compared
        with those, they join one that tells their event, else open after all."""
        retry = []
        for position in raced:
            outcome = filed[position]
            assert isinstance(outcome, Raced)
            others = [
                each for each in self._state.records(outcome.stories) if each.story != filings[position].story
            ]
            best = self._best(prints[position], others)
            if best is None:
                filings[position] = dataclasses.replace(filings[position], force=True)
            else:
                filings[position] = dataclasses.replace(filings[position], story=best[0].story, opened=False)
                decided[position] = (best[1], best[0])
            retry.append(position)
        for position, outcome in zip(
            retry, self._state.file([filings[p] for p in retry], self._ttl), strict=True
        ):
            filed[position] = outcome

    def explain(self, feed: Feed, item: FeedItem, now: float) -> tuple[StoryPrint, StoryMatch | None]:
        """What ``item``'s headline pins down, and the open story it would join (nothing is filed)."""
        report = self._prints.fingerprint(item, _at(item, now), feed.lang)
        (lookup,) = self._state.candidates([sketch.bucket_keys(report)], self._policy.window)
        best = self._best(report, lookup.candidates)
        if best is None:
            return report, None
        candidate, verdict = best
        title = _parsed(candidate.prints)[0].title
        return report, StoryMatch(candidate.story, title, verdict, changes(_known(candidate), report))

    def _best(self, report: StoryPrint, candidates: Sequence[Candidate]) -> tuple[Candidate, Verdict] | None:
        """The candidate story ``report`` is most like, if it tells that story's event."""
        best: tuple[Candidate, Verdict] | None = None
        for candidate in candidates:
            for reported in _parsed(candidate.prints):
                verdict = compare(reported, report, self._policy)
                if verdict.same and (best is None or verdict.score > best[1].score):
                    best = (candidate, verdict)
        return best

    def _joined(
        self,
        feed: Feed,
        item: FeedItem,
        report: StoryPrint,
        story: str,
        verdict: Verdict,
        candidate: Candidate,
        feeds: tuple[str, ...],
        now: float,
    ) -> Placement:
        known = _known(candidate)
        added = changes(known, report)
        _logger.info(
            "story.joined",
            feed=feed.name,
            item=item.id,
            story=story,
            score=round(verdict.score, 2),
            sources=list(feeds),
            changes=list(added),
        )
        if not added:
            return Placement(story, False, feeds, verdict=verdict)
        number, recipients = self._state.take_update(
            story, now, self._policy.update_every, union([known, report]).to_json()
        )
        if not number:
            _logger.info("story.update_held", feed=feed.name, item=item.id, story=story, changes=list(added))
            return Placement(story, False, feeds, verdict=verdict)
        return Placement(story, False, feeds, number, added, recipients, verdict)


def _known(candidate: Candidate) -> StoryPrint:
    """What the story's alerts have said so far."""
    if candidate.known:
        return StoryPrint.from_json(json.loads(candidate.known))
    return union(list(_parsed(candidate.prints)))


@lru_cache(maxsize=20_000)
def _parsed(prints: str) -> tuple[StoryPrint, ...]:
    """A story's stored prints (cached: the open stories of a busy place are candidates again and again)."""
    return tuple(StoryPrint.from_json(data) for data in json.loads(prints))


def _dumps(data: object) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def _at(item: FeedItem, now: float) -> float:
    """When the report was published (now, if it says nothing or a time in the future)."""
    published = item.published.timestamp() if item.published else now
    return min(published, now)


def story_alerts(
    feed: Feed,
    item: FeedItem,
    regions: tuple[str, ...],
    matches: list[Match],
    placement: Placement,
    fetched_at: float,
    subscribers: Container[str],
) -> list[tuple[Alert, tuple[str, ...]]]:
    """(alert, claim keys) for each subscriber ``item`` goes to: those it matched get the story's
    first alert (claimed on the story and the item's link and headline, so once per story); when
    the item is an update, the story's recipients get the update instead (claimed on its number)."""
    keys = (*story_keys(item), f"story:{placement.story}")
    matched = fanout.by_subscriber(matches)
    updated = set(placement.recipients) if placement.update else set()
    found = []
    for subscriber, subs in matched.items():
        if subscriber not in updated:
            alert = fanout.alert_for(feed, item, regions, subscriber, subs, fetched_at, placement.story)
            found.append((dataclasses.replace(alert, sources=placement.sources), keys))
    for subscriber in sorted(updated):
        if subscriber in subscribers:
            alert = fanout.alert_for(
                feed, item, regions, subscriber, matched.get(subscriber, []), fetched_at, placement.story
            )
            update = dataclasses.replace(
                alert, sources=placement.sources, update=placement.update, changes=placement.changes
            )
            found.append((update, (f"update:{placement.story}:{placement.update}",)))
    return found
