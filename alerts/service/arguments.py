"""The ``alerts`` command line's arguments: every command and option, and one-line errors (exit 2)."""

from __future__ import annotations

import argparse
from typing import NoReturn

from alerts.config.settings import Settings


class _Parser(argparse.ArgumentParser):
    """A bad argument is one line on stderr and exit status 2 (argparse prints its usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _duration(text: str) -> float:
    """A command-line duration (30m, 6h, 2d), or argparse's error naming it."""
    from alerts.config.durations import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def parser(settings: Settings) -> argparse.ArgumentParser:
    """The ``alerts`` command line: ``args.command`` names the command."""
    parser = _Parser(prog="alerts", description="Breaking-news alerts: poll, match, deliver.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run = commands.add_parser("run", help="the whole service, for one machine")
    run.add_argument(
        "--concurrency",
        type=int,
        default=settings.deliver_concurrency,
        help="deliver processes (default: ALERTS_CONCURRENCY, else 1: one worker for polls and deliveries)",
    )
    check = commands.add_parser("check", help="validate the configuration")
    check.add_argument(
        "--accept",
        action="store_true",
        help="also apply it at once in running workers, even if it removes most subscriptions or feeds",
    )
    commands.add_parser("once", help="poll every feed once, deliver, exit")
    demo = commands.add_parser("demo", help="a local newsroom and the service: alerts on this terminal")
    demo.add_argument("--every", type=float, default=4.0, help="seconds between breaking items (default 4)")
    demo.add_argument("--seconds", type=float, help="stop after this long (default: at Ctrl-C)")
    explain = commands.add_parser("explain", help="which subscriptions match a headline, and why")
    explain.add_argument("headline", nargs="?", help="the headline to test (or --file)")
    explain.add_argument("--file", help="one headline per line (- for stdin): one result per line")
    explain.add_argument("--feed", help="as if the item came from this feed")
    explain.add_argument("--region", action="append", default=[], help="an item region (repeatable)")
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    feeds = commands.add_parser("feeds", help="health of every feed: last success, errors, schedule")
    feeds.add_argument("--json", action="store_true", help="machine-readable output")
    status = commands.add_parser("status", help="the service at a glance: workers, feeds, outbox, last hour")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    dlq = commands.add_parser("dlq", help="dead deliveries: list, retry or drop them")
    dlq.add_argument("action", choices=["list", "retry", "drop"])
    dlq.add_argument("delivery", nargs="?", help="the delivery id (retry, drop)")
    dlq.add_argument("--json", action="store_true", help="machine-readable list")
    history = commands.add_parser("history", help="what was sent, where, when, and how fast")
    history.add_argument("--subscriber", help="only this subscriber")
    history.add_argument(
        "--since", default=3600.0, type=_duration, help="how far back (30m, 6h, 2d; default 1h)"
    )
    history.add_argument("--json", action="store_true", help="one JSON object per line")
    stories = commands.add_parser("stories", help="recent stories: their sources, updates and subscribers")
    stories.add_argument(
        "--since", default=3600.0, type=_duration, help="stories with a report this recent (default 1h)"
    )
    stories.add_argument("--json", action="store_true", help="one JSON object per line")
    send_test = commands.add_parser("send-test", help="send a test message to each URL of a subscriber")
    send_test.add_argument("subscriber")
    return parser
