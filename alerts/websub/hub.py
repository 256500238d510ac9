"""Ask a WebSub hub to subscribe or unsubscribe (W3C WebSub §5.1), through :mod:`alerts.ingest.http`.

The hub answers the request itself with 202 Accepted (any 2xx is success) and verifies our
intent later, asynchronously, with a GET on the callback (see :mod:`alerts.websub.server`).
Every failure leaves as :class:`HubError` (a :class:`~alerts.errors.FetchError`: retry later);
an unusable hub URL as :class:`~alerts.errors.FeedRejected`. The secret never appears in an
error message.
"""

from __future__ import annotations

from alerts.errors import FeedRejected, FetchError
from alerts.ingest import http
from alerts.ingest.addresses import AddressPolicy

__all__ = ["HubError", "subscribe_sync"]

MODES = frozenset({"subscribe", "unsubscribe"})
MAX_SECRET_BYTES = 199  # the spec: "MUST be less than 200 bytes"
_REASON_CHARS = 200


class HubError(FetchError):
    """The hub could not be reached or did not accept the request; ``status`` is its HTTP status if any."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (str(self), self.status))


def _form(
    mode: str, topic: str, callback: str, secret: str | None, lease_seconds: int | None
) -> dict[str, str]:
    if mode not in MODES:
        raise ValueError(f"hub.mode must be one of {sorted(MODES)}, not {mode!r}")
    form = {"hub.mode": mode, "hub.topic": topic, "hub.callback": callback}
    if mode == "subscribe":
        if secret:
            if len(secret.encode("utf-8")) > MAX_SECRET_BYTES:
                raise ValueError("hub.secret must be less than 200 bytes")
            form["hub.secret"] = secret
        if lease_seconds is not None:
            if lease_seconds <= 0:
                raise ValueError("hub.lease_seconds must be positive")
            form["hub.lease_seconds"] = str(lease_seconds)
    return form


def _hub_url(hub_url: str) -> str:
    try:
        url = http.check_url(hub_url)
    except FeedRejected:
        raise FeedRejected(f"hub URL must be absolute http(s): {hub_url!r}") from None
    return http.display(url)


def subscribe_sync(
    hub_url: str,
    topic: str,
    callback: str,
    secret: str | None,
    mode: str = "subscribe",
    lease_seconds: int | None = 86400,
    timeout: float = 10,
    *,
    allow_insecure: bool = False,
    policy: AddressPolicy = http.HUB,
) -> None:
    """POST the (un)subscription form to ``hub_url``; returns when the hub accepted it (2xx).

    ``hub.secret`` and ``hub.lease_seconds`` are sent only for ``mode="subscribe"``; a secret is
    never sent to a plain-http hub unless ``allow_insecure`` (the feed's ``allow_insecure_hub``).
    The hub came from feed content, so its address is checked against ``policy`` (AddressRefused).
    Redirects are not followed (a redirected POST would lose its form). Raises :class:`HubError` for
    a non-2xx answer, a timeout or a network error, FeedRejected for an unusable hub URL or a secret
    that would travel in the clear, and ValueError for bad arguments. Safe from any thread; waits at
    most ``timeout`` + 5 s.
    """
    where = _hub_url(hub_url)  # refuse before any thread or loop is started
    form = _form(mode, topic, callback, secret, lease_seconds)
    if "hub.secret" in form and not allow_insecure and not where.lower().startswith("https:"):
        raise FeedRejected(f"refusing to send hub.secret to plain-http hub {where}")
    try:
        status, reason, detail = http.post_form(hub_url, form, timeout, _REASON_CHARS, policy)
    except FetchError as exc:
        raise HubError(f"asking hub {where} to {mode} {topic}: {exc}") from None
    if not 200 <= status < 300:
        line = http.status_line(status, reason)
        raise HubError(
            f"hub {where} refused {mode} of {topic}: {line}" + (f": {detail}" if detail else ""),
            status=status,
        )
