"""The WebSub callback server: ``python -m workers.websub`` (``alerts run`` starts it when
``ALERTS_WEBSUB_URL`` is set). Verified pushes become ``alerts.push`` tasks within milliseconds."""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping

from aiohttp import web

from alerts import log
from alerts.state.store import Store
from alerts.websub.server import make_app
from alerts.websub.subscriptions import RedisRegistry
from workers.app import POLL_QUEUE, app

DEFAULT_LISTEN = "0.0.0.0:8787"


def on_content(feed: str, body: bytes, headers: Mapping[str, str]) -> None:
    """Hand a verified push to the workers (runs in a thread of the server)."""
    payload = base64.b64encode(body).decode("ascii")
    app.send_task("alerts.push", args=(feed, payload, headers.get("Content-Type")), queue=POLL_QUEUE)


def main() -> None:
    """Serve the callback application until interrupted."""
    log.configure()
    host, _, port = (os.environ.get("ALERTS_WEBSUB_LISTEN") or DEFAULT_LISTEN).rpartition(":")
    store = Store.from_url(os.environ.get("REDIS_URL") or "redis://localhost:6379/0")
    log.get("alerts.websub").info(
        "websub.listening", host=host, port=int(port), public=os.environ.get("ALERTS_WEBSUB_URL")
    )
    web.run_app(
        make_app(RedisRegistry(store), on_content), host=host, port=int(port), print=None, access_log=None
    )


if __name__ == "__main__":
    main()
