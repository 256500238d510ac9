"""Nothing lost, nothing twice: a worker killed with SIGKILL at random moments while 200 items arrive."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer
from tests.harness.smtp import SmtpSink
from tests.harness.worker import WorkerProcess, wait_for

ITEMS = 200
KILLS = 5
# Short leases so a killed worker's claims come back within seconds (defaults: 60 s, 120 s, 30 s).
FAST_RECOVERY = {"ALERTS_CLAIM_HOLD": "5s", "ALERTS_DELIVERY_LEASE": "5s", "ALERTS_SWEEP_LEASE": "3s"}


def test_sigkill_five_times_loses_no_alert(
    feed_server: FeedServer, smtp: SmtpSink, start_worker: Callable[..., WorkerProcess], config_dir: Path
) -> None:
    """Every one of 200 alerts reaches the SMTP sink although the worker is SIGKILLed five times.

    Duplicates can only come from the documented window (killed after the SMTP server accepted a
    message, before the outbox recorded it as sent): at most one per kill, and they are counted.
    """
    write_config(
        config_dir,
        [{"name": "wire", "url": feed_server.url("wire"), "every": "1s"}],
        [{"name": "desk", "notify": [smtp.apprise_url()], "burst": "off"}],  # every alert its own email
        [{"name": "all", "subscribers": ["desk"], "keywords": ["breaking"]}],
    )
    worker = start_worker(**FAST_RECOVERY)
    wait_for(lambda: worker.events("feed.seeded"), what="first poll")
    titles = [f"Breaking: story number {n} of the kill test" for n in range(ITEMS)]

    def publish() -> None:
        for start in range(0, ITEMS, 10):
            feed_server.publish(
                "wire",
                *(Entry(t, f"http://news.test/{n}") for n, t in enumerate(titles[start : start + 10], start)),
            )
            time.sleep(0.25)

    publisher = threading.Thread(target=publish)
    publisher.start()
    rng = random.Random(20261130)
    for _ in range(KILLS):
        time.sleep(rng.uniform(0.3, 2.0))
        worker.kill()
        worker = start_worker(**FAST_RECOVERY)
    publisher.join()
    try:
        wait_for(lambda: set(smtp.subjects()) >= set(titles), timeout=90, what="every alert")
    except AssertionError:
        missing = sorted(set(titles) - set(smtp.subjects()), key=titles.index)
        raise AssertionError(f"{len(missing)} alerts missing, e.g. {missing[:3]}") from None
    time.sleep(8)  # anything sent twice would have arrived by now (leases are 5 s)
    counts = Counter(smtp.subjects())
    duplicates = sum(count - 1 for count in counts.values())
    print(f"{ITEMS} alerts, {KILLS} SIGKILLs: {len(counts)} received, {duplicates} duplicates")
    assert set(counts) == set(titles), "nothing lost"
    assert duplicates <= KILLS, "only the documented window can repeat a message, once per kill at most"
