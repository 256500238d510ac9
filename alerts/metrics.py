"""Every Prometheus metric of the service, and the small typed functions the other layers record with.

Only this module and the metrics server (:mod:`alerts.service.observe`) import prometheus_client (an
import contract holds it), so every label value passes through here and stays bounded: feed names
from the config, channel kinds, outcomes and reasons from fixed sets; never an item id or a URL.

Counters and histograms are recorded in the process where the event happens. Under ``alerts run``
the supervisor gives its children a fresh ``PROMETHEUS_MULTIPROC_DIR``: each process (the poll
worker, the deliver worker and each of its prefork children) writes its own memory-mapped file,
and the supervisor's /metrics adds them up (a forked child starts from zero, so nothing is counted
twice). Without the variable (tests, ``alerts once``) they live in the default registry.

The gauges that describe the whole service (outbox depth, feed health, workers alive, the last
config load) are not kept by any process: :class:`ServiceCollector` reads them from Redis when
scraped, through the :class:`Gauges` its caller builds.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from alerts.errors import AddressRefused, FeedParseError, FeedRejected, FetchError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

FETCH_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

POLL_OUTCOMES = frozenset(
    {
        "200",
        "304",
        "timeout",
        "http_4xx",
        "http_5xx",
        "refused",
        "network",
        "rejected",
        "parse",
        "busy",
        "deferred",
        "error",
    }
)
"""``alerts_polls_total``'s outcomes: the status of a good poll, or the kind of failure (refused: a
redirect to an address content may not reach; network: no connection or a broken one; rejected:
too big, too many redirects; busy: another worker held the feed's lock; deferred: its host had no
free slot); anything else is counted as ``error``."""
DELIVERY_OUTCOMES = frozenset({"sent", "retrying", "dead", "rate_limited", "dropped"})
HELD_REASONS = frozenset({"quiet_hours", "max_per_hour", "burst", "digest"})
CONFIG_OUTCOMES = frozenset({"loaded", "rejected"})
FEED_STATES = ("healthy", "failing", "unhealthy", "new")
UNKNOWN_KIND = "unknown"  # a delivery whose URL is no longer configured

_POLLS = Counter("alerts_polls_total", "Feed polls by feed and outcome.", ["feed", "outcome"])
_FETCH = Histogram(
    "alerts_fetch_duration_seconds", "Time to fetch a feed (request to body).", buckets=FETCH_BUCKETS
)
_NEW_ITEMS = Counter("alerts_items_new_total", "Items seen for the first time, by feed.", ["feed"])
_MATCHES = Counter("alerts_matches_total", "Alerts matched (one per subscriber and item).")
_HELD = Counter("alerts_alerts_held_total", "Alerts held for a digest, by reason.", ["reason"])
_ALERTS_SENT = Counter(
    "alerts_alerts_sent_total",
    "Alerts that reached a channel, by channel kind (a digest counts each alert it holds).",
    ["kind"],
)
_DELIVERIES = Counter(
    "alerts_deliveries_total", "Delivery attempts by channel kind and outcome.", ["kind", "outcome"]
)
_LATENCY = Histogram(
    "alerts_delivery_latency_seconds",
    "From an item first seen to its alert sent, by channel kind (single alerts; digests wait by design).",
    ["kind"],
    buckets=LATENCY_BUCKETS,
)
_CONFIG = Counter(
    "alerts_config_reloads_total",
    "Configuration versions loaded and edits rejected (once each, however many processes load them).",
    ["outcome"],
)
_HEARTBEATS = Counter(
    "alerts_heartbeats_total", "Worker process heartbeats written to Redis, or failed.", ["outcome"]
)
_RECORDED: tuple[Counter | Histogram, ...] = (
    _POLLS,
    _FETCH,
    _NEW_ITEMS,
    _MATCHES,
    _HELD,
    _ALERTS_SENT,
    _DELIVERIES,
    _LATENCY,
    _CONFIG,
    _HEARTBEATS,
)


@dataclass(frozen=True, slots=True)
class _Family:
    name: str
    help: str
    labels: tuple[str, ...] = ()


REDIS_UP = _Family(
    "alerts_redis_up", "1 when the metrics server could read Redis, else 0 (and no other gauge)."
)
GAUGES = (
    REDIS_UP,
    _Family("alerts_outbox_pending", "Deliveries not yet sent or dead (pending, being sent, retrying)."),
    _Family("alerts_outbox_oldest_seconds", "Age of the oldest delivery not yet sent or dead (0: none)."),
    _Family("alerts_outbox_dead", "Dead deliveries (see alerts dlq)."),
    _Family("alerts_feeds", "Configured feeds by health state.", ("state",)),
    _Family("alerts_workers_alive", "Worker processes whose heartbeat is recent."),
    _Family("alerts_heartbeat_age_seconds", "Seconds since the newest worker heartbeat."),
    _Family("alerts_config_last_load_timestamp_seconds", "When a process last loaded the configuration."),
    _Family("alerts_config_valid", "1 when the last configuration load succeeded, 0 after a rejected edit."),
)
RESTARTS = _Family("alerts_worker_restarts_total", "Workers restarted by `alerts run`.", ("worker",))

# one lock around every recording: a fork (the deliver worker's pool) never copies a half-done write,
# nor a lock another thread holds, into the child (see _guard_forks)
_lock = threading.Lock()


def _guard_forks() -> None:
    os.register_at_fork(before=_lock.acquire, after_in_parent=_lock.release, after_in_child=_lock.release)


_guard_forks()


def polled(feed: str, outcome: str | int, seconds: float | None = None) -> None:
    """One poll of ``feed``: its outcome (an HTTP status, or :func:`poll_outcome` of its error, or
    ``busy``) and, when it fetched, how long the fetch took."""
    label = _poll_label(outcome)
    with _lock:
        _POLLS.labels(feed, label).inc()
        if seconds is not None:
            _FETCH.observe(max(0.0, seconds))


def new_items(feed: str, count: int) -> None:
    """``count`` items of ``feed`` seen for the first time."""
    if count > 0:
        with _lock:
            _NEW_ITEMS.labels(feed).inc(count)


def matched(count: int) -> None:
    """``count`` alerts matched (one per subscriber and item)."""
    if count > 0:
        with _lock:
            _MATCHES.inc(count)


def held(reason: str | None, count: int = 1) -> None:
    """``count`` alerts held for a digest because of ``reason`` (quiet hours, max_per_hour, burst,
    digest)."""
    label = "quiet_hours" if reason == "quiet" else reason or "digest"
    if count > 0:
        with _lock:
            _HELD.labels(label if label in HELD_REASONS else "digest").inc(count)


def delivery(kind: str, outcome: str) -> None:
    """A delivery attempt to a channel of ``kind`` ended ``retrying``, ``dead``, ``rate_limited`` (its
    turn is later) or ``dropped`` (no longer configured); see :func:`sent` for a success."""
    if outcome not in DELIVERY_OUTCOMES:
        raise ValueError(f"unknown delivery outcome {outcome!r}")
    with _lock:
        _DELIVERIES.labels(kind, outcome).inc()


def sent(kind: str, alerts: int = 1, latency: float | None = None) -> None:
    """A delivery sent to a channel of ``kind``, carrying ``alerts`` alerts (a digest, several);
    ``latency``: seconds from the item first seen to now (None for a digest)."""
    with _lock:
        _DELIVERIES.labels(kind, "sent").inc()
        _ALERTS_SENT.labels(kind).inc(max(1, alerts))
        if latency is not None:
            _LATENCY.labels(kind).observe(max(0.0, latency))


def config_reload(outcome: str) -> None:
    """A configuration version loaded, or an edit rejected."""
    if outcome not in CONFIG_OUTCOMES:
        raise ValueError(f"unknown config outcome {outcome!r}")
    with _lock:
        _CONFIG.labels(outcome).inc()


def heartbeat(ok: bool) -> None:
    """A worker heartbeat written (or, with ``ok`` False, failed: Redis is away)."""
    with _lock:
        _HEARTBEATS.labels("ok" if ok else "failed").inc()


_STATUS_IN_MESSAGE = re.compile(r"^(?:HTTP\s*)?([1-5]\d\d)\b")


def poll_outcome(error: BaseException) -> str:
    """The ``outcome`` label of a failed poll's error: ``http_4xx``, ``http_5xx``, ``timeout``,
    ``refused``, ``parse``, ``rejected``, ``network`` or ``error``."""
    status = getattr(error, "status", None)
    if not isinstance(status, int):
        match = _STATUS_IN_MESSAGE.match(str(error)) if isinstance(error, FeedRejected) else None
        status = int(match.group(1)) if match else None
    if isinstance(status, int) and 400 <= status < 600:
        return "http_4xx" if status < 500 else "http_5xx"
    if isinstance(error, AddressRefused):
        return "refused"
    if isinstance(error, FeedParseError):
        return "parse"
    if isinstance(error, FeedRejected):
        return "rejected"
    if isinstance(error, TimeoutError) or "timeout" in str(error).lower():
        return "timeout"
    if isinstance(error, OSError | FetchError):
        return "network"
    return "error"


def _poll_label(outcome: str | int) -> str:
    text = str(outcome)
    if text.isdigit():
        code = int(text)
        if code == 304:
            return "304"
        if 200 <= code < 300:
            return "200"
        if 400 <= code < 600:
            return "http_4xx" if code < 500 else "http_5xx"
        return "error"
    return text if text in POLL_OUTCOMES else "error"


def mark_dead(pid: int, directory: str) -> None:
    """A child of ``alerts run`` exited: drop its live gauges from the multiprocess directory (its
    counters stay: what it counted happened)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


