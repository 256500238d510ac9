"""The HTTP client: the only package of breaking-alerts that imports aiohttp's client.

Every request goes through :func:`get_one`, :func:`get_many`, :func:`post_each`/:func:`post_many`
(webhook deliveries) or :func:`post_form` (WebSub hubs). Every aiohttp or OS failure leaves as
:class:`~alerts.errors.FetchError` (worth retrying) or :class:`~alerts.errors.FeedRejected` (will
not change), or for a webhook POST as a :class:`PostOutcome` that says what went wrong; no aiohttp
type escapes. Only http and https URLs with a host are requested, refused before any I/O.

Addresses (see :mod:`alerts.ingest.addresses`): a URL from feed content (an item link, a hub) and
every redirect hop of any GET is refused (:class:`~alerts.errors.AddressRefused`, one
``fetch.refused`` log line) when its host is, or resolves to, a loopback, private, link-local, CGNAT,
multicast, reserved or unspecified address. A checked request connects through a session whose
resolver refuses such answers, so aiohttp connects to exactly the addresses that were checked (no
second lookup, no DNS rebinding window); IP literals, which aiohttp does not resolve, are checked
before the request. Redirects are followed here, hop by hop (at most ``Limits.max_redirects``),
each hop's scheme and address checked; POSTs never follow them. URLs the admin wrote are requested
as written (:attr:`AddressPolicy.trusted_url`); :func:`allow_private_addresses` (the deployment's
``ALERTS_ALLOW_PRIVATE_ADDRESSES``) or a feed's ``allow_private`` lifts the rule.

The calls are synchronous (Celery workers are not async). They share two sessions (unchecked and
checked) on the process's background loop (:mod:`alerts.ingest.loop`), so polling a feed every
second reuses keep-alive connections instead of paying for a new loop, session and TCP/TLS
handshake each time.
"""

from alerts.ingest.http.get import get_each, get_many, get_one
from alerts.ingest.http.messages import (
    USER_AGENT,
    Limits,
    Post,
    PostOutcome,
    Response,
    check_url,
    display,
    parse_retry_after,
    status_line,
)
from alerts.ingest.http.post import post_each, post_form, post_many
from alerts.ingest.http.sessions import (
    CONTENT,
    HUB,
    GuardedResolver,
    allow_private_addresses,
    private_addresses_allowed,
)

__all__ = [
    "CONTENT",
    "HUB",
    "USER_AGENT",
    "GuardedResolver",
    "Limits",
    "Post",
    "PostOutcome",
    "Response",
    "allow_private_addresses",
    "check_url",
    "display",
    "get_each",
    "get_many",
    "get_one",
    "parse_retry_after",
    "post_each",
    "post_form",
    "post_many",
    "private_addresses_allowed",
    "status_line",
]
