"""A real SMTP server (aiosmtpd) that keeps every message it receives."""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import threading
import time
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class _Handler:
    def __init__(self, sink: SmtpSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._sink.lock:
            self._sink.messages.append(message)  # type: ignore[arg-type]
            self._sink.arrived.append(time.time())
        return "250 Message accepted"


class _SlowGreeting(_Handler):
    """Answers EHLO only after a delay: senders on several threads are then between greeting and DATA at
    once (where an e-mail's headers are built)."""

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        await asyncio.sleep(self._sink.ehlo_delay)
        session.host_name = hostname
        return responses


class SmtpSink:
    """aiosmtpd on 127.0.0.1 with optional LOGIN/PLAIN auth (without TLS, for tests only); ``ehlo_delay``
    seconds before each EHLO answer."""

    def __init__(self, user: str | None = None, password: str | None = None, ehlo_delay: float = 0.0) -> None:
        self.ehlo_delay = ehlo_delay
        self.messages: list[EmailMessage] = []
        self.arrived: list[float] = []
        self.lock = threading.Lock()
        self.user, self.password = user, password
        self.port = _free_port()
        auth: dict[str, Any] = {}
        if user:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False, "auth_required": True}
        handler = _SlowGreeting(self) if ehlo_delay else _Handler(self)
        self._controller = Controller(handler, hostname="127.0.0.1", port=self.port, **auth)

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and data.login.decode() == self.user
            and (data.password.decode() == self.password)
        )
        return AuthResult(success=ok)

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def subjects(self) -> list[str]:
        """Subjects of the messages received so far."""
        with self.lock:
            return [str(message["subject"]) for message in self.messages]

    def threading(self) -> list[dict[str, str | None]]:
        """Per message received: its Subject, Message-ID, In-Reply-To and References (None when absent)."""
        names = ("Subject", "Message-ID", "In-Reply-To", "References")
        with self.lock:
            return [
                {name: None if message[name] is None else str(message[name]) for name in names}
                for message in self.messages
            ]

    def apprise_url(self, to: str = "desk@example.com", login: str | None = None) -> str:
        """A mailto:// URL delivering here in plain SMTP (``login`` is ``user:password``)."""
        credentials = f"{login}@" if login else "alerts@"
        return (
            f"mailto://{credentials}127.0.0.1:{self.port}?to={to}&from=alerts@example.com"
            "&secure=no&smtp=127.0.0.1&mode=insecure"
        )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
