"""Tests of alerts.config.load_config on YAML written to a temporary directory, and of `alerts check`."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import yaml

from alerts.errors import ConfigError, Problem

with warnings.catch_warnings():  # apprise (via alerts.delivery.channels) imports the deprecated imghdr module
    warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
    from alerts.config.durations import parse_duration
    from alerts.config.load import load_config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config"
MARK = "# HERE"  # a YAML comment on the line where a problem is expected

FEEDS = """\
feeds:
  - name: alpha
    url: https://alpha.example/rss
    every: 30s
  - name: beta
    url: https://beta.example/feed.xml
    region: MENA
"""

SUBS = """\
subscribers:
  - name: desk
    notify:
      - "console://"
subscriptions:
  - name: gaza
    subscribers: [desk]
    keywords: [gaza, rafah]
"""


def write(directory: Path, feeds: str | None = FEEDS, subs: str | None = SUBS) -> Path:
    """Write the two files (None leaves one out) and return the directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in (("feeds.yaml", feeds), ("subscriptions.yaml", subs)):
        if text is not None:
            (directory / name).write_text(text, encoding="utf-8")
    return directory


def problems_of(directory: Path, env: dict[str, str] | None = None) -> list[Problem]:
    """The problems of the ConfigError that loading ``directory`` must raise."""
    with pytest.raises(ConfigError) as caught:
        load_config(directory, env or {})
    return caught.value.problems


def marked_line(text: str) -> int:
    """The 1-based line holding MARK."""
    lines = [number for number, line in enumerate(text.splitlines(), 1) if MARK in line]
    assert len(lines) == 1, "a case needs exactly one marked line"
    return lines[0]


def where(problems: list[Problem]) -> list[tuple[str, int]]:
    """(file name, line) of each problem."""
    return [(Path(p.file).name, p.line) for p in problems]


def test_example_config_loads() -> None:
    """The shipped example config validates, with every feed, subscriber and subscription."""
    feeds = yaml.safe_load((EXAMPLE / "feeds.yaml").read_text(encoding="utf-8"))["feeds"]
    subs = yaml.safe_load((EXAMPLE / "subscriptions.yaml").read_text(encoding="utf-8"))
    config = load_config(EXAMPLE, {})
    assert feeds and subs["subscribers"] and subs["subscriptions"]
    assert list(config.feeds) == [feed["name"] for feed in feeds]
    assert list(config.subscribers) == [s["name"] for s in subs["subscribers"]]
    assert [s.name for s in config.subscriptions] == [s["name"] for s in subs["subscriptions"]]


def test_valid_config_values(tmp_path: Path) -> None:
    """Durations become seconds and unset optional fields take their defaults."""
    config = load_config(write(tmp_path), {})
    assert config.feeds["alpha"].every == 30.0
    assert config.feeds["alpha"].region is None
    assert config.feeds["beta"].every == 60.0
    assert config.feeds["beta"].region == "MENA"
    assert config.subscribers["desk"].notify == ("console://",)
    assert config.secrets == frozenset()


def test_fingerprint_follows_content(tmp_path: Path) -> None:
    """Loading the same files twice gives one fingerprint; changing a value changes it."""
    first = load_config(write(tmp_path / "a"), {}).fingerprint
    again = load_config(write(tmp_path / "b"), {}).fingerprint
    changed = load_config(write(tmp_path / "c", FEEDS.replace("30s", "31s")), {}).fingerprint
    assert first == again
    assert changed != first


FEED_CASES = {
    "unknown key in a feed": (FEEDS + "    colour: red  # HERE\n", ["unknown key", "'colour'"]),
    "unknown key at top level": (FEEDS + "extras: 1  # HERE\n", ["unknown key", "'extras'"]),
    "duplicate feed name": (
        FEEDS + "  - name: alpha  # HERE\n    url: https://other.example/rss\n",
        ["duplicate feed name", "'alpha'"],
    ),
    "malformed duration": (
        FEEDS.replace("every: 30s", "every: 5 minutes  # HERE"),
        ["malformed duration", "5 minutes", "30s"],
    ),
    "interval below 1s": (FEEDS.replace("every: 30s", "every: 500ms  # HERE"), ["0.5s", "below", "1s"]),
    "non-http URL": (
        FEEDS.replace("https://beta.example/feed.xml", "ftp://beta.example/feed.xml  # HERE"),
        ["ftp://beta.example/feed.xml", "http://", "https://"],
    ),
    "unknown region": (FEEDS.replace("region: MENA", "region: Narnia  # HERE"), ["unknown region", "Narnia"]),
    "invalid YAML syntax": (
        FEEDS.replace("    url: https://alpha.example/rss", "   url: https://alpha.example/rss  # HERE"),
        ["invalid YAML"],
    ),
    "duplicate YAML key": (
        FEEDS.replace("every: 30s", "every: 30s\n    every: 1m  # HERE"),
        ["duplicate key", "'every'"],
    ),
}

