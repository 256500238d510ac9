"""The embedded Redis: the plain server of the test suite, and the locked-down, durable instance of a
state directory that `alerts run` starts when no other Redis is to be used."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from alerts.config.settings import Settings
from alerts.service import cli, embedded_redis
from alerts.state.store import Store


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A state directory whose instance, if one was started, is stopped after the test."""
    directory = tmp_path / "state"
    yield directory
    url = embedded_redis.running(directory)
    if url:
        pid = embedded_redis._read_record(directory)["pid"]
        assert isinstance(pid, int)
        os.kill(pid, signal.SIGKILL)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_plain_server_answers_and_keeps_data_across_restarts(tmp_path: Path) -> None:
    """A plain server answers PING without a password, and what it stored survives a restart."""
    port = embedded_redis.free_port()
    process = embedded_redis.start(port, tmp_path)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        assert embedded_redis.answers(url)
        Store.from_url(url).client.set("alerts:test", "kept")
    finally:
        embedded_redis.stop(process)
    assert not embedded_redis.answers(url)
    process = embedded_redis.start(port, tmp_path)
    try:
        assert Store.from_url(url).client.get("alerts:test") == "kept"
    finally:
        embedded_redis.stop(process)


def test_instance_is_recorded_private_and_durable(state_dir: Path) -> None:
    """The instance is recorded in redis.json (0600), keeps an AOF, and its directory is 0700, its files
    0600; stopping it removes the record and the next start has the data back."""
    url, instance = embedded_redis.ensure(state_dir)
    assert instance is not None and instance.url == url
    try:
        assert embedded_redis.running(state_dir) == url
        record = embedded_redis._read_record(state_dir)
        assert record["url"] == url and record["pid"] == instance.process.pid and record["started"]
        Store.from_url(url).client.set("alerts:test", "kept")
        assert (state_dir / "alerts.aof").exists()
        assert _mode(state_dir) == 0o700
        assert {path.name: _mode(path) for path in state_dir.iterdir()} == {
            name: 0o600 for name in ("alerts.aof", "redis.json", "redis.lock", "redis.log")
        }
    finally:
        instance.stop()
    assert instance.process.returncode == 0
    assert not (state_dir / "redis.json").exists() and embedded_redis.running(state_dir) is None
    url, instance = embedded_redis.ensure(state_dir)
    assert instance is not None
    try:
        assert Store.from_url(url).client.get("alerts:test") == "kept"
    finally:
        instance.stop()


def test_instance_requires_its_password_and_refuses_config_and_debug(state_dir: Path) -> None:
    """Without the password nothing is answered; with it, CONFIG, DEBUG and MODULE are unknown commands."""
    url, instance = embedded_redis.ensure(state_dir)
    assert instance is not None
    try:
        password = url.split(":")[2].split("@")[0]
        anonymous = url.replace(f"default:{password}@", "")
        assert not embedded_redis.answers(anonymous)
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(anonymous).ping()
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(url.replace(password, "wrong")).ping()
        client = redis.Redis.from_url(url)
        for command in (("CONFIG", "SET", "dir", "/tmp"), ("DEBUG", "SLEEP", "0"), ("MODULE", "LIST")):
            with pytest.raises(redis.ResponseError, match="unknown command"):
                client.execute_command(*command)
        assert password not in " ".join(instance.process.args)  # type: ignore[arg-type]
    finally:
        instance.stop()


def test_second_starter_uses_the_running_instance(state_dir: Path) -> None:
    """While an instance runs from a state dir, ensure() hands out its URL and starts nothing."""
    url, instance = embedded_redis.ensure(state_dir)
    assert instance is not None
    try:
        assert embedded_redis.ensure(state_dir) == (url, None)
    finally:
        instance.stop()


def test_stale_record_is_ignored_and_removed(state_dir: Path) -> None:
    """A record whose server was killed is not used, and is removed; the next start replaces it."""
    url, instance = embedded_redis.ensure(state_dir)
    assert instance is not None
    instance.process.kill()
    instance.process.wait()
    os.close(instance.lock)  # as if its starter had died too
    instance.lock = -1
    assert (state_dir / "redis.json").exists()
    assert embedded_redis.running(state_dir) is None
    assert not (state_dir / "redis.json").exists()
    new_url, new_instance = embedded_redis.ensure(state_dir)
    assert new_instance is not None and new_url != url
    new_instance.stop()


