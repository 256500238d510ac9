"""One configure point for structlog and stdlib logging: one line per event, secrets masked.

Events of our own code and records of libraries (Celery, Apprise, kombu) pass through the same
processors, so every line is JSON when stderr is not a terminal and no secret can reach it:
values interpolated from ``${NAME}`` in the config, and anything shaped like a bot token or a
URL password, are replaced by ``***``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any

import structlog

_secrets: set[str] = set()
_MIN_SECRET = 4
_PATTERNS = (
    # A Telegram bot token (bot id, colon, 35-character secret): bare, in a tgram:// URL, or right after
    # "bot" in an API path ("POST /bot123456789:AA.../sendMessage" in urllib3's DEBUG lines), its colon
    # possibly percent-encoded. Not in the middle of a longer number or word.
    re.compile(r"(?:(?<=[Bb]ot)|(?<![A-Za-z0-9_]))\d{6,12}(?::|%3[Aa])[A-Za-z0-9_-]{30,}"),
    re.compile(r"(?<=://)([^/\s:@]+):([^/\s@]+)@"),  # user:password@ in any URL
)


def add_secrets(values: Iterable[str]) -> None:
    """Mask these values in every later log line."""
    _secrets.update(value for value in values if len(value) >= _MIN_SECRET)


def redact(text: str) -> str:
    """``text`` with known secrets and credential-shaped substrings masked."""
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    text = _PATTERNS[0].sub("***", text)
    return _PATTERNS[1].sub(r"\1:***@", text)


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(item) for item in value]
    return value


def _redact_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event.items():
        event[key] = _redact_value(value)
    return event


# libraries that log every task or send at info: their warnings and errors are enough
_NOISY = ["apprise", "kombu", "amqp", "celery.beat", "celery.app.trace"]
_NOISY += ["celery.worker.strategy", "celery.worker.request"]


def configure(level: str = "INFO", json: bool | None = None, filters: Iterable[logging.Filter] = ()) -> None:
    """Route structlog and stdlib logging through one chain at ``level``; JSON unless stderr is a
    terminal. ``filters`` see every stdlib record first (to drop or demote a library's noise)."""
    level = level.upper()
    as_json = (not sys.stderr.isatty()) if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if as_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_event,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    for record_filter in filters:
        handler.addFilter(record_filter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))
    structlog.configure(
        # below the level, an event costs one check, not the chain (a 304 poll logs at debug)
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get(name: str = "alerts") -> Any:
    """A structlog logger."""
    return structlog.get_logger(name)
