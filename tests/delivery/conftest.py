"""Doubles and fixtures shared by the delivery tests: an ntfy endpoint, the Telegram Bot API double."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from alerts.delivery import channels
from tests.harness.servers import TelegramDouble, ThreadedServer


class NtfySink:
    """An ntfy-style server: records each publish's JSON body and X- headers, and answers with a message
    id of its own (as ntfy does: 12 letters and digits, ``id`` in the JSON answer)."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.ids: list[str] = []
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._publish)
        self.server = ThreadedServer(app).start()

    async def _publish(self, request: web.Request) -> web.Response:
        body = await request.json()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-")}
        message_id = f"m{secrets.token_hex(6)[:11]}"
        self.published.append({"body": body, "headers": headers})
        self.ids.append(message_id)
        return web.json_response({"id": message_id, "time": 1714557600, "event": "message", **body})

    @property
    def apprise_url(self) -> str:
        return f"ntfy://127.0.0.1:{self.server.port}/breaking"


@pytest.fixture
def ntfy() -> Iterator[NtfySink]:
    """An ntfy endpoint on 127.0.0.1."""
    sink = NtfySink()
    yield sink
    sink.server.stop()


@pytest.fixture
def telegram_api(telegram: TelegramDouble, monkeypatch: pytest.MonkeyPatch) -> TelegramDouble:
    """Apprise's Telegram plugin pointed at the local Bot API double."""
    from apprise.plugins.telegram import NotifyTelegram

    monkeypatch.setattr(NotifyTelegram, "notify_url", NotifyTelegram.notify_url)  # restored after the test
    channels.use_telegram_api(telegram.api)
    return telegram
