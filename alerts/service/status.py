"""The whole service at a glance, from what Redis keeps: ``alerts status`` (text or JSON), the gauges
the metrics server reads when scraped, and whether ``alerts run`` is ready (/readyz).

Workers are the processes in the liveness registry (alive: a heartbeat within
:data:`~alerts.state.liveness.TIMEOUT` seconds); feeds are those of the schedule (the configuration
the workers run), each healthy, failing (its last poll failed), unhealthy (``feed.unhealthy``) or
new (never polled yet); the outbox counts what is not yet sent or dead; the last hour is the
history stream (sent and dead deliveries, with each one's first-seen-to-sent latency).
"""

from __future__ import annotations

import math
import socket
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alerts import log, metrics
from alerts.delivery.render import channel_kind
from alerts.errors import StoreUnavailable
from alerts.polling.policy import Health
from alerts.state.config_record import ConfigStatus
from alerts.state.deliveries import OutboxSummary
from alerts.state.liveness import TIMEOUT, process_of
from alerts.state.store import Store

WINDOW = 3600.0  # "the last hour"
HISTORY_LIMIT = 50_000  # history entries read for it at most
NAMED_FEEDS = 10  # failing or unhealthy feeds named on the screen


@dataclass(frozen=True, slots=True)
class Status:
    """Everything ``alerts status`` shows, read at ``at``."""

    at: float
    workers: list[tuple[str, float]]  # owner, seconds since its heartbeat; newest first
    feeds: dict[str, list[str]]  # health state -> feed names
    outbox: OutboxSummary
    recent: list[dict[str, str]]  # history entries of the last hour
    config: ConfigStatus

    @property
    def alive(self) -> list[tuple[str, float]]:
        return [(owner, age) for owner, age in self.workers if age < TIMEOUT]


def gather(store: Store, now: float | None = None) -> Status:
    """Read the status (a handful of round trips); raises StoreUnavailable when Redis is away."""
    now = time.time() if now is None else now
    return Status(
        at=now,
        workers=store.liveness.beats(),
        feeds=_by_state(store),
        outbox=store.deliveries.summary(),
        recent=store.deliveries.history(now - WINDOW, count=HISTORY_LIMIT),
        config=store.config.get(),
    )


def feed_state(fields: Mapping[str, str]) -> str:
    """``unhealthy``, ``failing``, ``new`` or ``healthy``, from a feed's stored health fields (as
    ``alerts feeds`` judges them)."""
    health = Health.from_state(fields)
    if health.unhealthy:
        return "unhealthy"
    if health.failures:
        return "failing"
    return "new" if health.last_ok is None else "healthy"


def _by_state(store: Store) -> dict[str, list[str]]:
    feeds: dict[str, list[str]] = {state: [] for state in metrics.FEED_STATES}
    for name, fields in store.health.scheduled().items():
        feeds[feed_state(fields)].append(name)
    return feeds


# --- for the metrics server ---------------------------------------------------------------------


def gauges(store: Store) -> metrics.Gauges | None:
    """The scrape-time gauges, or None when Redis does not answer (history is not read)."""
    try:
        workers = store.liveness.beats()
        feeds = _by_state(store)
        outbox = store.deliveries.summary()
        config = store.config.get()
    except StoreUnavailable:
        return None
    now = time.time()
    return metrics.Gauges(
        outbox_pending=outbox.pending,
        outbox_oldest=max(0.0, now - outbox.oldest_created) if outbox.oldest_created else None,
        outbox_dead=outbox.dead,
        feeds={state: len(names) for state, names in feeds.items()},
        workers_alive=sum(1 for _, age in workers if age < TIMEOUT),
        heartbeat_age=workers[0][1] if workers else None,
        config_loaded_at=config.loaded_at,
        config_valid=config.valid,
    )


def readiness(store: Store, workers: Mapping[str, int | None]) -> tuple[bool, dict[str, Any]]:
    """Ready when Redis answers, the configuration files are valid (no rejected edit pending) and each
    of ``workers`` (name -> pid of this machine's process, None while it restarts) beats; the JSON
    body /readyz answers with (``reason`` when not ready)."""
    reason = store.unavailable()
    if reason:
        return False, {"ready": False, "reason": log.redact(reason)}
    try:
        config = store.config.get()
        beats = store.liveness.beats()
    except StoreUnavailable as exc:
        return False, {"ready": False, "reason": log.redact(str(exc))}
    if config.state == "rejected":
        first = config.problems[0] if config.problems else "see config.rejected in the log"
        body = {
            "ready": False,
            "reason": f"configuration rejected: {first}",
            "problems": list(config.problems),
        }
        return False, body
    host = socket.gethostname()
    ages: dict[int, float] = {}
    for owner, age in beats:
        process = process_of(owner)
        if process and process[0] == host and age < TIMEOUT:
            ages.setdefault(process[1], age)
    seen: dict[str, Any] = {}
    for name, pid in workers.items():
        if pid is None:
            return False, {"ready": False, "reason": f"the {name} worker is not running (restarting)"}
        if pid not in ages:
            return False, {"ready": False, "reason": f"the {name} worker (pid {pid}) has no live heartbeat"}
        seen[name] = {"pid": pid, "heartbeat_age": round(ages[pid], 3)}
    return True, {"ready": True, "workers": seen, "config": config.fingerprint}


# --- alerts status ------------------------------------------------------------------------------