SUB_CASES = {
    "unknown key in a subscription": (SUBS + "    colour: blue  # HERE\n", ["unknown key", "'colour'"]),
    "unknown subscriber": (
        SUBS.replace("subscribers: [desk]", "subscribers: [desk, nobody]  # HERE"),
        ["unknown subscriber", "'nobody'"],
    ),
    "unknown feed": (SUBS + "    feeds: [alpha, gamma]  # HERE\n", ["unknown feed", "'gamma'"]),
    "duplicate subscriber name": (
        SUBS.replace("subscriptions:", '  - name: desk  # HERE\n    notify: ["console://"]\nsubscriptions:'),
        ["duplicate subscriber name", "'desk'"],
    ),
    "duplicate subscription name": (
        SUBS + "  - name: gaza  # HERE\n    subscribers: [desk]\n    keywords: gaza\n",
        ["duplicate subscription name", "'gaza'"],
    ),
    "no keywords, all or regions": (
        SUBS + "  - name: idle  # HERE\n    subscribers: [desk]\n    exclude: [sport]\n",
        ["'idle'", "keywords, all, query, regex or regions"],
    ),
    "unsupported Apprise URL": (
        SUBS.replace('"console://"', '"bogus://x"  # HERE'),
        ["'desk'", "bogus://", "unsupported"],
    ),
    "webhook URL without a host": (
        SUBS.replace('"console://"', '"https:///hooks/x#secret=abc"  # HERE'),
        ["'desk'", "webhook URL https://?/***", "no host"],
    ),
    "term without letters": (SUBS + '    all: ["--"]  # HERE\n', ["'--'", "no letters or digits"]),
}


@pytest.mark.parametrize(("feeds", "fragments"), FEED_CASES.values(), ids=FEED_CASES.keys())
def test_feeds_problem_names_file_and_line(tmp_path: Path, feeds: str, fragments: list[str]) -> None:
    """One mistake in feeds.yaml yields exactly one problem at feeds.yaml and the marked line."""
    problems = problems_of(write(tmp_path, feeds=feeds))
    assert where(problems) == [("feeds.yaml", marked_line(feeds))], problems
    for fragment in fragments:
        assert fragment in problems[0].message


@pytest.mark.parametrize(("subs", "fragments"), SUB_CASES.values(), ids=SUB_CASES.keys())
def test_subscriptions_problem_names_file_and_line(tmp_path: Path, subs: str, fragments: list[str]) -> None:
    """One mistake in subscriptions.yaml yields exactly one problem at that file and the marked line."""
    problems = problems_of(write(tmp_path, subs=subs))
    assert where(problems) == [("subscriptions.yaml", marked_line(subs))], problems
    for fragment in fragments:
        assert fragment in problems[0].message


def test_missing_file(tmp_path: Path) -> None:
    """A missing subscriptions.yaml is reported as 'file not found' on that file."""
    problems = problems_of(write(tmp_path, subs=None))
    assert where(problems) == [("subscriptions.yaml", 1)]
    assert "file not found" in problems[0].message


def test_nan_interval_rejected(tmp_path: Path) -> None:
    """`every: .nan` is rejected (a NaN interval later breaks the Redis schedule script)."""
    feeds = FEEDS.replace("every: 30s", "every: .nan  # HERE")
    assert where(problems_of(write(tmp_path, feeds=feeds))) == [("feeds.yaml", marked_line(feeds))]


def test_schema_problems_in_both_files_all_reported(tmp_path: Path) -> None:
    """Several schema problems across both files are all reported, sorted by file and line."""
    feeds = FEEDS.replace("every: 30s", "every: soon").replace("region: MENA", "region: Mars") + "x: 1\n"
    subs = SUBS + "    colour: blue\n"
    problems = problems_of(write(tmp_path, feeds, subs))
    assert where(problems) == [
        ("feeds.yaml", 4),
        ("feeds.yaml", 7),
        ("feeds.yaml", 8),
        ("subscriptions.yaml", 9),
    ]


def test_cross_check_problems_all_reported(tmp_path: Path) -> None:
    """Reference and uniqueness problems are all reported together, sorted by file and line."""
    feeds = FEEDS + "  - name: beta\n    url: https://b2.example/rss\n"
    subs = SUBS.replace('"console://"', '"bogus://x"').replace("[desk]", "[ghost]") + "    feeds: [nope]\n"
    problems = problems_of(write(tmp_path, feeds, subs))
    assert where(problems) == [
        ("feeds.yaml", 8),
        ("subscriptions.yaml", 4),
        ("subscriptions.yaml", 7),
        ("subscriptions.yaml", 9),
    ]
    assert [p.message.split()[0] for p in problems] == ["duplicate", "subscriber", "unknown", "unknown"]


