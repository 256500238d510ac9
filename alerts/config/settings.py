"""The one place that reads the process environment: every ``ALERTS_*`` variable and ``REDIS_URL``.

The YAML files hold feeds and subscriptions; these settings say how the service runs them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from alerts.config.durations import parse_duration
from alerts.delivery import ratelimit
from alerts.matching.stories.compare import StoryPolicy

DEFAULT_CONFIG_DIR = "./config"
DEFAULT_DEDUPE_WINDOW = "48h"
DEFAULT_WEBSUB_LISTEN = "0.0.0.0:8787"
DEFAULT_METRICS_LISTEN = "127.0.0.1:9464"


@dataclass(frozen=True)
class Settings:
    """Process settings; :meth:`from_env` reads them, tests build them directly."""

    config_dir: Path
    # None: the running private Redis, else localhost:6379 if it answers, else (alerts run/once) a
    # private one started; "embedded": always the private one (alerts.service.cli._redis_url)
    redis_url: str | None
    dedupe_window: int = 48 * 3600
    host_concurrency: int = 2
    websub_url: str | None = None  # public base URL of the WebSub callback server (None: no WebSub)
    websub_listen: str = DEFAULT_WEBSUB_LISTEN
    websub_lease: int = 86400
    delivery_max_age: float = 6 * 3600.0  # a delivery still failing after this is dead
    claim_hold: int = 60  # poll lock, host slot and unconfirmed claims last this long (a dead worker's)
    delivery_lease: float = 120.0  # a claimed delivery whose worker died is retried after this
    sweep_lease: float = 30.0  # a delivery handed to a task is not handed out again before this
    history_retention: int = 7 * 86400  # how long `alerts history` remembers deliveries
    tick: float = 0.25  # how often beat looks for due feeds
    log_level: str = "INFO"
    telegram_api: str | None = None  # a self-hosted Bot API server (None: Telegram's)
    state_dir: Path | None = None  # the private Redis's data (None: ~/.local/state/breaking-alerts)
    poll_concurrency: int = 16  # threads of the poll worker of `alerts run`
    deliver_concurrency: int = 1  # deliver processes of `alerts run` (1: one process, tasks on threads)
    rates: ratelimit.Rates = field(default_factory=lambda: dict(ratelimit.DEFAULTS))
    # URLs from feed content (item links, hubs, redirects) may reach private addresses (tests, labs)
    allow_private_addresses: bool = False
    # where `alerts run` serves /metrics, /healthz and /readyz (host:port; None: off)
    metrics_listen: str | None = DEFAULT_METRICS_LISTEN
    # reports of one event become one story (ALERTS_STORY_*; ALERTS_STORIES=off: None, every item its own)
    stories: StoryPolicy | None = field(default_factory=StoryPolicy)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings the environment (default: this process's) gives, defaults for what it omits."""
        env = os.environ if env is None else env
        state_home = env.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
        return cls(
            config_dir=Path(env.get("ALERTS_CONFIG") or DEFAULT_CONFIG_DIR),
            redis_url=env.get("REDIS_URL") or None,
            dedupe_window=max(
                60, int(parse_duration(env.get("ALERTS_DEDUPE_WINDOW") or DEFAULT_DEDUPE_WINDOW))
            ),
            host_concurrency=max(1, int(env.get("ALERTS_HOST_CONCURRENCY") or 2)),
            websub_url=(env.get("ALERTS_WEBSUB_URL") or "").rstrip("/") or None,
            websub_listen=env.get("ALERTS_WEBSUB_LISTEN") or DEFAULT_WEBSUB_LISTEN,
            websub_lease=int(parse_duration(env.get("ALERTS_WEBSUB_LEASE") or "1d")),
            delivery_max_age=parse_duration(env.get("ALERTS_DELIVERY_MAX_AGE") or "6h"),
            claim_hold=max(5, int(parse_duration(env.get("ALERTS_CLAIM_HOLD") or "60s"))),
            delivery_lease=parse_duration(env.get("ALERTS_DELIVERY_LEASE") or "120s"),
            sweep_lease=parse_duration(env.get("ALERTS_SWEEP_LEASE") or "30s"),
            history_retention=int(parse_duration(env.get("ALERTS_HISTORY_RETENTION") or "7d")),
            tick=parse_duration(env.get("ALERTS_TICK") or "0.25"),
            log_level=(env.get("ALERTS_LOG_LEVEL") or "INFO").upper(),
            telegram_api=env.get("ALERTS_TELEGRAM_API") or None,
            state_dir=Path(env.get("ALERTS_STATE_DIR") or os.path.join(state_home, "breaking-alerts")),
            poll_concurrency=max(1, int(env.get("ALERTS_POLL_CONCURRENCY") or 16)),
            deliver_concurrency=max(1, int(env.get("ALERTS_CONCURRENCY") or 1)),
            rates={
                name: ratelimit.parse_rate(env.get(f"ALERTS_RATE_{name}"), default)
                for name, default in ratelimit.DEFAULT_RATES.items()
            },
            allow_private_addresses=_flag(env.get("ALERTS_ALLOW_PRIVATE_ADDRESSES")),
            metrics_listen=_listen(env.get("ALERTS_METRICS_LISTEN"), DEFAULT_METRICS_LISTEN),
            stories=_stories(env),
        )


def _stories(env: Mapping[str, str]) -> StoryPolicy | None:
    """The story thresholds from ``ALERTS_STORY_*``, or None when ``ALERTS_STORIES`` is off."""
    if (env.get("ALERTS_STORIES") or "on").strip().lower() in ("off", "no", "false", "0"):
        return None
    default = StoryPolicy()
    return StoryPolicy(
        similarity=_fraction(env.get("ALERTS_STORY_SIMILARITY"), default.similarity),
        cross_similarity=_fraction(env.get("ALERTS_STORY_CROSS_SIMILARITY"), default.cross_similarity),
        window=parse_duration(env.get("ALERTS_STORY_WINDOW") or "12h"),
        update_every=parse_duration(env.get("ALERTS_STORY_UPDATE_EVERY") or "10m"),
    )


def _fraction(value: str | None, default: float) -> float:
    """A number between 0 and 1 (clamped); unset: ``default``."""
    text = (value or "").strip()
    return min(1.0, max(0.0, float(text))) if text else default


def _listen(value: str | None, default: str) -> str | None:
    """A host:port to listen on; ``off`` (or no, false, none) turns the server off; unset: ``default``."""
    text = (value or "").strip()
    if not text:
        return default
    return None if text.lower() in ("off", "no", "false", "none") else text


def _flag(value: str | None) -> bool:
    """An on/off environment variable: true, 1, yes or on (any case) is on."""
    return (value or "").strip().lower() in ("true", "1", "yes", "on")
