"""Connecting to Redis, and the one mapping of its connection errors to :class:`StoreUnavailable`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from importlib import resources
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script

from alerts.errors import StoreUnavailable
from alerts.state import keys, redis_url

DEFAULT_URL = "redis://localhost:6379/0"


def connect(url: str = DEFAULT_URL, timeout: float | None = None) -> redis.Redis:
    """A client of the Redis at ``url`` (one Redis, or a Sentinel-watched primary: see
    :mod:`alerts.state.redis_url`), with short timeouts so an outage fails fast (``timeout``
    bounds both connecting and each command, for a health check that must answer quickly)."""
    return redis_url.client(
        url,
        socket_timeout=timeout or 5,
        socket_connect_timeout=timeout or 3,
        health_check_interval=30,
        decode_responses=True,
    )


PRELUDE = "_liveness"  # helpers every script may use: owners' liveness, delivery responsibility


def _read(name: str) -> str:
    return (resources.files("alerts.state") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


@cache
def _source(name: str) -> str:
    prelude = _read(PRELUDE)
    for constant in ("OWNED", "OUTBOX_RECORD", "HELD_TAKEN", "HELD_DUE", "HELD"):  # longest first
        prelude = prelude.replace(f"${constant}", getattr(keys, constant))
    return prelude + "\n" + _read(name)


def script(client: redis.Redis, name: str) -> Script:
    """The Lua script ``lua/<name>.lua`` after the prelude (``lua/_liveness.lua``), registered on
    ``client`` (EVALSHA, loaded on first use).

    Some scripts reach keys named in records or tokens (an owner's set, a delivery's record) that are
    not in KEYS: the store is one Redis (or a Sentinel-watched primary), never a Cluster."""
    return client.register_script(_source(name))


def queue_script(pipe: Pipeline, called: Script, keys: Sequence[str], args: Sequence[object]) -> None:
    """Queue ``called`` on ``pipe`` by its SHA alone (redis-py would ask SCRIPT EXISTS first: one
    more round trip per pipeline); run the pipeline with :func:`execute_scripted`."""
    pipe.evalsha(called.sha, len(keys), *keys, *args)  # type: ignore[arg-type]


def execute_scripted(
    client: redis.Redis, build: Callable[[Pipeline], None], scripts: Sequence[Script]
) -> list[Any]:
    """Build a pipeline with ``build`` (its scripts queued by :func:`queue_script`) and run it; if
    Redis lacks a script (restarted or flushed since), load ``scripts`` and run it again, so every
    command ``build`` queues must be safe to repeat."""
    for attempt in range(2):
        pipe = client.pipeline(transaction=False)
        build(pipe)
        try:
            return list(pipe.execute())
        except redis.exceptions.NoScriptError:
            if attempt:
                raise
            for each in scripts:
                client.script_load(each.script)
    raise AssertionError("unreachable")


@contextmanager
def translated() -> Iterator[None]:
    """Raise :class:`StoreUnavailable` for a Redis that cannot be reached (or times out)."""
    try:
        yield
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise StoreUnavailable(f"redis unavailable: {redis_url.described(exc)}") from exc
