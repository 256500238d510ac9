"""REDIS_URL's sentinel form: parsed, masked, turned into Celery's settings, and a store that follows
a failover of a real primary watched by real sentinels."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from alerts.service import embedded_redis
from alerts.state import probe, redis_url
from alerts.state.redis_url import SentinelTarget
from alerts.state.store import Store
from tests.harness.sentinel import MASTER_NAME, SentinelGroup


def test_a_sentinel_url_names_every_sentinel_the_database_the_primary_and_its_login() -> None:
    """Port 26379 when none is given; the credentials and the database may be on any one address."""
    url = (
        "sentinel://:pw@s1;sentinel://s2:26380;sentinel://[::1]:26381/3?master_name=main&sentinel_password=sp"
    )
    assert redis_url.sentinel_target(url) == SentinelTarget(
        sentinels=(("s1", 26379), ("s2", 26380), ("::1", 26381)),
        master_name="main",
        db=3,
        password="pw",
        sentinel_password="sp",
    )
    assert redis_url.sentinel_target("sentinel://u:p%40ss@h/0?master_name=m").credentials() == {
        "username": "u",
        "password": "p@ss",
    }


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("sentinel://h:26379/0", "needs ?master_name=NAME"),
        (
            "sentinel://h:26379;redis://h2/0?master_name=m",
            "every address of a sentinel REDIS_URL starts sentinel://",
        ),
        ("sentinel://h:port/0?master_name=m", "bad sentinel port"),
        ("sentinel://:26379/0?master_name=m", "no sentinel host"),
        ("sentinel://h/zero?master_name=m", "is a number"),
        ("sentinel://h/0?master_name=m&db=2", "unknown sentinel REDIS_URL option 'db'"),
    ],
)
def test_a_wrong_sentinel_url_is_refused_in_words_an_admin_can_act_on(url: str, said: str) -> None:
    """Each mistake is named; `alerts` prints it as the reason the URL does not answer."""
    with pytest.raises(ValueError, match=said.replace("?", r"\?")):
        redis_url.sentinel_target(url)
    assert said in (probe.reachable(url, timeout=0.5) or "")


def test_every_password_in_a_sentinel_url_is_masked() -> None:
    """The primary's password on each address and the sentinels' own in the query."""
    url = "sentinel://:pw@s1:1;sentinel://user:pw@s2:2/0?master_name=m&sentinel_password=sp"
    assert redis_url.masked(url) == (
        "sentinel://:***@s1:1;sentinel://user:***@s2:2/0?master_name=m&sentinel_password=***"
    )
    assert probe.masked(url) == redis_url.masked(url)


def test_celery_gets_kombus_form_and_the_primarys_name_as_a_transport_option() -> None:
    """Every sentinel carries the login and database (kombu reads them from whichever it is on);
    the name and the sentinels' password go in the transport options."""
    broker, options = redis_url.celery_broker(
        "sentinel://:p w@a:1;sentinel://b:2/4?master_name=m&sentinel_password=s"
    )
    assert broker == "sentinel://:p%20w@a:1/4;sentinel://:p%20w@b:2/4"
    assert options == {"master_name": "m", "sentinel_kwargs": {"password": "s"}}
    assert redis_url.celery_broker("redis://:pw@h:6379/2") == ("redis://:pw@h:6379/2", {})


@pytest.fixture
def sentinels(tmp_path: Path) -> Iterator[SentinelGroup]:
    """A primary, its replica and two sentinels on 127.0.0.1."""
    group = SentinelGroup(tmp_path).start()
    yield group
    group.stop()


def test_the_store_follows_the_primary_through_a_failover(sentinels: SentinelGroup) -> None:
    """Writes before the primary is killed are read back from the promoted replica, and writes after
    land there; a wrong primary name is one line of reason, not a hang."""
    assert probe.reachable(sentinels.url) is None
    store = Store.from_url(sentinels.url)
    store.client.set("before", "1")
    sentinels.wait_in_sync()
    old = sentinels.kill_primary()
    new = sentinels.wait_failed_over(old)
    assert store.client.get("before") == "1"
    store.client.set("after", "2")
    assert store.client.connection_pool.get_master_address()[1] == new
    wrong = sentinels.url.replace(f"master_name={MASTER_NAME}", "master_name=other")
    assert "No master found for 'other'" in (probe.reachable(wrong, timeout=1) or "")


def test_the_readmes_sentinel_example_parses_as_written() -> None:
    """The REDIS_URL shown in README's Redis Sentinel section names three sentinels and mymaster."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    (line,) = re.findall(r"^REDIS_URL='(sentinel://[^']+)'$", readme, re.M)
    target = redis_url.sentinel_target(line)
    assert target.sentinels == (("10.0.0.5", 26379), ("10.0.0.6", 26379), ("10.0.0.7", 26379))
    assert (target.master_name, target.db, target.password) == ("mymaster", 0, "PRIMARY_PASSWORD")


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("sentinel://127.0.0.1:1/0", "needs ?master_name=NAME"),
        (
            "sentinel://:hunter2@127.0.0.1:{port}/0?master_name=m",
            "No master found for 'm' (do the sentinels run",
        ),
    ],
)
def test_a_command_given_a_wrong_sentinel_url_says_why_in_one_line_and_exits_1(url: str, said: str) -> None:
    """`alerts history` with no master_name, or with no sentinel listening: exit 1, one line, the
    password masked, no traceback."""
    env = {**os.environ, "REDIS_URL": url.format(port=embedded_redis.free_port())}
    done = subprocess.run(
        [str(Path(sys.executable).with_name("alerts")), "history"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 1
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert len(lines) == 1 and said in lines[0] and "hunter2" not in lines[0], lines
