"""The poller: each feed polled when it is due, many at once, and the service's periodic jobs.

One loop per poll worker process. It pops the feeds that are due from the Redis schedule and learns
when the next one is due in one round trip (:meth:`alerts.state.schedule.Schedule.take`), hands them
to its threads in batches (:func:`alerts.service.batch.poll_batch`), and sleeps until the next feed
is due, or ``tick`` seconds at most (to see configuration changes). The feeds due within the next
``tick`` are polled together, so a feed may be polled up to a tick early, at its usual cadence. No
task is queued per poll and no beat ticks: a 304 costs a fraction of a millisecond. Any number of
poll workers may run: the schedule hands each due feed to one of them.

The periodic jobs (the sweep every second, digests every 5 s, WebSub renewals every minute) run on
the same threads; each is safe to run in several processes at once (their Redis steps are atomic).
Once a minute ``polls.summary`` says what the polls did; single 304s are logged at debug only.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from alerts import log
from alerts.errors import AlertsError, StoreUnavailable
from alerts.service.batch import BATCH, poll_batch
from alerts.service.pipeline import Dispatch, PollReport, schedule_sync
from alerts.service.runtime import Runtime

SUMMARY_EVERY = 60.0
RESYNC_EVERY = 30.0  # the schedule is checked against the configuration at least this often
_OUTAGE_PAUSE = 1.0
_logger = log.get("alerts.poller")


@dataclass
class Periodic:
    """A job the poller runs every ``every`` seconds (never two runs of it at once)."""

    name: str
    every: float
    run: Callable[[], object]
    next_at: float = 0.0
    running: bool = False


class Poller:
    """The loop of one poll worker: see the module docstring."""

    def __init__(
        self,
        runtime: Runtime,
        dispatch: Dispatch,
        threads: int,
        tick: float,
        jobs: Sequence[Periodic] = (),
    ) -> None:
        self._runtime = runtime
        self._dispatch = dispatch
        self._threads = max(1, threads)
        self._tick = max(0.01, tick)
        self._jobs = list(jobs)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(self._threads, thread_name_prefix="poll")
        self._inflight = 0
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._synced: tuple[str, float] = ("", 0.0)  # (fingerprint, when)

    def start(self) -> Poller:
        """Run the loop on a daemon thread."""
        self._thread = threading.Thread(target=self.run, name="poller", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 8.0) -> None:
        """Stop popping feeds; wait up to ``timeout`` seconds for the polls under way."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)
        deadline = time.monotonic() + timeout
        while self._inflight and time.monotonic() < deadline:
            time.sleep(0.05)

    def run(self) -> None:
        """The loop (until :meth:`stop`)."""
        summary_at = time.monotonic() + SUMMARY_EVERY
        while not self._stop.is_set():
            wait = self._tick
            try:
                wait = self._wake(time.time())
            except StoreUnavailable as exc:  # announced once by the liveness heartbeat
                _logger.debug("poller.interrupted", error=str(exc))
                wait = _OUTAGE_PAUSE
            except AlertsError as exc:  # an invalid configuration: already logged where it was read
                _logger.debug("poller.idle", error=str(exc))
                wait = _OUTAGE_PAUSE
            except Exception:  # never let one bad turn end polling for this process
                _logger.exception("poller.error")
                wait = _OUTAGE_PAUSE
            if time.monotonic() >= summary_at:
                self._summary()
                summary_at = time.monotonic() + SUMMARY_EVERY
            self._stop.wait(wait)

    def _wake(self, now: float) -> float:
        """One turn: sync the schedule if needed, start the periodic jobs and the due polls; returns
        how long to sleep."""
        self._sync(now)
        for job in self._jobs:
            if now >= job.next_at and not job.running:
                job.next_at, job.running = now + job.every, True
                self._submit(self._job, job)
        room = self._threads * 2 - self._inflight  # batches waiting for a thread, at most one each
        next_at = now + self._tick
        if room > 0:
            # the feeds due within a tick are polled together: a feed is polled up to a tick early, at
            # its usual cadence (the next poll is booked from its due time), and the batch's fixed
            # cost (round trips, thread hand-offs) is shared
            due, first = self._runtime.store.schedule.take(now + self._tick, limit=room * BATCH)
            for start in range(0, len(due), BATCH):
                self._submit(self._batch, due[start : start + BATCH])
            if first is not None:
                next_at = min(next_at, first)
        soonest = min([next_at, *(job.next_at for job in self._jobs if not job.running)])
        return max(0.0, min(self._tick, soonest - time.time()))

    def _sync(self, now: float) -> None:
        """Make the schedule hold the configured feeds when the configuration changed (or now and
        then: another process may have changed it)."""
        snapshot = self._runtime.live.current()
        fingerprint, when = self._synced
        if snapshot.config.fingerprint != fingerprint or now - when > RESYNC_EVERY:
            schedule_sync(self._runtime, snapshot.config)
            self._synced = (snapshot.config.fingerprint, now)

    def _submit(self, work: Callable[..., object], *args: object) -> None:
        with self._lock:
            self._inflight += 1
        try:
            future: Future[object] = self._pool.submit(work, *args)
        except RuntimeError:  # shut down meanwhile
            self._done(None)
            return
        future.add_done_callback(self._done)

    def _done(self, _: Future[object] | None) -> None:
        with self._lock:
            self._inflight -= 1

    def _batch(self, names: Sequence[str]) -> None:
        try:
            reports = poll_batch(self._runtime, names, self._dispatch)
        except StoreUnavailable as exc:
            _logger.debug("task.interrupted", task_name="poll", error=str(exc))
            return
        except AlertsError as exc:
            _logger.warning("poll.failed", feeds=len(names), error=str(exc), error_type=type(exc).__name__)
            return
        self._count(reports)

    def _job(self, job: Periodic) -> None:
        try:
            job.run()
        except StoreUnavailable as exc:
            _logger.debug("task.interrupted", task_name=job.name, error=str(exc))
        except AlertsError as exc:
            _logger.warning("job.failed", job=job.name, error=str(exc), error_type=type(exc).__name__)
        except Exception:
            _logger.exception("job.error", job=job.name)
        finally:
            job.running = False

    def _count(self, reports: Sequence[PollReport]) -> None:
        with self._lock:
            for report in reports:
                self._counts[report.status] += 1
                self._counts["new"] += report.new
                self._counts["alerts"] += report.alerts

    def _summary(self) -> None:
        with self._lock:
            counts, self._counts = self._counts, Counter()
        polls = sum(v for k, v in counts.items() if k not in ("new", "alerts"))
        if polls:
            _logger.info("polls.summary", seconds=SUMMARY_EVERY, polls=polls, **dict(sorted(counts.items())))
