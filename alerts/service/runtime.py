"""The live configuration of a process: reloaded when its files change, last good kept on a bad edit."""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from alerts import log
from alerts.config.load import (
    FEEDS_FILE,
    REGIONS_FILE,
    SUBSCRIPTIONS_FILE,
    Config,
    config_dir,
    load_config,
    parse_duration,
)
from alerts.errors import ConfigError
from alerts.matching.index import Matcher
from alerts.matching.regions import Classifier
from alerts.state.store import DEFAULT_URL, Store

DEFAULT_DEDUPE_WINDOW = "48h"
_logger = log.get("alerts.config")


@dataclass(frozen=True)
class Settings:
    """Process settings from the environment (the YAML files hold feeds and subscriptions)."""

    config_dir: Path
    redis_url: str
    dedupe_window: int
    host_concurrency: int = 2
    websub_url: str | None = None  # public base URL of the WebSub callback server (None: no WebSub)
    websub_lease: int = 86400
    delivery_max_age: float = 6 * 3600.0  # a delivery still failing after this is dead
    claim_hold: int = 60  # poll lock, host slot and unconfirmed claims last this long (a dead worker's)
    delivery_lease: float = 120.0  # a claimed delivery whose worker died is retried after this
    sweep_lease: float = 30.0  # a delivery handed to a task is not handed out again before this
    history_retention: int = 7 * 86400  # how long `alerts history` remembers deliveries

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read ``ALERTS_CONFIG``, ``REDIS_URL`` and ``ALERTS_DEDUPE_WINDOW``."""
        env = os.environ if env is None else env
        window = parse_duration(env.get("ALERTS_DEDUPE_WINDOW") or DEFAULT_DEDUPE_WINDOW)
        return cls(
            config_dir=config_dir(env),
            redis_url=env.get("REDIS_URL") or DEFAULT_URL,
            dedupe_window=max(60, int(window)),
            host_concurrency=max(1, int(env.get("ALERTS_HOST_CONCURRENCY") or 2)),
            websub_url=(env.get("ALERTS_WEBSUB_URL") or "").rstrip("/") or None,
            websub_lease=int(parse_duration(env.get("ALERTS_WEBSUB_LEASE") or "1d")),
            delivery_max_age=parse_duration(env.get("ALERTS_DELIVERY_MAX_AGE") or "6h"),
            claim_hold=max(5, int(parse_duration(env.get("ALERTS_CLAIM_HOLD") or "60s"))),
            delivery_lease=parse_duration(env.get("ALERTS_DELIVERY_LEASE") or "120s"),
            sweep_lease=parse_duration(env.get("ALERTS_SWEEP_LEASE") or "30s"),
            history_retention=int(parse_duration(env.get("ALERTS_HISTORY_RETENTION") or "7d")),
        )


@dataclass(frozen=True)
class Snapshot:
    """One consistent view: a config and the matcher built from it."""

    config: Config
    matcher: Matcher
    classifier: Classifier


CHECK_EVERY = 0.5


class LiveConfig:
    """Holds the current :class:`Snapshot`, reloading it when a configuration file changes."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._lock = threading.Lock()
        self._stamp = self._files_stamp()
        self._checked = time.monotonic()
        self._snapshot = self._build(load_config(directory))

    def current(self) -> Snapshot:
        """The newest valid snapshot; an invalid edit is logged once and the last good one kept.

        The files are looked at no more than every ``CHECK_EVERY`` seconds (a fan-out calls this for
        every delivery)."""
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY:
            return self._snapshot
        self._checked = now
        stamp = self._files_stamp()
        if stamp != self._stamp:
            with self._lock:
                if stamp != self._stamp:
                    self._stamp = stamp
                    self._reload()
        return self._snapshot

    def _reload(self) -> None:
        try:
            config = load_config(self._directory)
        except ConfigError as exc:
            _logger.error("config.rejected", problems=[str(p) for p in exc.problems])
            return
        if config.fingerprint != self._snapshot.config.fingerprint:
            self._snapshot = self._build(config)
            _logger.info(
                "config.reloaded",
                fingerprint=config.fingerprint,
                feeds=len(config.feeds),
                subscriptions=len(config.subscriptions),
            )

    def _files_stamp(self) -> tuple[float, ...]:
        stamps = []
        for name in (FEEDS_FILE, SUBSCRIPTIONS_FILE, REGIONS_FILE):
            try:
                stat = (self._directory / name).stat()
                stamps += [stat.st_mtime_ns, stat.st_size]
            except OSError:
                stamps += [0, 0]
        return tuple(stamps)

    @staticmethod
    def _build(config: Config) -> Snapshot:
        return build_snapshot(config)


def build_snapshot(config: Config) -> Snapshot:
    """The matcher and classifier for ``config``; the index is frozen out of the garbage collector."""
    log.add_secrets(config.secrets)
    snapshot = Snapshot(config, Matcher(config.subscriptions), Classifier.build(config.taxonomy))
    gc.collect()
    gc.freeze()  # a large index is long-lived: scanning it in every collection costs more than matching
    return snapshot


class Runtime:
    """Everything a pipeline step needs: settings, live config and the store."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.live = LiveConfig(settings.config_dir)
        self.store = Store.from_url(settings.redis_url)

    @classmethod
    def from_env(cls) -> Runtime:
        """A runtime for this process's environment; raises ConfigError when the config is invalid."""
        return cls(Settings.from_env())
