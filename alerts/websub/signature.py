"""HMAC signatures of pushed content (W3C WebSub §8): ``X-Hub-Signature: method=hexdigest``. Pure."""

from __future__ import annotations

import hmac
import string

__all__ = ["METHODS", "sign", "verify"]

METHODS = frozenset({"sha1", "sha256", "sha384", "sha512"})  # the spec's list; sha1 only for old hubs
_HEX = frozenset(string.hexdigits)
_DIGEST_HEX_LENGTH = {"sha1": 40, "sha256": 64, "sha384": 96, "sha512": 128}


def sign(secret: bytes, body: bytes, method: str = "sha256") -> str:
    """The header value a hub sends for ``body``: ``"<method>=<lowercase hex HMAC>"``.

    Raises ValueError for an empty secret or a method the spec does not list.
    """
    method = method.lower()
    if method not in METHODS:
        raise ValueError(f"unknown signature method {method!r}; use one of {sorted(METHODS)}")
    if not secret:
        raise ValueError("the secret is empty")
    return f"{method}={hmac.new(secret, body, method).hexdigest()}"


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    """True if ``header`` (``method=hex``) is the HMAC of ``body`` under ``secret``.

    False, never an exception, for a missing or garbled header, an unknown method or an empty
    secret. The digests are compared in constant time.
    """
    if not header or not secret:
        return False
    method, sep, given = header.strip().partition("=")
    method = method.strip().lower()
    given = given.strip().lower()
    if not sep or method not in METHODS:
        return False
    if len(given) != _DIGEST_HEX_LENGTH[method] or not _HEX.issuperset(given):
        return False
    expected = hmac.new(secret, body, method).hexdigest()
    return hmac.compare_digest(expected, given)
