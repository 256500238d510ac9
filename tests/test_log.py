"""Secrets never reach a log line: Telegram bot tokens wherever they appear, ordinary text untouched."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from alerts import log

TOKEN = "123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOppQQr"  # the shape of a bot token (35-character secret)
URLLIB3 = f'https://api.telegram.org:443 "POST /bot{TOKEN}/sendMessage HTTP/1.1" 200 None'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (URLLIB3, 'https://api.telegram.org:443 "POST /bot***/sendMessage HTTP/1.1" 200 None'),
        (f"GET /bot{TOKEN}/getMe", "GET /bot***/getMe"),
        (f"/Bot{TOKEN}-/x", "/Bot***/x"),  # a secret ending in '-' is masked to its end
        (f"tgram://{TOKEN}/987654", "tgram://***/987654"),
        (f"token {TOKEN}.", "token ***."),
        (f"/bot{TOKEN.replace(':', '%3A')}/sendMessage", "/bot***/sendMessage"),
    ],
)
def test_a_bot_token_is_masked_wherever_it_appears(text: str, expected: str) -> None:
    assert log.redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "feed.polled feed=wire status=200 items=12 elapsed_ms=84.2 at 2024-05-01T10:01:40+00:00",
        "story health:wire:Feed unhealthy:1714557700 sha1:3bbc0df2ec24decacc34859adf715c6b95ead80b",
        "key alerts:outbox:1714557700:0123456789abcdef01234567",  # a digest is 24 hex digits
        "item 1234567:short-id and 12:30 and 1234567890123:" + "a" * 40,  # too many digits for a bot id
        "robotics123456 and abc123456789:" + "b" * 40,  # digits inside a longer word
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert log.redact(text) == text


@pytest.fixture
def restored() -> Iterator[None]:
    """The logging setup as it was before the test (which configures the project's chain)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    saved = structlog.get_config()
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        structlog.configure(**saved)


@pytest.mark.usefixtures("restored")
def test_urllib3_debug_lines_keep_no_token(capsys: pytest.CaptureFixture[str]) -> None:
    """The record urllib3 writes for each Telegram API call leaves the chain with the token masked."""
    log.configure("DEBUG", json=True)  # here, so that its handler writes to the captured stderr
    logging.getLogger("urllib3.connectionpool").debug(
        '%s://%s:%s "%s %s %s" %s %s', "https", "api.telegram.org", 443, "POST",
        f"/bot{TOKEN}/sendMessage", "HTTP/1.1", 200, None,
    )  # fmt: skip
    (line,) = capsys.readouterr().err.splitlines()
    assert TOKEN not in line and "AAbbCC" not in line
    assert json.loads(line)["event"] == URLLIB3.replace(TOKEN, "***")
