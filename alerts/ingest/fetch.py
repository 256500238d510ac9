"""Polling a feed over HTTP: conditional GET (ETag, Last-Modified), what a 304 and the retryable
statuses mean, ``Cache-Control: max-age`` and the ``Link`` header, on top of :mod:`alerts.ingest.http`.

Every failure leaves as :class:`~alerts.errors.FetchError` (worth retrying; :class:`HttpStatusError`
carries the server's Retry-After) or :class:`~alerts.errors.FeedRejected` (will not change;
:class:`~alerts.errors.AddressRefused` when the URL or a redirect leads to a restricted address).

:func:`fetch_one` polls a feed: its URL is the admin's, requested as written, and its redirects are
checked (:data:`FEED_URL`, or :meth:`AddressPolicy.feed_url` to carry the feed's ``allow_private``).
:func:`fetch_many` fetches URLs from content (item links): each is checked, and its redirects.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from alerts.errors import FeedRejected, FetchError
from alerts.ingest.addresses import AddressPolicy
from alerts.ingest.http import CONTENT, Limits, Response, get_each, get_many, get_one, parse_retry_after

__all__ = [
    "ACCEPT",
    "CONTENT",
    "FEED_URL",
    "AddressPolicy",
    "FetchResult",
    "HttpStatusError",
    "Limits",
    "Validators",
    "fetch_each",
    "fetch_many",
    "fetch_one",
]

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, application/json, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.8"
)
ACCEPT_ENCODING = "gzip, deflate"
_RETRY_STATUSES = frozenset({408, 429})
_MAX_AGE = re.compile(r"(?:^|,)\s*(?:s-)?max-age\s*=\s*\"?(\d+)", re.IGNORECASE)
_NO_CACHE = re.compile(r"\bno-(?:cache|store)\b", re.IGNORECASE)
FEED_URL = AddressPolicy(trusted_url=True, source="feed")  # a feed URL the admin wrote


@dataclass(frozen=True, slots=True)
class Validators:
    """Conditional GET state kept between polls of one feed."""

    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What one successful (200-class or 304) fetch returned."""

    url: str  # final URL after redirects
    status: int
    body: bytes  # b"" when not modified
    content_type: str | None  # raw Content-Type header, parameters included
    validators: Validators  # to store for the next poll (kept when a 304 omits them)
    not_modified: bool
    elapsed: float  # seconds
    max_age: float | None = None  # Cache-Control: max-age, seconds: do not poll again sooner
    link: str | None = None  # the Link header (WebSub hub discovery)


class HttpStatusError(FetchError):
    """A retryable HTTP status (5xx, 429, 408); ``retry_after`` is the server's hint in seconds."""

    def __init__(self, message: str, status: int, url: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.retry_after = retry_after

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.status, self.url, self.retry_after))


def fetch_one(
    url: str,
    validators: Validators = Validators(),
    limits: Limits = Limits(),
    policy: AddressPolicy = FEED_URL,
) -> FetchResult:
    """GET the feed URL ``url`` conditionally; raises FetchError (retry later) or FeedRejected (drop)."""
    return _result(get_one(url, _request_headers(validators), limits, policy), validators, limits)


def fetch_many(
    urls_and_validators: Sequence[tuple[str, Validators]],
    limits: Limits = Limits(),
    policy: AddressPolicy = CONTENT,
    budget: float | None = None,
) -> list[FetchResult | FetchError | FeedRejected]:
    """Every fetch at once: one result or error per input, in order; with a ``budget`` (seconds), the
    call ends by then and what is not done is a FetchError."""
    requests = [(url, _request_headers(validators)) for url, validators in urls_and_validators]
    results: list[FetchResult | FetchError | FeedRejected] = []
    answers = get_many(requests, limits, policy, budget)
    for answer, (_, validators) in zip(answers, urls_and_validators, strict=True):
        if isinstance(answer, Response):
            try:
                results.append(_result(answer, validators, limits))
            except (FetchError, FeedRejected) as exc:
                results.append(exc)
        else:
            results.append(answer)
    return results


def fetch_each(
    feeds: Sequence[tuple[str, Validators, AddressPolicy]], limits: Limits = Limits(), concurrency: int = 32
) -> Iterator[list[tuple[int, FetchResult | FetchError | FeedRejected]]]:
    """Poll many feeds at once (``concurrency`` at a time), each URL with its validators and address
    policy; as polls end, yield the (index, result or error) pairs of those that ended together."""
    requests = [(url, _request_headers(validators), policy) for url, validators, policy in feeds]
    for ended in get_each(requests, limits, concurrency):
        results: list[tuple[int, FetchResult | FetchError | FeedRejected]] = []
        for index, answer in ended:
            if isinstance(answer, Response):
                try:
                    results.append((index, _result(answer, feeds[index][1], limits)))
                except (FetchError, FeedRejected) as exc:
                    results.append((index, exc))
            else:
                results.append((index, answer))
        yield results


def _request_headers(validators: Validators) -> dict[str, str]:
    headers = {"Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING}
    if validators.etag:
        headers["If-None-Match"] = validators.etag
    if validators.last_modified:
        headers["If-Modified-Since"] = validators.last_modified
    return headers


def _result(response: Response, validators: Validators, limits: Limits) -> FetchResult:
    """The answer as a poll sees it; raises for a status that is not 2xx or 304."""
    status, headers = response.status, response.headers
    if status >= 500 or status in _RETRY_STATUSES:
        retry_after = parse_retry_after(headers.get("retry-after"))
        hint = f"; retry after {retry_after:g}s" if retry_after is not None else ""
        raise HttpStatusError(
            f"{response.status_line} from {response.url}{hint}",
            status=status,
            url=response.url,
            retry_after=retry_after,
        )
    if 300 <= status < 400 and headers.get("location") and limits.max_redirects <= 0:
        raise FeedRejected(f"too many redirects (limit {limits.max_redirects}) from {response.url}")
    if status != 304 and not 200 <= status < 300:
        raise FeedRejected(f"{response.status_line} from {response.url}")
    not_modified = status == 304
    return FetchResult(
        url=response.url,
        status=status,
        body=response.body,
        content_type=headers.get("content-type"),
        validators=Validators(
            etag=headers.get("etag") or (validators.etag if not_modified else None),
            last_modified=headers.get("last-modified")
            or (validators.last_modified if not_modified else None),
        ),
        not_modified=not_modified,
        elapsed=response.elapsed,
        max_age=_max_age(headers.get("cache-control")),
        link=headers.get("link"),
    )


def _max_age(cache_control: str | None) -> float | None:
    """Seconds from ``Cache-Control: max-age=N`` (None without one; no-cache/no-store mean 0)."""
    if not cache_control:
        return None
    if _NO_CACHE.search(cache_control):
        return 0.0
    match = _MAX_AGE.search(cache_control)
    return float(match.group(1)) if match else None
