"""A real Sentinel deployment on loopback: a primary, a replica and two sentinels (``redis-server
--sentinel``), every one with a password, for tests that fail the primary over."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from alerts.service import embedded_redis

MASTER_NAME = "mymaster"
PASSWORD = "primary-test-pw"  # the primary's and replica's
SENTINEL_PASSWORD = "sentinel-test-pw"  # the sentinels' own
DOWN_AFTER_MS = 1000  # how long a silent primary has before the sentinels call it down


class SentinelGroup:
    """Start with :meth:`start`; :attr:`url` is the REDIS_URL of the watched primary."""

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._ports = {name: embedded_redis.free_port() for name in ("a", "b", "s1", "s2")}
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._primary = self._ports["a"]

    @property
    def url(self) -> str:
        """``sentinel://:PASSWORD@127.0.0.1:S1;sentinel://127.0.0.1:S2/0?master_name=mymaster&...``."""
        first, second = self._ports["s1"], self._ports["s2"]
        query = f"master_name={MASTER_NAME}&sentinel_password={SENTINEL_PASSWORD}"
        return f"sentinel://:{PASSWORD}@127.0.0.1:{first};sentinel://127.0.0.1:{second}/0?{query}"

    def start(self) -> SentinelGroup:
        """Primary on port a, its replica on b (in sync), then both sentinels watching the primary."""
        self._server("a")
        self._server("b", replica_of=self._ports["a"])
        self.wait_in_sync()
        for name in ("s1", "s2"):
            self._sentinel(name)
        self._wait(
            lambda: self._sentinels_agree(self._ports["a"], replicas=1), "sentinels to see the replica"
        )
        return self

    def stop(self) -> None:
        """Stop every server (SIGKILL: nothing here is kept)."""
        for process in self._processes.values():
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait(timeout=10)

    def primary_port(self) -> int:
        """The port of the server the sentinels name primary now."""
        client = self._sentinel_client("s1")
        _host, port = client.sentinel_get_master_addr_by_name(MASTER_NAME)
        return int(port)

    def kill_primary(self) -> int:
        """SIGKILL the primary; the port it had."""
        port = self.primary_port()
        name = next(name for name, each in self._ports.items() if each == port)
        self._processes[name].kill()
        self._processes[name].wait(timeout=10)
        return port

    def wait_failed_over(self, old: int, timeout: float = 30) -> int:
        """Wait until both sentinels name a primary other than port ``old`` and it accepts writes."""

        def promoted() -> bool:
            port = self.primary_port()
            return port != old and self._sentinels_agree(port) and self._writable(port)

        self._wait(promoted, "the replica promoted", timeout)
        self._primary = self.primary_port()
        return self._primary

    def wait_in_sync(self) -> None:
        """Wait until every replica of the primary has everything it was written."""

        def synced() -> bool:
            info = self._client(self._primary).info("replication")
            offset = info["master_repl_offset"]
            replicas = [value for key, value in info.items() if key.startswith("slave")]
            return bool(replicas) and all(r["state"] == "online" and r["offset"] >= offset for r in replicas)

        self._wait(synced, "replicas in sync")

    def _server(self, name: str, replica_of: int | None = None) -> None:
        directory = self._directory / name
        directory.mkdir(parents=True)
        config = [f"port {self._ports[name]}", "bind 127.0.0.1", f"dir {directory}", 'save ""']
        config += [f"requirepass {PASSWORD}", f"masterauth {PASSWORD}", "appendonly no"]
        if replica_of:
            config.append(f"replicaof 127.0.0.1 {replica_of}")
        self._launch(name, directory / "redis.conf", config)
        self._wait(lambda: self._answers(self._ports[name]), f"redis {name}")

    def _sentinel(self, name: str) -> None:
        directory = self._directory / name
        directory.mkdir(parents=True)
        config = [f"port {self._ports[name]}", "bind 127.0.0.1", f"dir {directory}"]
        config += [f"requirepass {SENTINEL_PASSWORD}", f"sentinel sentinel-pass {SENTINEL_PASSWORD}"]
        config += [
            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self._ports['a']} 1",
            f"sentinel auth-pass {MASTER_NAME} {PASSWORD}",
            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}",
            f"sentinel failover-timeout {MASTER_NAME} 10000",
        ]
        self._launch(name, directory / "sentinel.conf", config, "--sentinel")
        self._wait(lambda: self._sentinel_client(name).ping(), f"sentinel {name}")

    def _launch(self, name: str, path: Path, config: list[str], *flags: str) -> None:
        path.write_text("\n".join(config) + "\n", encoding="utf-8")
        log = (path.parent / "log").open("wb")
        self._processes[name] = subprocess.Popen(
            [embedded_redis.server_binary(), str(path), *flags], stdout=log, stderr=subprocess.STDOUT
        )
        log.close()

    def _client(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, password=PASSWORD, socket_timeout=2, socket_connect_timeout=1)

    def _sentinel_client(self, name: str) -> redis.Redis:
        return redis.Redis(port=self._ports[name], password=SENTINEL_PASSWORD, socket_timeout=1)

    def _answers(self, port: int) -> bool:
        with contextlib.suppress(redis.RedisError):
            return bool(self._client(port).ping())
        return False

    def _writable(self, port: int) -> bool:
        with contextlib.suppress(redis.RedisError):
            return self._client(port).info("replication")["role"] == "master"
        return False

    def _sentinels_agree(self, port: int, replicas: int = 0) -> bool:
        for name in ("s1", "s2"):
            client = self._sentinel_client(name)
            with contextlib.suppress(redis.RedisError):
                master = client.sentinel_master(MASTER_NAME)
                if int(master["port"]) != port or int(master.get("num-slaves", 0)) < replicas:
                    return False
                continue
            return False
        return True

    def _wait(self, condition: Callable[[], object], what: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if condition():
                    return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")
