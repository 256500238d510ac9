"""Nothing lost, nothing twice, no stall: a worker killed with SIGKILL at random moments while 200 items
arrive, at the default settings (a dead worker's claims are free as soon as its heartbeat lapses)."""

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
RECOVERY = 10.0  # seconds, at the default settings: the longest a pending alert may wait on the dead
SMTP_RATE = 10.0  # emails per second to one server (ALERTS_RATE_SMTP's default): the floor of a backlog


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
    worker = start_worker()
    wait_for(lambda: worker.events("feed.seeded"), what="first poll")
    # distinct numbers, so distinct stories (no "kill": a number beside it reads as a toll)
    titles = [f"Breaking: story number {n} of the recovery drill" for n in range(1, ITEMS + 1)]

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
        worker = start_worker()
    restarted = time.time()
    pending = ITEMS - len(smtp.subjects())
    publisher.join()
    try:
        wait_for(lambda: set(smtp.subjects()) >= set(titles), timeout=90, what="every alert")
    except AssertionError:
        missing = sorted(set(titles) - set(smtp.subjects()), key=titles.index)
        raise AssertionError(f"{len(missing)} alerts missing, e.g. {missing[:3]}") from None
    with smtp.lock:
        arrivals = [at for at in smtp.arrived if at >= restarted]
    recovered = arrivals[-1] - restarted
    stall = max(later - earlier for earlier, later in zip([restarted, *arrivals], arrivals, strict=False))
    time.sleep(5)  # anything sent twice would have arrived by now (a dead sender is known in 3 s)
    counts = Counter(smtp.subjects())
    duplicates = sum(count - 1 for count in counts.values())
    print(
        f"{ITEMS} alerts, {KILLS} SIGKILLs: {len(counts)} received, {duplicates} duplicates; after the last "
        f"restart {pending} were pending, the longest wait for the next email was {stall:.1f} s, and all "
        f"had arrived {recovered:.1f} s later ({pending / SMTP_RATE:.1f} s of it the SMTP rate limit)"
    )
    assert set(counts) == set(titles), "nothing lost"
    assert stall <= RECOVERY, f"no alert waits on the dead: {stall:.1f} s without an email"
    assert recovered <= RECOVERY + pending / SMTP_RATE, "the backlog drains at the channel's rate"
    assert duplicates <= KILLS, "only the documented window can repeat a message, once per kill at most"
