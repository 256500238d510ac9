"""What comes from ${ENV} in a notify URL (a Telegram chat id, an ntfy user) never reaches the history
kept in Redis, nor what `alerts history` prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alerts.config.settings import Settings
from alerts.delivery import outbox
from alerts.models import Alert
from alerts.service.runtime import Runtime
from alerts.state.store import Store
from tests.delivery.conftest import NtfySink
from tests.harness.configs import write_config
from tests.harness.servers import TelegramDouble

ALERTS = Path(sys.executable).with_name("alerts")
TOKEN = "123456789:AAbbccddeeffgghhiijjkkllmmnnooppqqrr"
CHAT = "-1009876543210"
NTFY_USER = "newsdesk-bot"


def test_env_values_of_notify_urls_are_masked_in_history(
    telegram_api: TelegramDouble,
    ntfy: NtfySink,
    config_dir: Path,
    redis_url: str,
    store: Store,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The chat id and the ntfy user are masked in the stored history and in `alerts history`."""
    env = {"TG_TOKEN": TOKEN, "TG_CHAT": CHAT, "NTFY_USER": NTFY_USER, "NTFY_PASS": "hunter2hunter2"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    ntfy_url = ntfy.apprise_url.replace("ntfy://", "ntfy://${NTFY_USER}:${NTFY_PASS}@")
    write_config(
        config_dir,
        [{"name": "wire", "url": "http://127.0.0.1:9/x.xml"}],
        [{"name": "desk", "notify": ["tgram://${TG_TOKEN}/${TG_CHAT}", ntfy_url]}],
        [{"name": "gaza", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    runtime = Runtime(Settings(config_dir=config_dir, redis_url=redis_url))
    config = runtime.live.current().config
    alert = Alert(subscriber="desk", story="s1", item="i1", feed="wire", title="Gaza", fetched_at=time.time())
    from alerts.text import digest

    jobs = [(alert, digest(url)) for url in config.subscribers["desk"].notify]
    assert runtime.sender.deliver_batch(outbox.record(store.deliveries, jobs)) == {"sent": 2}
    assert telegram_api.messages and ntfy.published, "both channels received the alert"
    stored = json.dumps(store.deliveries.history(0), ensure_ascii=False)
    printed = subprocess.run(
        [str(ALERTS), "history", "--since", "1h"],
        env={**os.environ, "ALERTS_CONFIG": str(config_dir), "REDIS_URL": redis_url},
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "tgram://" in printed and "ntfy" in printed, printed
    for text in (stored, printed):
        for secret in (CHAT, NTFY_USER, TOKEN, "hunter2hunter2"):
            assert secret not in text