# --- scrape-time gauges -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Gauges:
    """The state of the whole service as Redis holds it, read when /metrics is scraped."""

    outbox_pending: int = 0
    outbox_oldest: float | None = None  # seconds
    outbox_dead: int = 0
    feeds: Mapping[str, int] = field(default_factory=dict)  # health state -> feeds
    workers_alive: int = 0
    heartbeat_age: float | None = None  # seconds since the newest heartbeat (None: no worker)
    config_loaded_at: float | None = None  # unix seconds
    config_valid: bool | None = None


class ServiceCollector:
    """A prometheus_client collector of :data:`GAUGES`: ``read()`` gives the :class:`Gauges`, or None
    when Redis does not answer (then only ``alerts_redis_up 0``); ``restarts()``, if given, the
    supervisor's restarts per worker."""

    def __init__(
        self,
        read: Callable[[], Gauges | None],
        restarts: Callable[[], Mapping[str, int]] | None = None,
    ) -> None:
        self._read = read
        self._restarts = restarts

    def describe(self) -> Iterable[Metric]:
        """The families, without samples (so registering reads nothing)."""
        families: list[Metric] = [_gauge(family) for family in GAUGES]
        if self._restarts is not None:
            families.append(CounterMetricFamily(RESTARTS.name, RESTARTS.help, labels=RESTARTS.labels))
        return families

    def collect(self) -> Iterator[Metric]:
        gauges = self._read()
        up = _gauge(REDIS_UP)
        up.add_metric([], 0.0 if gauges is None else 1.0)
        yield up
        if gauges is not None:
            yield from _families(gauges)
        if self._restarts is not None:
            restarts = CounterMetricFamily(RESTARTS.name, RESTARTS.help, labels=RESTARTS.labels)
            for worker, count in sorted(self._restarts().items()):
                restarts.add_metric([worker], float(count))
            yield restarts