def test_interpolation_substitutes_and_records_secrets(tmp_path: Path) -> None:
    """${NAME} is replaced by the environment value, which is recorded in Config.secrets."""
    feeds = FEEDS.replace("alpha.example", "${FEED_HOST}")
    subs = SUBS.replace('"console://"', '"ntfy://ntfy.sh/${NTFY_TOPIC}"')
    env = {"FEED_HOST": "news.example", "NTFY_TOPIC": "s3cret-topic"}
    config = load_config(write(tmp_path, feeds, subs), env)
    assert config.feeds["alpha"].url == "https://news.example/rss"
    assert config.subscribers["desk"].notify == ("ntfy://ntfy.sh/s3cret-topic",)
    assert config.secrets == frozenset(env.values())


def test_interpolation_of_unset_variable(tmp_path: Path) -> None:
    """An unset ${NAME} is a problem naming the variable and its line."""
    subs = SUBS.replace('"console://"', '"ntfy://ntfy.sh/${NO_SUCH_TOPIC}"  # HERE')
    problems = problems_of(write(tmp_path, subs=subs), {"OTHER": "x"})
    assert where(problems) == [("subscriptions.yaml", marked_line(subs))]
    assert "NO_SUCH_TOPIC" in problems[0].message
    assert "not set" in problems[0].message


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("1.5h", 5400.0),
        ("45", 45.0),
        (45, 45.0),
        (2.5, 2.5),
        (" 10 s ", 10.0),
    ],
)
def test_parse_duration(value: object, seconds: float) -> None:
    """parse_duration turns units and bare numbers into seconds."""
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["5 minutes", "5x", "", "-5s", "m", True])
def test_parse_duration_rejects(value: object) -> None:
    """Malformed durations raise ValueError."""
    with pytest.raises(ValueError, match="malformed duration"):
        parse_duration(value)


def test_regions_are_canonicalised(tmp_path: Path) -> None:
    """Region names ignore case and punctuation and come back in their canonical spelling."""
    feeds = FEEDS.replace("region: MENA", "region: us & canada")
    subs = SUBS + '    regions: [mena, "asia pacific", "LATIN-america"]\n'
    config = load_config(write(tmp_path, feeds, subs), {})
    assert config.feeds["beta"].region == "US & Canada"
    assert config.subscriptions[0].regions == ("MENA", "Asia-Pacific", "Latin America")


def test_terms_as_string_or_list(tmp_path: Path) -> None:
    """keywords, all and exclude accept one string or a list of strings."""
    subs = SUBS.replace(
        "keywords: [gaza, rafah]", 'keywords: west bank\n    all: [a, b]\n    exclude: "sport"'
    )
    sub = load_config(write(tmp_path, subs=subs), {}).subscriptions[0]
    assert (sub.keywords, sub.all, sub.exclude) == (("west bank",), ("a", "b"), ("sport",))


def run_check(directory: Path) -> subprocess.CompletedProcess[str]:
    """`alerts check` as a subprocess on ``directory``."""
    env = {**os.environ, "ALERTS_CONFIG": str(directory)}
    command = [str(Path(sys.executable).with_name("alerts")), "check"]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.e2e
def test_cli_check_ok() -> None:
    """`alerts check` exits 0 on the example config and reports the counts."""
    result = run_check(EXAMPLE)
    config = load_config(EXAMPLE, {})
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(config.feeds)} feeds" in result.stdout


@pytest.mark.e2e
def test_cli_check_broken(tmp_path: Path) -> None:
    """`alerts check` exits 1 printing one file:line: message line per problem."""
    feeds = FEEDS.replace("every: 30s", "every: 500ms") + "extras: 1\n"
    subs = SUBS + "    colour: blue\n"
    directory = write(tmp_path, feeds, subs)
    result = run_check(directory)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    parsed = [re.fullmatch(r"(.+):(\d+): (.+)", line) for line in lines]
    assert all(parsed), lines
    assert [(Path(m.group(1)).name, int(m.group(2))) for m in parsed if m] == [
        ("feeds.yaml", 4),
        ("feeds.yaml", 8),
        ("subscriptions.yaml", 9),
    ]
    assert lines == [str(p) for p in problems_of(directory)]


# --- what a person writes (issue: config that says something else than it means) ---------------


