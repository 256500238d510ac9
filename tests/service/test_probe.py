"""Asking whether a Redis answers, and naming its URL without the password."""

from __future__ import annotations

import pytest

from alerts.service import embedded_redis
from alerts.state import probe


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:secret@127.0.0.1:6380/0", "redis://:***@127.0.0.1:6380/0"),
        ("redis://default:secret@localhost/2", "redis://default:***@localhost/2"),
        ("rediss://user:p%40ss@[::1]:6390/0", "rediss://user:***@[::1]:6390/0"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("redis://user@host:1/0", "redis://user@host:1/0"),
    ],
)
def test_masked_hides_only_the_password(url: str, shown: str) -> None:
    """The password becomes ***; user, host, port and database stay; a URL without one is unchanged."""
    assert probe.masked(url) == shown


def test_reachable_is_none_for_a_server_that_answers(redis_server_url: str) -> None:
    """A Redis that answers PING gives no reason."""
    assert probe.reachable(redis_server_url) is None


def test_reachable_names_why_a_closed_port_does_not_answer() -> None:
    """Nothing listening: the reason is one line, without the password, and comes at once."""
    reason = probe.reachable(f"redis://:secret@127.0.0.1:{embedded_redis.free_port()}/0", timeout=1)
    assert reason and "refused" in reason.lower()
    assert "secret" not in reason and "\n" not in reason


def test_reachable_rejects_what_is_not_a_redis_url() -> None:
    """A URL of another scheme is refused before any connection."""
    assert "not a Redis URL" in (probe.reachable("http://127.0.0.1:9/") or "")
