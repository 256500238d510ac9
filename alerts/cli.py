"""The ``alerts`` command: run, check, once, explain, send-test."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from alerts import embedded, feedstatus, log, notify, pipeline
from alerts.config import Config, load_config
from alerts.errors import AlertsError, ConfigError
from alerts.explain import Explainer
from alerts.regions import region_named
from alerts.runtime import Runtime, Settings, build_snapshot
from alerts.store import Store

_logger = log.get("alerts.cli")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``alerts`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    log.configure()
    try:
        return int(args.handler(args))
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="alerts", description="Breaking-news alerts: poll, match, deliver.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="workers and beat together, for one machine")
    run.add_argument(
        "--concurrency",
        type=int,
        default=int(os.environ.get("ALERTS_CONCURRENCY", "8")),
        help="parallel deliveries (threads of the deliver worker)",
    )
    run.set_defaults(handler=_run)
    commands.add_parser("check", help="validate the configuration").set_defaults(handler=_check)
    commands.add_parser("once", help="poll every feed once, deliver, exit").set_defaults(handler=_once)
    explain = commands.add_parser("explain", help="which subscriptions match a headline, and why")
    explain.add_argument("headline", nargs="?", help="the headline to test (or --file)")
    explain.add_argument("--file", help="one headline per line (- for stdin): one result per line")
    explain.add_argument("--feed", help="as if the item came from this feed")
    explain.add_argument("--region", action="append", default=[], help="an item region (repeatable)")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.set_defaults(handler=_explain)
    feeds = commands.add_parser("feeds", help="health of every feed: last success, errors, schedule")
    feeds.add_argument("--json", action="store_true", help="machine-readable output")
    feeds.set_defaults(handler=_feeds)
    send_test = commands.add_parser("send-test", help="send a test message to each URL of a subscriber")
    send_test.add_argument("subscriber")
    send_test.set_defaults(handler=_send_test)
    return parser


def _load() -> Config:
    config = load_config(Settings.from_env().config_dir)
    log.add_secrets(config.secrets)
    return config


def _check(_: argparse.Namespace) -> int:
    config = _load()
    print(
        f"ok: {config.directory}: {len(config.feeds)} feeds, {len(config.subscribers)} subscribers, "
        f"{len(config.subscriptions)} subscriptions"
    )
    return 0


def _use_redis() -> None:
    """Point REDIS_URL at a Redis that answers, starting a private one if need be."""
    url, process = embedded.ensure_redis(os.environ.get("REDIS_URL"))
    os.environ["REDIS_URL"] = url
    if process is not None:
        _logger.info("redis.embedded", url=url, pid=process.pid, data=str(embedded.state_dir()))


def _run(args: argparse.Namespace) -> int:
    _load()
    _use_redis()
    from workers.run import run

    return run(
        poll_concurrency=int(os.environ.get("ALERTS_POLL_CONCURRENCY") or 16),
        deliver_concurrency=args.concurrency,
    )


def _once(_: argparse.Namespace) -> int:
    _load()
    _use_redis()
    runtime = Runtime.from_env()
    dispatch = pipeline.deliver_inline(runtime)
    feeds = list(runtime.live.current().config.feeds)

    def poll(name: str) -> pipeline.PollReport:
        try:
            return pipeline.poll_feed(runtime, name, dispatch)
        except AlertsError as exc:
            return pipeline.PollReport(name, "failed", error=str(exc))

    with ThreadPoolExecutor(max_workers=8) as pool:
        reports = list(pool.map(poll, feeds))
    for report in reports:
        detail = report.error or f"{report.items} items, {report.new} new, {report.alerts} alerts"
        print(f"{report.feed}: {report.status}: {detail}")
    return 0


def _explain(args: argparse.Namespace) -> int:
    config = _load()
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
    explainer = Explainer(snapshot, feed, [region for region in regions if region])
    if args.headline is not None:
        result = explainer.explain(args.headline)
        print(json.dumps(result, ensure_ascii=False) if args.json else explainer.text(result))
        return 0
    stream = sys.stdin if args.file == "-" else open(args.file, encoding="utf-8")  # noqa: SIM115
    with stream:
        out = sys.stdout
        for line in stream:
            headline = line.rstrip("\n")
            if not headline.strip():
                continue
            result = explainer.explain(headline)
            out.write(
                (json.dumps(result, ensure_ascii=False) if args.json else explainer.text(result)) + "\n"
            )
    return 0


def _feeds(args: argparse.Namespace) -> int:
    config = _load()
    _use_redis()
    rows = feedstatus.rows(config, Store.from_url(os.environ["REDIS_URL"]))
    print(json.dumps(rows, ensure_ascii=False) if args.json else feedstatus.table(rows))
    return 0


def _send_test(args: argparse.Namespace) -> int:
    config = _load()
    subscriber = config.subscribers.get(args.subscriber)
    if subscriber is None:
        print(
            f"unknown subscriber {args.subscriber!r} (known: {', '.join(config.subscribers)})",
            file=sys.stderr,
        )
        return 2
    failed = 0
    for url in subscriber.notify:
        try:
            notify.send(url, "breaking-alerts test", f"Test message for {subscriber.name}.", subscriber.name)
            print(f"ok      {notify.private(url)}")
        except AlertsError as exc:
            failed += 1
            print(f"FAILED  {log.redact(str(exc))}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
