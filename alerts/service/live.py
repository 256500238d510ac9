"""The live configuration of a process: reloaded when its files change, the last good one kept on a bad
edit; each version with the matcher and classifier built from it.

A reload that removes every subscription or feed, or more than half of them, is suspicious (an editor
that truncated a file before writing it, a half-saved edit): it is held back with one
``config.suspicious`` warning, and the last good config stays in force until the files have been
unchanged for ``SUSPICIOUS_HOLD`` seconds, or ``alerts check --accept`` accepts that very config.

Each load and each rejected edit is written to a :class:`LoadRecord` (the store's ``config`` record:
``alerts status`` and /readyz read it) and counted in ``alerts_config_reloads_total``, once per
change however many processes see it (the record says which write was news).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from alerts import log, metrics
from alerts.config.load import FEEDS_FILE, REGIONS_FILE, SUBSCRIPTIONS_FILE, Config, load_config
from alerts.errors import AlertsError, ConfigError
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
SUSPICIOUS_HOLD = 5.0  # seconds the files must stay unchanged before a suspicious reload applies
ACCEPTED_FILE = ".accepted"  # in the config directory: the fingerprint `alerts check --accept` wrote


def suspicious(old: Config, new: Config) -> str | None:
    """Why replacing ``old`` by ``new`` looks like an accident (most subscriptions or feeds gone), or None."""
    for what, before, after in (
        ("subscriptions", len(old.subscriptions), len(new.subscriptions)),
        ("feeds", len(old.feeds), len(new.feeds)),
    ):
        if before and (after == 0 or after < before / 2):
            return f"{what}: {before} -> {after}"
    return None


def accept(config: Config) -> Path:
    """Mark ``config`` as meant (``alerts check --accept``): running processes apply it at once."""
    path = config.directory / ACCEPTED_FILE
    path.write_text(config.fingerprint + "\n", encoding="utf-8")
    return path


class LoadRecord(Protocol):
    """Where loads and rejections are reported (:class:`alerts.state.config_record.ConfigRecord`);
    each returns True when the report is news (a change no other process reported yet)."""

    def loaded(self, fingerprint: str, feeds: int, subscriptions: int, at: float) -> bool: ...

    def rejected(self, problems: Sequence[str], at: float) -> bool: ...


class LiveConfig:
    """Holds the current :class:`Snapshot`, reloading it when a configuration file changes."""

    def __init__(self, directory: Path, record: LoadRecord | None = None, channels: bool = True) -> None:
        """``channels``: check the notify URLs (with Apprise, whose plugins weigh some 40 MB); a
        process that never sends (the poll worker) leaves that to those that do."""
        self._directory = directory
        self._record = record
        self._channels = channels
        self._lock = threading.Lock()
        self._stamp = self._files_stamp()
        self._checked = time.monotonic()
        try:
            config = load_config(directory, channels=channels)
        except ConfigError as exc:
            self._rejected(exc)
            raise
        self._snapshot = self._build(config)
        self._loaded(config)
        self._held: tuple[Config, float] | None = None  # a suspicious config, and since when it is stable

    def current(self) -> Snapshot:
        """The newest valid snapshot; an invalid edit is logged once and the last good one kept.

        The files are looked at no more than every ``CHECK_EVERY`` seconds (a fan-out calls this for
        every delivery)."""
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY:
            return self._snapshot
        self._checked = now
        stamp = self._files_stamp()
        if stamp != self._stamp or self._held is not None:
            with self._lock:
                if stamp != self._stamp:
                    self._stamp = stamp
                    self._reload(now)
                elif self._held is not None:
                    self._release(now)
        return self._snapshot

    def _reload(self, now: float) -> None:
        self._held = None
        try:
            config = load_config(self._directory, channels=self._channels)
        except ConfigError as exc:
            _logger.error("config.rejected", problems=[str(p) for p in exc.problems])
            self._rejected(exc)
            return
        if config.fingerprint == self._snapshot.config.fingerprint:
            self._loaded(config)  # unchanged, or a bad edit undone: the files are valid again
            return
        reason = suspicious(self._snapshot.config, config)
        if reason is not None and not self._accepted(config):
            self._held = (config, now)
            _logger.warning(
                "config.suspicious",
                reason=reason,
                fingerprint=config.fingerprint,
                hold_s=SUSPICIOUS_HOLD,
                hint="kept the last good config; it applies once the files stay unchanged, or now with "
                "`alerts check --accept`",
            )
            return
        self._apply(config)

    def _release(self, now: float) -> None:
        """Apply the held config once it has stayed unchanged for the hold, or was accepted."""
        assert self._held is not None
        config, since = self._held
        if now - since >= SUSPICIOUS_HOLD or self._accepted(config):
            self._held = None
            self._apply(config)

    def _accepted(self, config: Config) -> bool:
        try:
            return (self._directory / ACCEPTED_FILE).read_text(encoding="utf-8").strip() == config.fingerprint
        except OSError:
            return False

    def _loaded(self, config: Config) -> None:
        news = self._report(
            lambda record: record.loaded(
                config.fingerprint, len(config.feeds), len(config.subscriptions), time.time()
            )
        )
        if news:
            metrics.config_reload("loaded")

    def _rejected(self, exc: ConfigError) -> None:
        problems = [log.redact(str(problem)) for problem in exc.problems]
        if self._report(lambda record: record.rejected(problems, time.time())):
            metrics.config_reload("rejected")

    def _report(self, write: Callable[[LoadRecord], bool]) -> bool:
        """Write to the record; True when news (also when there is no record, or Redis is away: then
        every process counts it rather than none)."""
        if self._record is None:
            return True
        try:
            return write(self._record)
        except AlertsError as exc:
            _logger.debug("config.unrecorded", error=str(exc))
            return True

    def _apply(self, config: Config) -> None:
        self._snapshot = self._build(config)
        self._loaded(config)
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
