"""The WebSub callback server: ``python -m workers.websub`` (``alerts run`` starts it when
``ALERTS_WEBSUB_URL`` is set). Verified pushes become ``alerts.push`` tasks within milliseconds.

Callbacks are ``{ALERTS_WEBSUB_URL}/websub/{feed}/{token}``; the limits (body sizes, requests per
client IP) are :mod:`alerts.websub.server`'s defaults, held in this process's memory."""

from __future__ import annotations

import base64
from collections.abc import Mapping

from alerts import log
from alerts.service.supervise import POLL_QUEUE
from alerts.state.connection import DEFAULT_URL
from alerts.state.store import Store
from alerts.websub.server import BURST, MAX_BODY, RATE, serve
from alerts.websub.subscriptions import RedisRegistry
from workers.app import SETTINGS, app


def on_content(feed: str, body: bytes, headers: Mapping[str, str]) -> None:
    """Hand a verified push to the workers (runs in a thread of the server)."""
    payload = base64.b64encode(body).decode("ascii")
    app.send_task("alerts.push", args=(feed, payload, headers.get("Content-Type")), queue=POLL_QUEUE)


def main() -> None:
    """Serve the callback application until interrupted."""
    store = Store.from_url(SETTINGS.redis_url or DEFAULT_URL)
    host, _, port = SETTINGS.websub_listen.rpartition(":")
    log.get("alerts.websub").info(
        "websub.listening",
        host=host,
        port=int(port),
        public=SETTINGS.websub_url,
        max_body=MAX_BODY,
        rate=RATE,
        burst=BURST,
    )
    serve(RedisRegistry(store), on_content, SETTINGS.websub_listen)


if __name__ == "__main__":
    main()
