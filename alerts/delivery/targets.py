"""A subscriber's notify URL: a native webhook (``http(s)://``, :mod:`alerts.delivery.webhook`) or an
Apprise URL (:mod:`alerts.delivery.channels`, imported only when such a URL is met)."""

from __future__ import annotations

from alerts.delivery import webhook


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be used, or None when it can."""
    if webhook.is_webhook(url):
        return webhook.url_problem(url)
    from alerts.delivery import channels

    return channels.url_problem(url)


def private(url: str) -> str:
    """``url`` with its secrets masked (safe to log)."""
    if webhook.is_webhook(url):
        return webhook.private(url)
    from alerts.delivery import channels

    return channels.private(url)