@pytest.mark.parametrize("written", ["off", "Off", "false", "no"])
def test_burst_off_as_written(tmp_path: Path, written: str) -> None:
    """``burst: off`` (as the README documents it), or false/no, turns burst folding off."""
    subs = SUBS.replace('      - "console://"\n', f'      - "console://"\n    burst: {written}\n')
    config = load_config(write(tmp_path, subs=subs), {})
    assert config.subscribers["desk"].pacing.burst_count is None


def test_burst_on_keeps_the_default(tmp_path: Path) -> None:
    """``burst: on`` (or true) is the default rule, 5 alerts in 60 s."""
    subs = SUBS.replace('      - "console://"\n', '      - "console://"\n    burst: on\n')
    pacing = load_config(write(tmp_path, subs=subs), {}).subscribers["desk"].pacing
    assert (pacing.burst_count, pacing.burst_within) == (5, 60.0)


def test_norway_in_regions_yaml_is_norway(tmp_path: Path) -> None:
    """An unquoted ``NO`` in regions.yaml is Norway's code, not YAML 1.1's false."""
    directory = write(tmp_path)
    (directory / "regions.yaml").write_text("Europe: [NO, SE, FR]\nMENA: [LB, PS]\n", encoding="utf-8")
    taxonomy = load_config(directory, {}).taxonomy
    assert taxonomy.countries("Europe") == frozenset({"NO", "SE", "FR"})


def test_a_boolean_in_a_text_field_names_the_fix(tmp_path: Path) -> None:
    """A bare true/false where text is expected is an error telling to quote it."""
    subs = SUBS.replace("keywords: [gaza, rafah]", "keywords: [gaza, true]  # HERE")
    [problem] = problems_of(write(tmp_path, subs=subs))
    assert (Path(problem.file).name, problem.line) == ("subscriptions.yaml", marked_line(subs))
    assert "true is read as a boolean: quote it ('true')" in problem.message


def test_an_empty_file_is_an_error(tmp_path: Path) -> None:
    """An emptied subscriptions.yaml (or feeds.yaml) is an error, never a config with nothing in it."""
    for feeds, subs in ((FEEDS, ""), ("\n# all gone\n", SUBS)):
        problems = problems_of(write(tmp_path / str(len(subs)), feeds, subs))
        assert len(problems) == 1 and "empty" in problems[0].message


def test_every_problem_of_a_file_in_one_run(tmp_path: Path) -> None:
    """A schema error (a bad priority) does not hide the unknown subscriber and feed of other entries."""
    subs = SUBS + (
        "  - name: lebanon\n    subscribers: [desk]\n    keywords: [beirut]\n    priority: urgent  # HERE\n"
        "  - name: iran\n    subscribers: [dsk]\n    keywords: [tehran]\n    feeds: [alpah]\n"
    )
    problems = problems_of(write(tmp_path, subs=subs))
    messages = [p.message for p in problems]
    assert len(problems) == 3, messages
    assert problems[0].line == marked_line(subs) and "priority" in messages[0]
    assert messages[1] == "unknown subscriber 'dsk' (did you mean 'desk'?)"
    assert messages[2] == "unknown feed 'alpah' (did you mean 'alpha'?)"


def test_suggestions_for_unknown_keys_and_regions(tmp_path: Path) -> None:
    """An unknown key or region comes with the nearest known one."""
    feeds = FEEDS.replace("region: MENA", "region: MENAA")
    subs = SUBS.replace("keywords: [gaza, rafah]", "keywrods: [gaza, rafah]")
    messages = sorted(p.message for p in problems_of(write(tmp_path, feeds, subs)))
    assert any(m == "unknown key 'keywrods' (did you mean 'keywords'?)" for m in messages), messages
    assert any("unknown region 'MENAA' (did you mean 'MENA'?)" in m for m in messages), messages


@pytest.mark.parametrize(
    ("written", "seconds"), [("6h", 6 * 3600.0), ("off", 0.0), ("never", 0.0), ("false", 0.0)]
)
def test_a_feed_sets_its_own_silence(tmp_path: Path, written: str, seconds: float) -> None:
    """``silence:`` bounds how long a feed may go without items before ops hear of it (off: never)."""
    feeds = FEEDS.replace("    every: 30s\n", f"    every: 30s\n    silence: {written}\n")
    config = load_config(write(tmp_path, feeds), {})
    assert config.feeds["alpha"].silence == seconds and config.feeds["beta"].silence is None


def test_a_silence_under_a_minute_is_refused(tmp_path: Path) -> None:
    """A silence of seconds would flag every quiet minute: it is an error naming the minimum."""
    feeds = FEEDS.replace("    every: 30s\n", "    every: 30s\n    silence: 10s  # HERE\n")
    [problem] = problems_of(write(tmp_path, feeds))
    assert problem.line == marked_line(feeds) and "1-minute minimum" in problem.message
