"""Shared fixtures: a real Redis (the machine's, or a private one), and local sinks and feed servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.service import embedded_redis
from alerts.state.store import Store

pytest_plugins = ["tests.harness.fixtures"]
E2E = Path(__file__).parent / "e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/e2e/ is of the end-to-end tier (``-m e2e``; ``make test-fast`` skips it)."""
    for item in items:
        if item.path.is_relative_to(E2E):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def redis_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """TEST_REDIS_URL if set, else a private redis-server for this session (hermetic: no shared data)."""
    url = os.environ.get("TEST_REDIS_URL")
    if url:
        if not embedded_redis.answers(url):
            pytest.exit(f"TEST_REDIS_URL={url} does not answer", returncode=2)
        yield url
        return
    process = embedded_redis.start(
        embedded_redis.free_port(), tmp_path_factory.mktemp("redis"), persist=False
    )
    yield f"redis://127.0.0.1:{process.args[2]}/9"  # type: ignore[index]
    embedded_redis.stop(process)


@pytest.fixture
def redis_url(redis_server_url: str) -> str:
    """The test Redis, emptied before each test."""
    Store.from_url(redis_server_url).client.flushdb()
    return redis_server_url


@pytest.fixture
def store(redis_url: str) -> Store:
    """A Store on the emptied test Redis."""
    return Store.from_url(redis_url)


@pytest.fixture
def config_dir(tmp_path: Path) -> Path:
    """An empty configuration directory."""
    directory = tmp_path / "config"
    directory.mkdir()
    return directory
