"""The ``alerts`` console script, run as a subprocess against real Redis, feed server and sinks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from alerts import log
from alerts.delivery import channels
from alerts.service import embedded_redis
from tests.harness.configs import write_config
from tests.harness.servers import Entry, FeedServer, TelegramDouble, WebhookSink

ALERTS = Path(sys.executable).with_name("alerts")
UNREACHABLE = "json://127.0.0.1:9/hook"  # a valid Apprise URL that explain/check never send to
_OWN_ENV = ("ALERTS_", "REDIS_URL", "BOT_TOKEN")


def alerts(config_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``alerts ARGS`` with ALERTS_CONFIG=config_dir plus ``env``; never inherit our own variables."""
    base = {name: value for name, value in os.environ.items() if not name.startswith(_OWN_ENV)}
    return subprocess.run(
        [str(ALERTS), *args],
        env={**base, "ALERTS_CONFIG": str(config_dir), **env},
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )


def _explain_config(config_dir: Path) -> None:
    write_config(
        config_dir,
        feeds=[
            {"name": "gulf", "url": "http://127.0.0.1:9/gulf.xml", "region": "MENA"},
            {"name": "world", "url": "http://127.0.0.1:9/world.xml"},
        ],
        subscribers=[{"name": "desk", "notify": [UNREACHABLE]}, {"name": "night", "notify": [UNREACHABLE]}],
        subscriptions=[
            {"name": "gaza", "subscribers": ["desk", "night"], "keywords": ["gaza"], "exclude": ["football"]},
            {"name": "mena-strikes", "subscribers": ["desk"], "keywords": ["strike"], "regions": ["MENA"]},
            {"name": "quake", "subscribers": ["night"], "all": ["earthquake", "tsunami"]},
        ],
    )


# --- explain ------------------------------------------------------------------------------------

GAZA = {"subscription": "gaza", "subscribers": ["desk", "night"], "terms": ["gaza"]}
MENA_STRIKE = {"subscription": "mena-strikes", "subscribers": ["desk"], "terms": ["strike", "region:MENA"]}


