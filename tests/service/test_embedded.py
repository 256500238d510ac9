"""The private Redis that `alerts run` starts on a machine without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts.config.settings import Settings
from alerts.service import embedded_redis
from alerts.state.store import Store


def test_started_server_answers_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    """A started server answers PING, and what it stored is still there after a restart."""
    port = embedded_redis.free_port()
    process = embedded_redis.start(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        assert embedded_redis.answers(url)
        Store.from_url(url).client.set("alerts:test", "kept")
    finally:
        embedded_redis.stop(process)
    assert not embedded_redis.answers(url)
    process = embedded_redis.start(port, tmp_path)
    try:
        assert Store.from_url(url).client.get("alerts:test") == "kept"
    finally:
        embedded_redis.stop(process)


def test_ensure_redis_prefers_an_explicit_url() -> None:
    """REDIS_URL, when set, is used as is and nothing is started."""
    assert embedded_redis.ensure_redis("redis://example.invalid:1/0", None) == (
        "redis://example.invalid:1/0",
        None,
    )


def test_ensure_redis_starts_a_private_server_when_none_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no REDIS_URL and nothing on the local port, a private server is started in the state dir."""
    monkeypatch.setattr(embedded_redis, "LOCAL_URL", f"redis://127.0.0.1:{embedded_redis.free_port()}/0")
    state_dir = Settings.from_env({"ALERTS_STATE_DIR": str(tmp_path / "state")}).state_dir
    url, process = embedded_redis.ensure_redis(None, state_dir)
    assert process is not None
    try:
        assert url != embedded_redis.LOCAL_URL and embedded_redis.answers(url)
        assert Store.from_url(url).ping()
    finally:
        embedded_redis.stop(process)
    assert (tmp_path / "state" / "alerts.rdb").exists()


def test_ensure_redis_uses_the_local_server_when_it_answers(
    redis_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no REDIS_URL and a Redis answering locally, that one is used and nothing is started."""
    monkeypatch.setattr(embedded_redis, "LOCAL_URL", redis_server_url)
    assert embedded_redis.ensure_redis(None, None) == (redis_server_url, None)
