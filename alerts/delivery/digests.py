"""Routing alerts through the subscribers' pacing, and folding what waited into digests: one Alert whose
``held`` holds every alert that waited, so nothing held is ever dropped (each channel renders all of them).
A story's update is held and counted as its own alert (:func:`alerts.delivery.ids.story_key`), never in
place of the story's first alert or of an earlier update."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence

from alerts import log, metrics
from alerts.delivery import pacing, story_render
from alerts.delivery.ids import story_key
from alerts.models import PRIORITIES, Alert, Subscriber
from alerts.state.pacing import PacingState
from alerts.text import digest as text_digest

_logger = log.get("alerts.digests")


def route(
    state: PacingState,
    subscribers: Mapping[str, Subscriber],
    alerts: Sequence[Alert],
    now: float | None = None,
) -> list[Alert]:
    """The alerts to send now; the others are held (in Redis) for their subscriber's next digest."""
    now = time.time() if now is None else now
    by_subscriber: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        by_subscriber[alert.subscriber].append(alert)
    instant: list[Alert] = []
    recent = state.recent(list(by_subscriber), now)
    sends: dict[str, dict[str, float]] = {}
    holds: dict[str, tuple[dict[str, str], float]] = {}
    reasons: dict[str | None, int] = defaultdict(int)
    for name, batch in by_subscriber.items():
        subscriber = subscribers.get(name)
        settings = subscriber.pacing if subscriber else pacing.Pacing()
        sent: dict[str, float] = {}
        held: dict[str, str] = {}
        release: float | None = None
        for alert in batch:
            decision = pacing.decide(settings, alert.priority, now, [*recent[name], *sent.values()])
            if decision.send:
                instant.append(alert)
                sent[story_key(alert)] = now
                continue
            held[story_key(alert)] = json.dumps(alert.to_json(), ensure_ascii=False)
            reasons[decision.reason] += 1
            release = decision.release_at if release is None else min(release, decision.release_at or now)
            _logger.info(
                "alert.held",
                subscriber=name,
                item=alert.item,
                story=alert.story,
                reason=decision.reason,
                until=decision.release_at,
            )
        sends[name] = sent
        if held:
            holds[name] = (held, release or now)
    state.note(sends, holds, now)
    for reason, count in reasons.items():  # counted once they are held in Redis
        metrics.held(reason, count)
    return instant


def due_digests(state: PacingState, now: float | None = None) -> list[Alert]:
    """One digest alert per subscriber whose held alerts are due (each taken exactly once)."""
    now = time.time() if now is None else now
    digests = []
    for subscriber, held in state.pop_held(now).items():
        alerts = sorted(
            (Alert.from_json(json.loads(raw)) for raw in held.values()), key=lambda a: a.fetched_at
        )
        if alerts:
            digests.append(digest(subscriber, alerts))
            _logger.info("digest.ready", subscriber=subscriber, alerts=len(alerts))
    return digests


def digest(subscriber: str, alerts: Sequence[Alert]) -> Alert:
    """One message holding every alert that waited (``held``), rendered per channel by
    :mod:`alerts.delivery.digest_render`; its title names the count and the first headline."""
    first = story_render.titled(alerts[0], alerts[0].title)
    title = f"{len(alerts)} alerts: {first}" if len(alerts) > 1 else first
    return Alert(
        subscriber=subscriber,
        story=text_digest("digest:" + "|".join(sorted(story_key(a) for a in alerts))),
        item="digest",
        feed=", ".join(sorted({a.feed for a in alerts})),
        title=title,
        link=alerts[0].link if len(alerts) == 1 else None,
        regions=tuple(sorted({r for a in alerts for r in a.regions})),
        subscriptions=tuple(sorted({s for a in alerts for s in a.subscriptions})),
        terms=tuple(sorted({t for a in alerts for t in a.terms})),
        fetched_at=min(a.fetched_at for a in alerts),
        priority=min((a.priority for a in alerts), key=PRIORITIES.index),
        held=tuple(alerts),
    )
