"""The ``alerts`` command: run, check, once, explain, feeds, status, dlq, history, send-test.

Each command imports what it needs when it runs, so ``alerts explain`` and ``alerts check`` never
pay for Celery or Redis, and Apprise only when an Apprise URL is to be checked or used.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from alerts import log
from alerts.config.settings import Settings
from alerts.errors import AlertsError, ConfigError
from alerts.service import arguments

if TYPE_CHECKING:
    from alerts.config.load import Config
    from alerts.matching.explain import Explainer
    from alerts.service.embedded_redis import Instance
    from alerts.state.store import Store

EMBEDDED = "embedded"  # REDIS_URL=embedded: always the embedded Redis of ALERTS_STATE_DIR


class NoRedis(AlertsError):
    """Raised when a command has no Redis to use; the message (one line) says what to do."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alerts`` console script."""
    settings = Settings.from_env()
    args = arguments.parser(settings).parse_args(argv)
    log.configure(settings.log_level)
    try:
        return int(_HANDLERS[args.command](settings, args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    except NoRedis as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C before `alerts run` handles it, or in a short command
        return 130


def _load(settings: Settings, channels: bool = True) -> Config:
    from alerts.config.load import load_config

    config = load_config(settings.config_dir, channels=channels)
    log.add_secrets(config.secrets)
    return config


def _check(settings: Settings, args: argparse.Namespace) -> int:
    config = _load(settings)
    print(
        f"ok: {config.directory}: {len(config.feeds)} feeds, {len(config.subscribers)} subscribers, "
        f"{len(config.subscriptions)} subscriptions"
    )
    if args.accept:
        from alerts.service.live import accept

        print(f"accepted: running workers apply {config.fingerprint} now ({accept(config)})")
    return 0


def _check_apart() -> int | None:
    """``alerts check`` in a child process: the configuration's problems (file:line) are printed
    and its exit status returned, or None when it is valid. Loading it here would keep Apprise's
    plugins and the matcher in the supervisor, which lives as long as the service, for nothing."""
    import subprocess

    command = [sys.executable, "-m", "alerts.service.cli", "check"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode == 0:
        return None
    sys.stdout.write(done.stdout)
    sys.stderr.write(done.stderr)
    return done.returncode


def _with_redis(settings: Settings, start: bool = False) -> tuple[Settings, Instance | None]:
    """``settings`` pointing at the Redis this command uses (see :func:`_redis_url`), which is also
    exported as REDIS_URL for the worker processes; the embedded Redis started for it, if any."""
    from dataclasses import replace
    from urllib.parse import urlsplit

    url, instance = _redis_url(settings, start)
    log.add_secrets([urlsplit(url).password or ""])
    os.environ["REDIS_URL"] = url
    return replace(settings, redis_url=url), instance


def _redis_url(settings: Settings, start: bool) -> tuple[str, Instance | None]:
    """REDIS_URL as is, if it answers. ``embedded``: the running embedded Redis of the state dir (or,
    if ``start``, one started now). Unset: that one if it runs, else localhost:6379 if it answers,
    else (if ``start``) the embedded one started now. Raises :class:`NoRedis` otherwise."""
    from alerts.service import embedded_redis
    from alerts.state import probe

    url = settings.redis_url
    state_dir = settings.state_dir or embedded_redis.DEFAULT_STATE_DIR
    if url and url != EMBEDDED:
        reason = probe.reachable(url, timeout=3.0)
        if reason:
            raise NoRedis(
                f"REDIS_URL {probe.masked(url)} does not answer ({reason}): start Redis there, "
                "or unset REDIS_URL to use the embedded one"
            )
        return url, None
    recorded = embedded_redis.running(state_dir)
    if recorded:
        return recorded, None
    if url is None and embedded_redis.answers(embedded_redis.LOCAL_URL):
        return embedded_redis.LOCAL_URL, None
    if start:
        try:
            return embedded_redis.ensure(state_dir)
        except embedded_redis.EmbeddedError as exc:
            raise NoRedis(str(exc)) from exc
    if url == EMBEDDED:
        raise NoRedis(f"no embedded Redis is running in {state_dir}: start `alerts run` (it starts one)")
    raise NoRedis("no Redis is running: start `alerts run` (it starts one) or set REDIS_URL")


def _store(settings: Settings) -> Store:
    from alerts.state.store import Store

    return Store.from_url(_with_redis(settings)[0].redis_url or "")


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from alerts.service.supervise import run

    if (failed := _check_apart()) is not None:
        return failed
    server = None
    if settings.metrics_listen is not None:  # bound first: a port in use stops us before anything starts
        from alerts.service.observe import ListenError, MetricsServer

        try:
            server = MetricsServer(settings.metrics_listen)
        except ListenError as exc:
            print(exc, file=sys.stderr)
            return 1
    settings, instance = _with_redis(settings, start=True)
    try:
        return run(
            settings,
            deliver_concurrency=args.concurrency,
            on_exit=instance.stop if instance else None,  # the embedded Redis stops after the workers
            server=server,
        )
    finally:
        if instance:
            instance.stop()


def _once(settings: Settings, _: argparse.Namespace) -> int:
    from concurrent.futures import ThreadPoolExecutor

    from alerts.service import pipeline
    from alerts.service.runtime import Runtime

    _load(settings)
    settings, instance = _with_redis(settings, start=True)
    try:
        runtime = Runtime(settings)
        dispatch = pipeline.deliver_inline(runtime)
        feeds = list(runtime.live.current().config.feeds)

        def poll(name: str) -> pipeline.PollReport:
            try:
                return pipeline.poll_feed(runtime, name, dispatch)
            except AlertsError as exc:
                return pipeline.PollReport(name, "failed", error=str(exc))

        with ThreadPoolExecutor(max_workers=8) as pool:
            reports = list(pool.map(poll, feeds))
        pipeline.send_digests(runtime, dispatch)
        runtime.store.liveness.release()  # before Redis stops: nothing is left claimed
    finally:
        if instance:
            instance.stop()
    for report in reports:
        detail = report.error or f"{report.items} items, {report.new} new, {report.alerts} alerts"
        print(f"{report.feed}: {report.status}: {detail}")
    failed = sum(report.status == "failed" for report in reports)
    if failed:
        print(f"{failed} of {len(reports)} feeds failed", file=sys.stderr)
    return 1 if failed else 0


def _demo(_: Settings, args: argparse.Namespace) -> int:
    from alerts.service import demo

    return demo.run(max(0.5, args.every), args.seconds)


def _explain(settings: Settings, args: argparse.Namespace) -> int:
    from alerts.matching.explain import Explainer
    from alerts.models import region_named
    from alerts.service import story_views
    from alerts.service.live import build_snapshot

    config = _load(settings, channels=False)  # explaining never sends: notify URLs are not checked
    feed = config.feeds.get(args.feed) if args.feed else None
    if args.feed and feed is None:
        print(f"unknown feed {args.feed!r}", file=sys.stderr)
        return 2
    regions = [region_named(name) for name in args.region]
    if None in regions:
        print(f"unknown region {args.region[regions.index(None)]!r}", file=sys.stderr)
        return 2
    if (args.headline is None) == (args.file is None):
        print("give a HEADLINE or --file FILE (one headline per line; - for stdin)", file=sys.stderr)
        return 2
    snapshot = build_snapshot(config)
    explainer = Explainer(
        snapshot.matcher, snapshot.classifier, feed, [region for region in regions if region]
    )
    try:
        store: Store | None = _store(settings)
    except NoRedis:
        store = None  # the story part says open stories are unknown
    story = story_views.explainer(snapshot.classifier.geotagger, settings, store, feed)
    if args.headline is not None:
        result = explainer.explain(args.headline)
        result["story"] = story(args.headline)
        print(json.dumps(result, ensure_ascii=False) if args.json else _explained_text(explainer, result))
        return 0
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    with stream:
        out = sys.stdout
        for line in stream:
            headline = line.rstrip("\n")
            if not headline.strip():
                continue
            result = explainer.explain(headline)
            result["story"] = story(headline)
            out.write(
                (json.dumps(result, ensure_ascii=False) if args.json else _explained_text(explainer, result))
                + "\n"
            )
    return 0


def _explained_text(explainer: Explainer, result: dict[str, Any]) -> str:
    from alerts.service import story_views

    return explainer.text(result) + "\n" + story_views.explained_text(result["story"])


def _stories(settings: Settings, args: argparse.Namespace) -> int:
    from alerts.service import story_views

    stories = _store(settings).stories.recent(time.time() - args.since)
    for story in stories:
        print(
            json.dumps(story_views.listed(story), ensure_ascii=False)
            if args.json
            else story_views.listed_text(story)
        )
    if not stories and not args.json:
        print("no story in that time")
    return 0


def _feeds(settings: Settings, args: argparse.Namespace) -> int:
    from alerts.polling import status

    config = _load(settings)
    store = _store(settings)
    names = list(config.feeds)
    rows = status.rows(config.feeds, store.feeds.get_many(names), store.schedule.of(names))
    print(json.dumps(rows, ensure_ascii=False) if args.json else status.table(rows, time.time()))
    return 0


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from alerts.errors import StoreUnavailable
    from alerts.service import status

    store = _store(settings)
    try:
        found = status.gather(store)
    except StoreUnavailable as exc:
        print(log.redact(str(exc)), file=sys.stderr)
        return 1
    print(json.dumps(status.to_json(found), ensure_ascii=False) if args.json else status.text(found))
    return 0


_DLQ_FIELDS = ("subscriber", "feed", "title", "attempts", "last_error", "updated")


def _dlq(settings: Settings, args: argparse.Namespace) -> int:
    _load(settings)
    deliveries = _store(settings).deliveries
    if args.action == "list":
        rows = []
        for delivery in deliveries.dead():
            record = deliveries.get(delivery)
            rows.append({"delivery": delivery, **{k: record.get(k, "") for k in _DLQ_FIELDS}})
        if args.json:
            print(json.dumps(rows, ensure_ascii=False))
        else:
            for row in rows:
                print(
                    f"{row['delivery']}  {row['subscriber']}  {row['feed']}  attempts={row['attempts']}  "
                    f"{row['title'][:60]!r}  {log.redact(row['last_error'])[:80]}"
                )
            print(f"{len(rows)} dead deliveries")
        return 0
    if not args.delivery:
        print(f"dlq {args.action} needs a delivery id (see alerts dlq list)", file=sys.stderr)
        return 2
    done = (
        deliveries.revive(args.delivery, time.time())
        if args.action == "retry"
        else deliveries.drop(args.delivery)
    )
    print(f"{args.action}: {args.delivery}: {'done' if done else 'not found'}")
    return 0 if done else 1


def _history(settings: Settings, args: argparse.Namespace) -> int:
    _load(settings)
    deliveries = _store(settings).deliveries
    since = time.time() - args.since
    entries = [
        e for e in deliveries.history(since) if not args.subscriber or e.get("subscriber") == args.subscriber
    ]
    for entry in entries:
        entry["target"] = log.redact(entry.get("target", ""))  # entries older than the masking
        if args.json:
            print(json.dumps(entry, ensure_ascii=False))
            continue
        when = datetime.fromtimestamp(float(entry["at"]), UTC).strftime("%Y-%m-%d %H:%M:%S")
        latency = f"{float(entry['latency']):.1f}s" if entry.get("latency") else "-"
        print(
            f"{when}  {entry['state']:<4}  {entry['subscriber']:<12} {latency:>7}  {entry['target']}  "
            f"{entry['title'][:70]}"
        )
    return 0


def _send_test(settings: Settings, args: argparse.Namespace) -> int:
    from alerts.delivery import targets
    from alerts.delivery.send import send_test

    config = _load(settings)
    subscriber = config.subscribers.get(args.subscriber)
    if subscriber is None:
        print(
            f"unknown subscriber {args.subscriber!r} (known: {', '.join(config.subscribers)})",
            file=sys.stderr,
        )
        return 2
    if settings.telegram_api:
        from alerts.delivery import channels

        channels.use_telegram_api(settings.telegram_api)
    failed = 0
    for url in subscriber.notify:
        try:
            send_test(url, "breaking-alerts test", f"Test message for {subscriber.name}.")
            print(f"ok      {targets.private(url)}")
        except AlertsError as exc:
            failed += 1
            print(f"FAILED  {log.redact(str(exc))}")
    return 1 if failed else 0


_HANDLERS = {
    "run": _run,
    "check": _check,
    "once": _once,
    "demo": _demo,
    "explain": _explain,
    "feeds": _feeds,
    "status": _status,
    "dlq": _dlq,
    "history": _history,
    "stories": _stories,
    "send-test": _send_test,
}


if __name__ == "__main__":
    sys.exit(main())