def _gauge(family: _Family) -> GaugeMetricFamily:
    return GaugeMetricFamily(family.name, family.help, labels=family.labels)


def _families(gauges: Gauges) -> Iterator[Metric]:
    by_name = {family.name: family for family in GAUGES}
    values: dict[str, float | None] = {
        "alerts_outbox_pending": gauges.outbox_pending,
        "alerts_outbox_oldest_seconds": gauges.outbox_oldest or 0.0,
        "alerts_outbox_dead": gauges.outbox_dead,
        "alerts_workers_alive": gauges.workers_alive,
        "alerts_heartbeat_age_seconds": gauges.heartbeat_age,
        "alerts_config_last_load_timestamp_seconds": gauges.config_loaded_at,
        "alerts_config_valid": None if gauges.config_valid is None else float(gauges.config_valid),
    }
    for name, value in values.items():
        if value is not None:  # unknown (no worker yet, never loaded): no sample rather than a made-up one
            family = _gauge(by_name[name])
            family.add_metric([], float(value))
            yield family
    feeds = _gauge(by_name["alerts_feeds"])
    for state in FEED_STATES:
        feeds.add_metric([state], float(gauges.feeds.get(state, 0)))
    yield feeds


def series_names() -> frozenset[str]:
    """Every series name the service can expose (``_total``, ``_bucket``, ``_sum``, ``_count`` included):
    what dashboards and alert rules may refer to."""
    names: set[str] = {family.name for family in GAUGES} | {RESTARTS.name}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    for metric in _RECORDED:
        for family in metric.describe():
            names.update(family.name + suffix for suffix in suffixes[family.type])
    return frozenset(names)