GAZA_REGIONS = {"MENA": ["Gaza"], "Palestine": ["Gaza"]}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["Strike hits port in Gaza"],
            {
                "regions": ["MENA", "Palestine"],
                "region_sources": GAZA_REGIONS,
                "matches": [GAZA, MENA_STRIKE],
            },
        ),
        (
            ["Strike hits port", "--feed", "gulf"],
            {"regions": ["MENA"], "region_sources": {"MENA": ["feed"]}, "matches": [MENA_STRIKE]},
        ),
        (["Strike hits port", "--feed", "world"], {"regions": [], "region_sources": {}, "matches": []}),
        (
            ["Strike hits port", "--region", "MENA"],
            {"regions": ["MENA"], "region_sources": {"MENA": ["given"]}, "matches": [MENA_STRIKE]},
        ),
        (
            ["Strike in the capital", "--region", "mena", "--region", "Europe"],
            {
                "regions": ["Europe", "MENA"],
                "region_sources": {"Europe": ["given"], "MENA": ["given"]},
                "matches": [MENA_STRIKE],
            },
        ),
        (
            ["Strike hits Kyiv"],
            {"regions": ["Europe"], "region_sources": {"Europe": ["Kyiv"]}, "matches": []},
        ),
        (
            ["Earthquake and tsunami warning"],
            {
                "regions": [],
                "region_sources": {},
                "matches": [
                    {"subscription": "quake", "subscribers": ["night"], "terms": ["earthquake", "tsunami"]}
                ],
            },
        ),
        (
            ["Earthquake shakes Lima"],
            {"regions": ["Latin America"], "region_sources": {"Latin America": ["Lima"]}, "matches": []},
        ),
        (
            ["Gaza football team wins cup"],
            {"regions": ["MENA", "Palestine"], "region_sources": GAZA_REGIONS, "matches": []},
        ),
    ],
    ids=[
        "keyword-and-geotagged-region",
        "feed-region",
        "feed-without-region",
        "region-option",
        "regions-canonical",
        "geotagged-other-region",
        "all-terms",
        "all-terms-missing-one",
        "excluded",
    ],
)
def test_explain_json(config_dir: Path, args: list[str], expected: dict[str, object]) -> None:
    """`explain --json` prints the regions, the words that produced them, and each match with its terms."""
    _explain_config(config_dir)
    result = alerts(config_dir, "explain", *args, "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    document = json.loads(lines[0])
    story = document.pop("story")
    assert document == expected
    assert list(document) == ["regions", "region_sources", "matches"]
    assert set(story) == {"language", "places", "numbers", "actors", "events", "terms", "joins"}
    assert all(list(match) == ["subscription", "subscribers", "terms"] for match in document["matches"])


def test_explain_file_prints_one_result_per_headline(config_dir: Path, tmp_path: Path) -> None:
    """`explain --json --file` evaluates each non-empty line and prints one JSON object per line, in order."""
    _explain_config(config_dir)
    headlines = tmp_path / "headlines.txt"
    headlines.write_text("Strike hits port in Gaza\n\nMarkets close higher\nEarthquake and tsunami warning\n")
    result = alerts(config_dir, "explain", "--json", "--file", str(headlines))
    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert [[m["subscription"] for m in doc["matches"]] for doc in documents] == [
        ["gaza", "mena-strikes"],
        [],
        ["quake"],
    ]
    from_stdin = subprocess.run(
        [str(ALERTS), "explain", "--json", "--file", "-"],
        input=headlines.read_text(),
        env={**os.environ, "ALERTS_CONFIG": str(config_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert from_stdin.stdout == result.stdout


def test_explain_text_names_subscription_and_terms(config_dir: Path) -> None:
    """The text form of explain names each matching subscription, its terms and its subscribers."""
    _explain_config(config_dir)
    result = alerts(config_dir, "explain", "Strike hits port in Gaza", "--feed", "gulf")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:4] == [
        "regions: MENA (feed, Gaza), Palestine (Gaza)",
        "gaza: matched by gaza -> desk, night",
        "mena-strikes: matched by strike, region:MENA -> desk",
        "story facts: places Gaza, events attack (en)",
    ]
    assert len(lines) == 5 and lines[4].startswith("story: ")
    result = alerts(config_dir, "explain", "Markets close higher")
    assert result.stdout.splitlines()[:2] == ["regions: -", "no subscription matches"]


@pytest.mark.parametrize(
    ("option", "message"),
    [(["--feed", "nope"], "unknown feed 'nope'"), (["--region", "Atlantis"], "unknown region 'Atlantis'")],
)
def test_explain_rejects_unknown_feed_or_region(config_dir: Path, option: list[str], message: str) -> None:
    """explain exits 2 naming an unknown feed or region."""
    _explain_config(config_dir)
    result = alerts(config_dir, "explain", "Strike in Gaza", *option)
    assert result.returncode == 2
    assert message in result.stderr and result.stdout == ""


# --- check --------------------------------------------------------------------------------------


def test_check_ok(config_dir: Path) -> None:
    """`alerts check` exits 0 and summarises a valid configuration."""
    _explain_config(config_dir)
    result = alerts(config_dir, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == f"ok: {config_dir}: 2 feeds, 2 subscribers, 3 subscriptions\n"


def test_check_reports_problems_with_file_and_line(config_dir: Path) -> None:
    """`alerts check` exits 1 and prints one file:line line per problem."""
    (config_dir / "feeds.yaml").write_text(
        "feeds:\n  - name: wire\n    url: http://127.0.0.1:9/wire.xml\n    every: 500ms\n"
    )
    (config_dir / "subscriptions.yaml").write_text(
        "subscribers:\n"
        "  - name: desk\n"
        f"    notify: ['{UNREACHABLE}']\n"
        "subscriptions:\n"
        "  - name: gaza\n"
        "    subscribers: [desk]\n"
        "    keywrods: [gaza]\n"
    )
    result = alerts(config_dir, "check")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{config_dir}/feeds.yaml:4: feeds.0.every: poll interval 0.5s is below the 1s minimum",
        f"{config_dir}/subscriptions.yaml:7: unknown key 'keywrods' (did you mean 'keywords'?)",
    ]


def test_check_missing_directory(tmp_path: Path) -> None:
    """`alerts check` on a directory without config files exits 1 naming each missing file."""
    result = alerts(tmp_path / "absent", "check")
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{tmp_path}/absent/feeds.yaml:1: file not found",
        f"{tmp_path}/absent/subscriptions.yaml:1: file not found",
    ]


# --- send-test ----------------------------------------------------------------------------------


def test_send_test_reaches_each_url(config_dir: Path, webhook: WebhookSink) -> None:
    """`alerts send-test` sends one test message to each of the subscriber's URLs and exits 0."""
    other = WebhookSink().start()
    try:
        write_config(
            config_dir,
            feeds=[],
            subscribers=[{"name": "desk", "notify": [webhook.apprise_url, other.apprise_url]}],
            subscriptions=[{"name": "gaza", "subscribers": ["desk"], "keywords": ["gaza"]}],
        )
        result = alerts(config_dir, "send-test", "desk")
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.splitlines() == [
            f"ok      {webhook.apprise_url}",
            f"ok      {other.apprise_url}",
        ]
        for sink in (webhook, other):
            assert sink.titles() == ["breaking-alerts test"]
            assert sink.received[0]["message"] == "Test message for desk."
    finally:
        other.stop()


def test_send_test_failure_prints_private_url_and_exits_1(config_dir: Path, webhook: WebhookSink) -> None:
    """A URL that cannot be reached is reported FAILED in its private form (no password) and exits 1."""
    password = "s3cret-hook-pw"
    closed = f"json://user:{password}@127.0.0.1:{embedded_redis.free_port()}/hook"
    write_config(
        config_dir,
        feeds=[],
        subscribers=[{"name": "desk", "notify": [closed, webhook.apprise_url]}],
        subscriptions=[{"name": "gaza", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )
    result = alerts(config_dir, "send-test", "desk")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    # Apprise's private form (user:****@) is then masked again by log.redact (user:***@).
    port = closed.rsplit(":", 1)[1].split("/")[0]
    assert channels.private(closed) == f"json://user:***@127.0.0.1:{port}/hook"
    assert lines[0].startswith(f"FAILED  {log.redact(channels.private(closed))}: ")
    assert "Connection error" in lines[0]
    assert lines[1] == f"ok      {webhook.apprise_url}"
    assert webhook.titles() == ["breaking-alerts test"]
    assert password not in result.stdout + result.stderr


def test_send_test_unknown_subscriber_exits_2(config_dir: Path) -> None:
    """`alerts send-test` for a subscriber that is not configured exits 2 and lists the known ones."""
    _explain_config(config_dir)
    result = alerts(config_dir, "send-test", "ghost")
    assert result.returncode == 2
    assert "unknown subscriber 'ghost' (known: desk, night)" in result.stderr


TOKENS = [
    "123456789:AAHsecretSECRETsecretSECRETsecret0",  # shaped like a real bot token
    "4242:tiny-secret",  # too short for the token pattern: only ${NAME} redaction can hide it
]


def _telegram_config(config_dir: Path) -> None:
    write_config(
        config_dir,
        feeds=[],
        subscribers=[{"name": "desk", "notify": ["tgram://${BOT_TOKEN}/-100123"]}],
        subscriptions=[{"name": "gaza", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )


@pytest.mark.parametrize("token", TOKENS, ids=["bot-shaped", "short"])
def test_send_test_never_prints_the_bot_token(config_dir: Path, telegram: TelegramDouble, token: str) -> None:
    """A refused Telegram send is reported without the bot token on stdout or stderr."""
    telegram.accept = False  # answers 401 echoing the request path, which holds the token
    _telegram_config(config_dir)
    result = alerts(
        config_dir,
        "send-test",
        "desk",
        BOT_TOKEN=token,
        ALERTS_TELEGRAM_API=telegram.api,
        ALERTS_LOG_LEVEL="DEBUG",
    )
    assert result.returncode == 1
    assert result.stdout.startswith("FAILED  tgram://")
    assert "Unauthorized" in result.stdout + result.stderr, "the refusal must come from the local double"
    output = result.stdout + result.stderr
    assert token not in output
    assert token.split(":", 1)[1] not in output


def test_send_test_reaches_telegram_double(config_dir: Path, telegram: TelegramDouble) -> None:
    """With ALERTS_TELEGRAM_API set, send-test delivers to the local Bot API double."""
    _telegram_config(config_dir)
    result = alerts(config_dir, "send-test", "desk", BOT_TOKEN=TOKENS[0], ALERTS_TELEGRAM_API=telegram.api)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(telegram.messages) == 1
    assert TOKENS[0] not in result.stdout + result.stderr


# --- once ---------------------------------------------------------------------------------------


def test_once_records_backlog_then_delivers_new_item_once(
    config_dir: Path, feed_server: FeedServer, webhook: WebhookSink, redis_url: str
) -> None:
    """`alerts once` seeds on the first run, delivers a new match once on the next, nothing on the third."""
    feed_server.publish("wire", Entry("Old report on Gaza talks from yesterday", "http://news.test/old"))
    feed_server.feed("down").status = 500
    write_config(
        config_dir,
        feeds=[
            {"name": "wire", "url": feed_server.url("wire")},
            {"name": "down", "url": feed_server.url("down")},
        ],
        subscribers=[{"name": "desk", "notify": [webhook.apprise_url]}],
        subscriptions=[{"name": "gaza", "subscribers": ["desk"], "keywords": ["gaza"]}],
    )

    def once() -> list[str]:
        result = alerts(config_dir, "once", REDIS_URL=redis_url)
        assert result.returncode == 1, result.stdout + result.stderr  # "down" failed
        assert result.stderr.splitlines()[-1] == "1 of 2 feeds failed"
        return result.stdout.splitlines()

    first = once()
    assert first[0] == "wire: ok: 1 items, 1 new, 0 alerts"
    assert first[1].startswith("down: failed: HTTP 500") and len(first) == 2
    assert webhook.received == []

    feed_server.publish(
        "wire",
        Entry("Strike hits hospital in Gaza", "http://news.test/strike"),
        Entry("Markets close higher", "http://news.test/markets"),
    )
    second = once()
    assert second[0] == "wire: ok: 3 items, 2 new, 1 alerts"
    assert second[1].startswith("down: failed: ")
    assert webhook.titles() == ["Strike hits hospital in Gaza"]

    third = once()
    assert third[0] == "wire: not_modified: 0 items, 0 new, 0 alerts"
    assert third[1].startswith("down: failed: ")
    assert len(webhook.received) == 1


# --- bad arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["history", "--since", "banana"], "alerts history: argument --since: malformed duration 'banana'"),
        (["run", "--concurrency", "many"], "alerts run: argument --concurrency: invalid int value: 'many'"),
        (["dlq", "resurrect"], "alerts dlq: argument action: invalid choice: 'resurrect'"),
        (["frobnicate"], "alerts: argument command: invalid choice: 'frobnicate'"),
        ([], "alerts: the following arguments are required: command"),
    ],
    ids=["duration", "int", "choice", "command", "none"],
)
def test_a_bad_argument_is_one_line_and_exit_2(config_dir: Path, args: list[str], says: str) -> None:
    result = alerts(config_dir, *args)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(says) and "Traceback" not in result.stderr


# --- the shipped example -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headline", "matched"),
    [
        ("Israeli strikes hit southern Lebanon", "middle-east: matched by israel*, leban* -> terminal"),
        ("Ukrainian drones hit Kyiv", "ukraine: matched by kyiv, ukrain* -> terminal"),
        ("Israel football team wins", "no subscription matches"),
    ],
)
def test_the_shipped_example_matches_what_people_expect(headline: str, matched: str) -> None:
    """config/subscriptions.yaml's own example command: a prefix catches "Israeli" and "Ukrainian"."""
    result = alerts(Path(__file__).resolve().parents[2] / "config", "explain", headline)
    assert result.returncode == 0, result.stderr
    assert matched in result.stdout.splitlines()


# --- stories ------------------------------------------------------------------------------------


def _file_a_story(redis_url: str) -> str:
    """One open story, as a poll of the feed "wire" would have filed it; its id."""
    from alerts.matching.geo import Geotagger, RegionTaxonomy
    from alerts.matching.stories.compare import StoryPolicy
    from alerts.models import Feed, FeedItem
    from alerts.service.storyline import Storyline
    from alerts.state.store import Store

    store = Store.from_url(redis_url)
    storyline = Storyline(Geotagger(RegionTaxonomy.load()), StoryPolicy(), store.stories, ttl=3600)
    item = FeedItem(id="1", title="Israeli strike kills 8 in Khan Younis", link="https://wire.test/1")
    (placed,) = storyline.place(Feed(name="wire", url="https://wire.test/rss"), [item], time.time())
    store.stories.add_recipients([(placed.story, "desk")], ttl=3600)
    return placed.story


def test_explain_names_the_open_story_a_headline_would_join_and_what_it_would_add(
    config_dir: Path, redis_url: str
) -> None:
    """With the service's Redis, explain says which story the headline joins, why, and the update."""
    _explain_config(config_dir)
    story = _file_a_story(redis_url)
    result = alerts(
        config_dir,
        "explain",
        "Toll from Israeli strike on Khan Younis rises to 12",
        "--json",
        REDIS_URL=redis_url,
    )
    assert result.returncode == 0, result.stderr
    joins = json.loads(result.stdout)["story"]["joins"]
    assert (joins["story"], joins["title"], joins["update"]) == (
        story,
        "Israeli strike kills 8 in Khan Younis",
        ["toll 12 (was 8)"],
    )
    assert "Khan Younis" in joins["shared"]
    text = alerts(config_dir, "explain", "Floods kill 30 in Lagos", REDIS_URL=redis_url).stdout
    assert "story facts: places Lagos, numbers 30, events flood (en)" in text
    assert "story: opens a new story" in text


def test_explain_without_any_redis_still_explains_and_says_open_stories_are_unknown(config_dir: Path) -> None:
    _explain_config(config_dir)
    result = alerts(
        config_dir,
        "explain",
        "Strike hits port in Gaza",
        "--json",
        REDIS_URL=f"redis://127.0.0.1:{embedded_redis.free_port()}/0",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["story"]["joins"].startswith("unknown (no Redis is running")


def test_stories_lists_each_story_with_its_sources_updates_and_subscribers(
    config_dir: Path, redis_url: str
) -> None:
    _explain_config(config_dir)
    story = _file_a_story(redis_url)
    result = alerts(config_dir, "stories", "--since", "1h", "--json", REDIS_URL=redis_url)
    assert result.returncode == 0, result.stderr
    (listed,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert (listed["story"], listed["sources"], listed["updates"], listed["subscribers"]) == (
        story,
        ["wire"],
        0,
        ["desk"],
    )
    text = alerts(config_dir, "stories", REDIS_URL=redis_url).stdout
    assert (
        "Israeli strike kills 8 in Khan Younis" in text and "sources: wire; 0 updates; sent to: desk" in text
    )