def to_json(status: Status) -> dict[str, Any]:
    """The status as JSON-ready data (``alerts status --json``)."""
    alive = status.alive
    config = status.config
    return {
        "at": round(status.at, 3),
        "workers": {
            "alive": len(alive),
            "newest_heartbeat_age": round(status.workers[0][1], 3) if status.workers else None,
            "processes": [
                {"owner": owner, "heartbeat_age": round(age, 3), "alive": age < TIMEOUT}
                for owner, age in status.workers
            ],
        },
        "feeds": {
            "total": sum(len(names) for names in status.feeds.values()),
            **{state: len(names) for state, names in status.feeds.items()},
            "not_healthy": {state: status.feeds[state] for state in ("failing", "unhealthy")},
        },
        "outbox": {
            "pending": status.outbox.pending,
            "oldest_age": _age(status.outbox.oldest_created, status.at),
            "dead": status.outbox.dead,
        },
        "last_hour": _last_hour(status.recent),
        "config": {
            "state": config.state,
            "fingerprint": config.fingerprint,
            "loaded_at": config.loaded_at,
            "loaded_age": _age(config.loaded_at, status.at),
            "feeds": config.feeds,
            "subscriptions": config.subscriptions,
            "rejected_at": config.rejected_at,
            "problems": list(config.problems) if config.state == "rejected" else [],
        },
    }


def _last_hour(entries: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    """Sent and dead deliveries of the window, with latency percentiles, in all and by channel kind."""
    by_kind: dict[str, list[Mapping[str, str]]] = defaultdict(list)
    for entry in entries:
        by_kind[channel_kind(entry.get("target", ""))].append(entry)
    return {
        **_tally(entries),
        "truncated": len(entries) >= HISTORY_LIMIT,
        "by_kind": {kind: _tally(group) for kind, group in sorted(by_kind.items())},
    }


def _tally(entries: Sequence[Mapping[str, str]]) -> dict[str, Any]:
    latencies = sorted(float(e["latency"]) for e in entries if e.get("state") == "sent" and e.get("latency"))
    return {
        "sent": sum(1 for e in entries if e.get("state") == "sent"),
        "dead": sum(1 for e in entries if e.get("state") == "dead"),
        "latency_p50": _percentile(latencies, 0.50),
        "latency_p99": _percentile(latencies, 0.99),
    }


def _percentile(ordered: Sequence[float], fraction: float) -> float | None:
    """The nearest-rank percentile of sorted values (None for none)."""
    if not ordered:
        return None
    rank = max(1, math.ceil(len(ordered) * fraction))
    return round(ordered[rank - 1], 3)


def _age(moment: float | None, now: float) -> float | None:
    return None if moment is None else round(max(0.0, now - moment), 3)


def text(status: Status) -> str:
    """One screen for a person."""
    data = to_json(status)
    workers, feeds, outbox, hour, config = (
        data[key] for key in ("workers", "feeds", "outbox", "last_hour", "config")
    )
    if workers["alive"]:
        newest = _span(workers["newest_heartbeat_age"])
        worker_line = f"{workers['alive']} alive, newest heartbeat {newest} ago"
    elif workers["processes"]:
        worker_line = f"none alive: the newest heartbeat is {_span(workers['newest_heartbeat_age'])} old"
    else:
        worker_line = "none: no worker has run against this Redis (start `alerts run`)"
    counts = ", ".join(f"{feeds[state]} {state}" for state in metrics.FEED_STATES if feeds[state])
    feed_line = f"{feeds['total']}" + (f": {counts}" if counts else "")
    for state, names in feeds["not_healthy"].items():
        if names:
            shown = ", ".join(names[:NAMED_FEEDS]) + (", ..." if len(names) > NAMED_FEEDS else "")
            feed_line += f"\n{'':11}{state}: {shown}"
    oldest = f", oldest {_span(outbox['oldest_age'])}" if outbox["oldest_age"] is not None else ""
    outbox_line = f"{outbox['pending']} waiting{oldest}; {outbox['dead']} dead"
    lines = [
        f"{'workers':<11}{worker_line}",
        f"{'feeds':<11}{feed_line}",
        f"{'outbox':<11}{outbox_line}",
        f"{'last hour':<11}{_tally_line(hour)}"
        + (" (the newest entries not read)" if hour["truncated"] else ""),
    ]
    for kind, tally in hour["by_kind"].items():
        lines.append(f"{'':11}  {kind:<9} {_tally_line(tally)}")
    lines.append(f"{'config':<11}{_config_line(config)}")
    return "\n".join(lines)


def _tally_line(tally: Mapping[str, Any]) -> str:
    line = f"{tally['sent']} sent, {tally['dead']} dead"
    if tally["latency_p50"] is not None:
        line += f"; latency p50 {_span(tally['latency_p50'])}, p99 {_span(tally['latency_p99'])}"
    return line


def _config_line(config: Mapping[str, Any]) -> str:
    if config["state"] is None:
        return "no worker has loaded it yet"
    loaded = f"last loaded {_span(config['loaded_age'])} ago" if config["loaded_age"] is not None else ""
    version = (
        f"{config['fingerprint']} ({config['feeds']} feeds, {config['subscriptions']} subscriptions)"
        if config["fingerprint"]
        else "no valid version"
    )
    if config["state"] == "rejected":
        problems = config["problems"]
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        return (
            f"REJECTED edit, running {version}, {loaded}: {problems[0] if problems else ''}{more}"
            + "\n"
            + f"{'':11}fix it and save: `alerts check` lists every problem"
        )
    return f"{version}, {loaded}"


def _span(seconds: float | None) -> str:
    """``0.4s``, ``12s``, ``3m``, ``5h``, ``2d``."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
