"""REDIS_URL's two forms, and the one place each becomes a redis-py client or Celery's broker settings.

- One Redis: ``redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]``, ``rediss://...`` or ``unix://...``,
  as redis-py reads them.
- A primary watched by Redis Sentinel: the sentinels, ``;``-separated, then the database and the
  name the sentinels know the primary by::

      sentinel://[[USER]:PASSWORD@]HOST[:PORT];sentinel://HOST2[:PORT]/DB?master_name=NAME

  The credentials (written on any one sentinel, the first that has them wins) are the primary's;
  ``sentinel_password=`` in the query is the sentinels' own, when they have one. Port 26379 when
  none is given. Every client asks the sentinels where the primary is and asks again after a
  failover, so the service follows a promoted replica by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
from redis.sentinel import MasterNotFoundError, Sentinel

SCHEME = "sentinel"
SENTINEL_PORT = 26379
_QUERY_KEYS = {"master_name", "sentinel_password"}


@dataclass(frozen=True)
class SentinelTarget:
    """A Sentinel-watched primary: where to ask, for what name, and how to log in to it."""

    sentinels: tuple[tuple[str, int], ...]
    master_name: str
    db: int = 0
    username: str | None = None
    password: str | None = None
    sentinel_password: str | None = None

    def credentials(self) -> dict[str, str]:
        """The primary's username and password, for the keywords redis-py takes."""
        given = {"username": self.username, "password": self.password}
        return {key: value for key, value in given.items() if value}


def is_sentinel(url: str) -> bool:
    """True for a ``sentinel://`` REDIS_URL."""
    return url.strip().lower().startswith(f"{SCHEME}://")


def sentinel_target(url: str) -> SentinelTarget:
    """The target a ``sentinel://`` URL names; ValueError, in words an admin can act on, when it is
    not one (another scheme in the list, no host, a bad port or database, no ``master_name``)."""
    sentinels: list[tuple[str, int]] = []
    db, username, password, query = 0, None, None, {}
    for part in url.strip().split(";"):
        parts = urlsplit(part.strip())
        if parts.scheme.lower() != SCHEME:
            raise ValueError(f"every address of a sentinel REDIS_URL starts sentinel://, not {part!r}")
        try:
            host, port = parts.hostname, parts.port or SENTINEL_PORT
        except ValueError as exc:
            raise ValueError(f"bad sentinel port in {_masked_part(part)!r}") from exc
        if not host:
            raise ValueError(f"no sentinel host in {_masked_part(part)!r}")
        sentinels.append((host, port))
        if parts.password is not None and password is None:
            username, password = unquote(parts.username or "") or None, unquote(parts.password)
        if parts.path.strip("/"):
            db = _database(parts.path)
        for key, values in parse_qs(parts.query).items():
            if key not in _QUERY_KEYS:
                known = ", ".join(sorted(_QUERY_KEYS))
                raise ValueError(f"unknown sentinel REDIS_URL option {key!r} (known: {known})")
            query[key] = values[-1]
    if not query.get("master_name"):
        raise ValueError("a sentinel REDIS_URL needs ?master_name=NAME (the name the sentinels monitor)")
    return SentinelTarget(
        tuple(sentinels), query["master_name"], db, username, password, query.get("sentinel_password")
    )


def client(url: str, **options: Any) -> redis.Redis:
    """A client of the Redis ``url`` names; ``options`` are redis-py connection keywords (timeouts,
    decoding). For a sentinel URL the client finds the current primary on each new connection."""
    if not is_sentinel(url):
        return redis.Redis.from_url(url, **options)
    target = sentinel_target(url)
    asking = {key: value for key, value in options.items() if key.startswith("socket_")}
    if target.sentinel_password:
        asking["password"] = target.sentinel_password
    sentinel = Sentinel(list(target.sentinels), sentinel_kwargs=asking, **options)  # type: ignore[no-untyped-call]
    primary: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]
        target.master_name, db=target.db, **target.credentials()
    )
    return primary


def celery_broker(url: str) -> tuple[str, dict[str, Any]]:
    """Celery's broker URL and the transport options it needs for ``url``: for a sentinel URL, kombu's
    own form (each sentinel with the primary's credentials and database, ``;``-separated) and the
    primary's name (kombu takes it from the transport options, not the URL)."""
    if not is_sentinel(url):
        return url, {}
    target = sentinel_target(url)
    login = ""
    if target.password is not None:
        login = f"{quote(target.username or '', safe='')}:{quote(target.password, safe='')}@"
    addresses = [f"{_host(host)}:{port}" for host, port in target.sentinels]
    broker = ";".join(f"{SCHEME}://{login}{address}/{target.db}" for address in addresses)
    options: dict[str, Any] = {"master_name": target.master_name}
    if target.sentinel_password:
        options["sentinel_kwargs"] = {"password": target.sentinel_password}
    return broker, options


def described(exc: BaseException) -> str:
    """One line saying why Redis could not be used: redis-py's own words, without the client's
    repr it appends when no sentinel names a primary ("No master found for 'mymaster'")."""
    words = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, MasterNotFoundError):
        words = words.split(" : <", 1)[0] + " (do the sentinels run, and is master_name right?)"
    return words


def masked(url: str) -> str:
    """``url`` with every password in it (each sentinel's, ``sentinel_password``) replaced by ``***``."""
    return ";".join(_masked_part(part) for part in url.split(";"))


def _masked_part(url: str) -> str:
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None:
        netloc = f"{parts.username or ''}:***@{netloc.rpartition('@')[2]}"
    secret = "sentinel_password="
    if secret in query:
        query = "&".join(f"{secret}***" if item.startswith(secret) else item for item in query.split("&"))
    return parts._replace(netloc=netloc, query=query).geturl()


def _database(path: str) -> int:
    text = path.strip("/")
    if not text.isdigit():
        raise ValueError(f"the database of a sentinel REDIS_URL is a number (/0), not {path!r}")
    return int(text)


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