def test_server_holds_the_lock_after_its_starter_died(state_dir: Path) -> None:
    """The server inherits redis.lock: a second server cannot start on the data while the first runs."""
    _, instance = embedded_redis.ensure(state_dir)
    assert instance is not None
    os.close(instance.lock)  # the starter's descriptor is gone; the server's remains
    instance.lock = -1
    try:
        assert embedded_redis._try_lock(state_dir) is None
    finally:
        embedded_redis.stop(instance.process)
    lock = embedded_redis._try_lock(state_dir)
    assert lock is not None
    os.close(lock)


def test_data_of_a_snapshot_only_directory_is_adopted(state_dir: Path) -> None:
    """A state dir written by a server without AOF (an older version) keeps its data under AOF."""
    state_dir.mkdir()
    port = embedded_redis.free_port()
    options = ["--port", str(port), "--bind", "127.0.0.1", "--dir", str(state_dir)]
    options += ["--dbfilename", "alerts.rdb", "--appendonly", "no"]
    old = subprocess.Popen([embedded_redis.server_binary(), *options], stdout=subprocess.DEVNULL)
    old_url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while not embedded_redis.answers(old_url) and time.monotonic() < deadline:
        time.sleep(0.05)
    Store.from_url(old_url).client.set("alerts:test", "kept")
    old.terminate()
    assert old.wait(10) == 0 and not (state_dir / "alerts.aof").exists()
    url, instance = embedded_redis.ensure(state_dir)
    assert instance is not None
    try:
        assert Store.from_url(url).client.get("alerts:test") == "kept"
    finally:
        instance.stop()
    url, instance = embedded_redis.ensure(state_dir)  # and again, from the AOF now
    assert instance is not None
    try:
        assert Store.from_url(url).client.get("alerts:test") == "kept"
    finally:
        instance.stop()


# --- which Redis a command uses ----------------------------------------------------------------


def _settings(state_dir: Path, redis_url: str | None) -> Settings:
    return Settings(config_dir=state_dir, redis_url=redis_url, state_dir=state_dir)


@pytest.fixture
def nothing_local(monkeypatch: pytest.MonkeyPatch) -> None:
    """localhost:6379 as on a machine without Redis (a closed port instead)."""
    monkeypatch.setattr(embedded_redis, "LOCAL_URL", f"redis://127.0.0.1:{embedded_redis.free_port()}/0")


@pytest.mark.usefixtures("nothing_local")
def test_read_command_without_any_redis_says_so_and_starts_nothing(state_dir: Path) -> None:
    """REDIS_URL unset, no embedded Redis running, nothing on localhost: one line saying what to do."""
    with pytest.raises(cli.NoRedis) as raised:
        cli._redis_url(_settings(state_dir, None), start=False)
    assert str(raised.value) == "no Redis is running: start `alerts run` (it starts one) or set REDIS_URL"
    assert not state_dir.exists()


@pytest.mark.usefixtures("nothing_local")
def test_run_starts_the_embedded_redis_when_nothing_answers(state_dir: Path) -> None:
    """REDIS_URL unset and nothing on localhost: run/once start the embedded Redis (recorded)."""
    url, instance = cli._redis_url(_settings(state_dir, None), start=True)
    assert instance is not None
    try:
        assert embedded_redis.running(state_dir) == url
    finally:
        instance.stop()


def test_the_recorded_instance_comes_before_localhost(state_dir: Path, redis_server_url: str) -> None:
    """REDIS_URL unset or `embedded`: the running instance of the state dir, even when localhost answers."""
    url, instance = embedded_redis.ensure(state_dir)
    assert instance is not None
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(embedded_redis, "LOCAL_URL", redis_server_url)
            for setting in (None, "embedded"):
                for start in (False, True):
                    assert cli._redis_url(_settings(state_dir, setting), start) == (url, None)
    finally:
        instance.stop()


def test_localhost_is_used_when_it_answers_and_nothing_is_recorded(
    state_dir: Path, redis_server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """REDIS_URL unset, no embedded Redis running, localhost answers: localhost, and nothing is started."""
    monkeypatch.setattr(embedded_redis, "LOCAL_URL", redis_server_url)
    assert cli._redis_url(_settings(state_dir, None), start=True) == (redis_server_url, None)
    assert not (state_dir / "redis.json").exists()


def test_embedded_is_never_localhost(state_dir: Path, redis_server_url: str) -> None:
    """REDIS_URL=embedded with none running: read commands say so, run/once start one."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(embedded_redis, "LOCAL_URL", redis_server_url)
        with pytest.raises(cli.NoRedis, match="no embedded Redis is running in"):
            cli._redis_url(_settings(state_dir, "embedded"), start=False)
        url, instance = cli._redis_url(_settings(state_dir, "embedded"), start=True)
    assert instance is not None and url != redis_server_url
    instance.stop()
