"""The WebSub tests' hub doubles and publishers listen on 127.0.0.1, and a hub URL comes from feed
content, which may not reach a private address: they run with private addresses allowed, as
``ALERTS_ALLOW_PRIVATE_ADDRESSES=true`` does (tests/ingest/test_ssrf.py and tests/e2e/test_ssrf.py
prove the refusal with it off)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from alerts.ingest import http


@pytest.fixture(autouse=True)
def hubs_on_loopback() -> Iterator[None]:
    """Private addresses allowed for this test (a Runtime built in it applies its own setting)."""
    before = http.private_addresses_allowed()
    http.allow_private_addresses(True)
    yield
    http.allow_private_addresses(before)
