"""The live configuration of a process: reloaded when its files change, the last good one kept on a bad
edit; each version with the matcher and classifier built from it."""

from __future__ import annotations

import gc
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from alerts import log
from alerts.config.load import FEEDS_FILE, REGIONS_FILE, SUBSCRIPTIONS_FILE, Config, load_config
from alerts.errors import ConfigError
from alerts.matching.index import Matcher
from alerts.matching.regions import Classifier

_logger = log.get("alerts.config")


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
