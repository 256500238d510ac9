"""What the workers last did with the configuration files: the version they loaded, or the edit they
rejected. One hash for the deployment (``alerts:config``), written by every process that (re)loads
the files and read by ``alerts status``, /readyz and the metrics.

Each write says whether it was news (another version, or loaded after a rejection; another set of
problems): the first process to see a change reports it, so a change is counted once however many
processes load it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import redis

from alerts.state import keys
from alerts.state.connection import script, translated
from alerts.text import digest

PROBLEMS_CHARS = 2000  # what is kept of a rejected edit's problems


@dataclass(frozen=True, slots=True)
class ConfigStatus:
    """The record as read (:meth:`ConfigRecord.get`)."""

    state: str | None  # "loaded", "rejected", or None when no process has reported yet
    fingerprint: str | None
    loaded_at: float | None  # the last successful load by any process
    feeds: int | None
    subscriptions: int | None
    rejected_at: float | None  # the last rejected edit, if any
    problems: tuple[str, ...]  # of that edit

    @property
    def valid(self) -> bool | None:
        """False while the files on disk are rejected (the last good config still runs)."""
        return None if self.state is None else self.state == "loaded"


class ConfigRecord:
    """The ``alerts:config`` hash."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._record = script(client, "config_record")

    def loaded(self, fingerprint: str, feeds: int, subscriptions: int, at: float) -> bool:
        """A process loaded the version ``fingerprint``; True when that is news."""
        fields: list[str | int] = ["fingerprint", fingerprint, "loaded_at", repr(at)]
        return self._write("loaded", fingerprint, [*fields, "feeds", feeds, "subscriptions", subscriptions])

    def rejected(self, problems: Sequence[str], at: float) -> bool:
        """A process rejected an edit for these problems; True when that is news."""
        text = "\n".join(problems)[:PROBLEMS_CHARS]
        return self._write("rejected", digest(text), ["problems", text, "rejected_at", repr(at)])

    def _write(self, state: str, identity: str, fields: Sequence[str | int]) -> bool:
        with translated():
            return bool(self._record(keys=[keys.CONFIG], args=[state, identity, *fields]))

    def get(self) -> ConfigStatus:
        """The record (its fields None when no process has reported yet)."""
        with translated():
            raw = {str(k): str(v) for k, v in self._client.hgetall(keys.CONFIG).items()}

        def number(name: str) -> float | None:
            return float(raw[name]) if raw.get(name) else None

        feeds, subscriptions = number("feeds"), number("subscriptions")
        return ConfigStatus(
            state=raw.get("state") or None,
            fingerprint=raw.get("fingerprint") or None,
            loaded_at=number("loaded_at"),
            feeds=None if feeds is None else int(feeds),
            subscriptions=None if subscriptions is None else int(subscriptions),
            rejected_at=number("rejected_at"),
            problems=tuple(line for line in (raw.get("problems") or "").split("\n") if line),
        )
