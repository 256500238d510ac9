"""The metrics and health HTTP server of ``alerts run``, on threads of the supervisor process, at
``ALERTS_METRICS_LISTEN`` (default 127.0.0.1:9464; ``off``: none).

- ``GET /metrics``: every worker process's counters and histograms added up (prometheus_client's
  multiprocess mode: the supervisor gives its children a fresh ``PROMETHEUS_MULTIPROC_DIR``, made
  here and removed at exit), and the gauges of the whole service read from Redis when scraped
  (:func:`alerts.service.status.gauges`), and the supervisor's worker restarts.
- ``GET /healthz``: 200 while this process is alive.
- ``GET /readyz``: 200 when Redis answers, the configuration files are valid and the poll and
  deliver workers beat; else 503, with the reason as JSON (:func:`alerts.service.status.readiness`).

The standard library's WSGI server serves it (aiohttp stays in the HTTP client and the WebSub
server); a port already in use is one :class:`ListenError` line at start.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from prometheus_client import REGISTRY, CollectorRegistry, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

from alerts import log, metrics
from alerts.errors import AlertsError
from alerts.service import status
from alerts.state.store import DEFAULT_URL, Store

DIR_PREFIX = "alerts-metrics-"  # the multiprocess directories, in the temp dir: alerts-metrics-<pid>-*
READY_TIMEOUT = 2.0  # seconds /readyz and /metrics wait for Redis at most
REQUIRED = ("poll", "deliver")  # the workers /readyz wants beating

_logger = log.get("alerts.metrics")

Readiness = Callable[[], tuple[bool, dict[str, Any]]]


class ListenError(AlertsError):
    """The server cannot listen where ALERTS_METRICS_LISTEN says; the message is one line."""


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` (``[::1]:9464`` for IPv6; an empty host is every interface) -> (host, port)."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise ListenError(f"ALERTS_METRICS_LISTEN={text!r}: expected host:port (e.g. 127.0.0.1:9464) or off")
    return host.strip("[]") or "0.0.0.0", int(port)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never holds up the stop


class _Server6(_Server):
    address_family = socket.AF_INET6


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log: a scraper asks every few seconds."""


class MetricsServer:
    """A bound listening socket (bound at once, so a port in use is known before anything starts),
    served on a thread once :meth:`start` gives it its application."""

    def __init__(self, listen: str) -> None:
        host, port = parse_listen(listen)
        server_class = _Server6 if ":" in host else _Server
        try:
            self._server = server_class((host, port), _Quiet)
        except OSError as exc:
            raise ListenError(_bind_error(exc, host, port)) from None
        self.host, self.port = host, int(self._server.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> str:
        """host:port, the port as bound (a requested port 0 is the one the system chose)."""
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def start(self, app: WSGIApplication) -> None:
        """Serve ``app`` on a daemon thread."""
        self._server.set_app(app)
        self._thread = threading.Thread(target=self._server.serve_forever, name="alerts-metrics", daemon=True)
        self._thread.start()
        _logger.info("metrics.listening", address=self.address, routes=["/metrics", "/healthz", "/readyz"])

    def close(self) -> None:
        """Stop serving (requests under way finish on their own threads) and free the port."""
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()


def _bind_error(exc: OSError, host: str, port: int) -> str:
    where = f"ALERTS_METRICS_LISTEN {host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"{where}: address already in use (another `alerts run`?): choose a free host:port, or off"
    return f"{where}: cannot listen there ({exc.strerror or exc}): choose another host:port, or off"


def application(registry: CollectorRegistry, ready: Readiness) -> WSGIApplication:
    """/metrics from ``registry``, /healthz, and /readyz from ``ready()``; 404 for anything else."""
    exposition = make_wsgi_app(registry)

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO") or "/", environ.get("REQUEST_METHOD", "GET")
        if path == "/metrics":
            return exposition(environ, start_response)  # type: ignore[no-any-return]
        if path not in ("/healthz", "/readyz"):
            return _json(
                start_response, "404 Not Found", {"error": "no such path; try /metrics, /healthz, /readyz"}
            )
        if method not in ("GET", "HEAD"):
            return _json(start_response, "405 Method Not Allowed", {"error": "GET only"})
        if path == "/healthz":
            return _json(start_response, "200 OK", {"alive": True}, head=method == "HEAD")
        ok, body = _check(ready)
        status_line = "200 OK" if ok else "503 Service Unavailable"
        return _json(start_response, status_line, body, head=method == "HEAD")

    return app


def _check(ready: Readiness) -> tuple[bool, dict[str, Any]]:
    try:
        return ready()
    except Exception as exc:  # a probe that cannot tell is a "not ready", never a traceback to the scraper
        _logger.warning("metrics.readiness_failed", error=log.redact(str(exc)), error_type=type(exc).__name__)
        return False, {"ready": False, "reason": f"readiness check failed: {type(exc).__name__}"}


def _json(
    start_response: StartResponse, line: str, body: Mapping[str, Any], head: bool = False
) -> list[bytes]:
    payload = (json.dumps(body, ensure_ascii=False) + "\n").encode()
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(payload))),
        ("Cache-Control", "no-store"),
    ]
    start_response(line, headers)
    return [] if head else [payload]


class _ThisProcess:
    """The default registry's metrics (a process without a multiprocess directory)."""

    def collect(self) -> Iterator[Any]:
        yield from REGISTRY.collect()


def registry(
    store: Store, directory: str | None, restarts: Callable[[], Mapping[str, int]] | None = None
) -> CollectorRegistry:
    """What /metrics exposes: the processes' metrics (from ``directory``'s files, or this process's
    own without one) and the gauges read from ``store`` when scraped."""
    found = CollectorRegistry()
    if directory:
        MultiProcessCollector(found, path=directory)  # type: ignore[no-untyped-call]
    else:
        found.register(_ThisProcess())
    found.register(metrics.ServiceCollector(lambda: status.gauges(store), restarts))
    return found


def serve(
    server: MetricsServer,
    redis_url: str | None,
    workers: Callable[[], Mapping[str, int | None]],
    directory: str | None,
    restarts: Callable[[], Mapping[str, int]] | None = None,
) -> None:
    """Start ``server`` for the service on ``redis_url``; ``workers()`` names this machine's worker
    processes (pid, None while one restarts)."""
    store = Store.from_url(redis_url or DEFAULT_URL, timeout=READY_TIMEOUT)

    def ready() -> tuple[bool, dict[str, Any]]:
        running = workers()
        return status.readiness(store, {name: running.get(name) for name in REQUIRED})

    server.start(application(registry(store, directory, restarts), ready))


# --- the multiprocess directory -----------------------------------------------------------------


def multiprocess_dir() -> str:
    """A fresh, private directory for the children's metric files (removing those that killed
    supervisors left behind)."""
    base = Path(tempfile.gettempdir())
    for old in base.glob(DIR_PREFIX + "*"):
        pid = old.name.removeprefix(DIR_PREFIX).split("-")[0]
        try:
            mine = old.stat().st_uid == os.getuid()
        except OSError:
            continue
        if mine and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    return tempfile.mkdtemp(prefix=f"{DIR_PREFIX}{os.getpid()}-")


def remove_multiprocess_dir(directory: str) -> None:
    """At exit, once every child has stopped."""
    shutil.rmtree(directory, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
