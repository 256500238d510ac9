"""feeds.yaml + subscriptions.yaml -> a validated :class:`Config`, or a ConfigError naming file:line."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import re2
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from alerts.delivery import channels, pacing
from alerts.delivery.templates import compile_template
from alerts.errors import ConfigError, Problem
from alerts.ingest import sources
from alerts.ingest.html import PRESETS
from alerts.matching import query
from alerts.matching.geo import RegionTaxonomy
from alerts.models import REGIONS, Feed, Subscriber, Subscription, region_named
from alerts.text import normalise
from alerts.yamlsource import Document, load

FEEDS_FILE = "feeds.yaml"
SUBSCRIPTIONS_FILE = "subscriptions.yaml"
REGIONS_FILE = "regions.yaml"  # optional: overrides the packaged region taxonomy
DEFAULT_DIR = "./config"
MIN_INTERVAL = 1.0
MAX_INTERVAL = 7 * 86400.0
_M = TypeVar("_M", bound=BaseModel)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from ``500ms``, ``30s``, ``5m``, ``1h``, ``2d`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"malformed duration {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"malformed duration {value!r} (use e.g. 500ms, 30s, 5m, 1h)")
    return float(match.group(1)) * _UNIT[match.group(2)]


def _duration(value: object) -> float:
    return parse_duration(value)


def _region(value: object) -> str:
    region = region_named(str(value))
    if region is None:
        raise ValueError(f"unknown region {value!r} (known: {', '.join(REGIONS)})")
    return region


def _term_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


def _every(value: object) -> float | str:
    return "auto" if value == "auto" else parse_duration(value)


Duration = Annotated[float, BeforeValidator(_duration)]
Every = Annotated[float | str, BeforeValidator(_every)]
Region = Annotated[str, BeforeValidator(_region)]
Terms = Annotated[list[Annotated[str, Field(min_length=1)]], BeforeValidator(_term_list)]
Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]*$", max_length=64)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True, populate_by_name=True)


class FeedSpec(_Strict):
    """One entry of feeds.yaml."""

    name: Name
    url: str | None = None
    preset: str | None = None
    format: Literal["feed", "html", "json"] | None = None
    selectors: dict[str, str] | None = None
    json_map: dict[str, str] | None = Field(default=None, alias="json")
    enrich: bool = False
    enrich_budget: Duration = 2.0
    every: Every = 60.0
    min_every: Duration = 30.0
    max_every: Duration = 900.0
    region: Region | None = None
    backfill: int = Field(default=0, ge=0)
    lang: Annotated[str, Field(pattern=r"^[a-z]{2,3}$")] | None = None

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not re.match(r"^https?://[^/\s]+", url, re.IGNORECASE):
            raise ValueError(f"malformed URL {url!r}: only http:// and https:// feeds are supported")
        return url

    @field_validator("every", "min_every", "max_every")
    @classmethod
    def _min_interval(cls, every: float | str) -> float | str:
        if every == "auto":
            return every
        assert isinstance(every, float)
        if not math.isfinite(every):
            raise ValueError(f"poll interval {every!r} is not a number of seconds")
        if every < MIN_INTERVAL:
            raise ValueError(f"poll interval {every:g}s is below the {MIN_INTERVAL:g}s minimum")
        if every > MAX_INTERVAL:
            raise ValueError(f"poll interval {every:g}s is above the {MAX_INTERVAL / 86400:g}-day maximum")
        return every

    @model_validator(mode="after")
    def _bounds(self) -> FeedSpec:
        if self.min_every > self.max_every:
            raise ValueError(f"min_every {self.min_every:g}s is above max_every {self.max_every:g}s")
        return self

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        """A preset's URL, format, selectors and language, under what the entry itself sets."""
        if not isinstance(data, dict) or data.get("preset") is None:
            return data
        preset = PRESETS.get(str(data["preset"]))
        if preset is None:
            raise ValueError(f"unknown preset {data['preset']!r} (known: {', '.join(sorted(PRESETS))})")
        selectors = {k: v for k, v in dataclasses.asdict(preset.selectors).items() if v}
        merged = {"url": preset.url, "format": preset.format, "lang": preset.lang, **data}
        if preset.region and "region" not in data:
            merged["region"] = preset.region
        merged["selectors"] = {**selectors, **(data.get("selectors") or {})}
        return merged

    @property
    def source_format(self) -> str:
        """The format given, else the one its keys imply."""
        return self.format or ("html" if self.selectors else "json" if self.json_map else "feed")

    @model_validator(mode="after")
    def _source(self) -> FeedSpec:
        """Check that the format has what it needs."""
        if self.url is None:
            raise ValueError("url: required (or a preset)")
        fmt = self.source_format
        if fmt == "html":
            if not self.selectors:
                raise ValueError("format html needs selectors: {item: ...}")
            sources.selectors(tuple(sorted(self.selectors.items())))
        if fmt == "json":
            if not self.json_map:
                raise ValueError("format json needs json: {items: ..., title: ...}")
            sources.json_mapping(tuple(sorted(self.json_map.items())))
        return self

    def to_feed(self) -> Feed:
        """The value object the pipeline uses."""
        adaptive = self.every == "auto"
        every = min(max(60.0, self.min_every), self.max_every) if adaptive else float(self.every)
        return Feed(
            name=self.name,
            url=self.url or "",
            every=every,
            region=self.region,
            backfill=self.backfill,
            lang=self.lang,
            adaptive=adaptive,
            min_every=self.min_every,
            max_every=self.max_every,
            format=self.source_format,
            selectors=tuple(sorted((self.selectors or {}).items())),
            json_map=tuple(sorted((self.json_map or {}).items())),
            enrich=self.enrich,
            enrich_budget=self.enrich_budget,
        )


class FeedsFile(_Strict):
    """The whole of feeds.yaml."""

    feeds: list[FeedSpec] = Field(default_factory=list)


class TemplateSpec(_Strict):
    """A subscriber's own title/body for one channel kind (sandboxed Jinja2)."""

    title: str | None = None
    body: str | None = None


class BurstSpec(_Strict):
    """More than ``count`` alerts within ``within`` are folded into one digest."""

    count: Annotated[int, Field(ge=1)] = 5
    within: Duration = 60.0


class SubscriberSpec(_Strict):
    """One entry under ``subscribers:``."""

    name: Annotated[str, Field(min_length=1)]
    notify: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    fallback: Annotated[str, Field(min_length=1)] | None = None
    timezone: str = "UTC"
    quiet_hours: str | None = None
    max_per_hour: Annotated[int, Field(ge=1)] | None = None
    digest: str | None = None
    burst: BurstSpec | Literal["off"] = Field(default_factory=lambda: BurstSpec())

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r} (use e.g. Europe/Madrid)") from None
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet(cls, value: str | None) -> str | None:
        if value is not None:
            pacing.quiet_hours(value)
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        return None if value is None else pacing.digest_schedule(value)

    def to_pacing(self) -> pacing.Pacing:
        """The subscriber's pacing settings."""
        burst = self.burst if isinstance(self.burst, BurstSpec) else None
        return pacing.Pacing(
            timezone=self.timezone,
            quiet_hours=pacing.quiet_hours(self.quiet_hours) if self.quiet_hours else None,
            max_per_hour=self.max_per_hour,
            digest=self.digest,
            burst_count=burst.count if burst else None,
            burst_within=burst.within if burst else 60.0,
        )

    templates: dict[Literal["telegram", "email", "push", "webhook", "console", "other"], TemplateSpec] = (
        Field(default_factory=dict)
    )


class SubscriptionSpec(_Strict):
    """One entry under ``subscriptions:``."""

    name: Annotated[str, Field(min_length=1)]
    subscribers: Annotated[list[str], Field(min_length=1)]
    keywords: Terms = Field(default_factory=list)
    all: Terms = Field(default_factory=list)
    exclude: Terms = Field(default_factory=list)
    regions: list[Region] = Field(default_factory=list)
    feeds: list[str] = Field(default_factory=list)
    query: Annotated[str, Field(min_length=1)] | None = None
    regex: Annotated[str, Field(min_length=1)] | None = None
    stem: bool = False
    priority: Literal["flash", "high", "normal", "low"] = "normal"


class SubscriptionsFile(_Strict):
    """The whole of subscriptions.yaml."""

    subscribers: list[SubscriberSpec] = Field(default_factory=list)
    subscriptions: list[SubscriptionSpec] = Field(default_factory=list)
    ops: list[str] = Field(default_factory=list)  # subscribers told when a feed turns unhealthy


@dataclass(frozen=True)
class Config:
    """A validated configuration: what to poll, who subscribes to what, and where to send it."""

    directory: Path
    feeds: Mapping[str, Feed]
    subscribers: Mapping[str, Subscriber]
    subscriptions: tuple[Subscription, ...]
    secrets: frozenset[str]
    fingerprint: str
    taxonomy: RegionTaxonomy
    ops: tuple[str, ...] = ()


def config_dir(env: Mapping[str, str] | None = None) -> Path:
    """The configuration directory named by ``ALERTS_CONFIG`` (default ``./config``)."""
    env = os.environ if env is None else env
    return Path(env.get("ALERTS_CONFIG") or DEFAULT_DIR)


def load_config(directory: Path | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load and validate both files; raise ConfigError listing every problem found."""
    directory = config_dir(env) if directory is None else directory
    feeds_doc = load(directory / FEEDS_FILE, env)
    subs_doc = load(directory / SUBSCRIPTIONS_FILE, env)
    problems = [*feeds_doc.problems, *subs_doc.problems]
    feeds_file = _validate(feeds_doc, FeedsFile, problems)
    subs_file = _validate(subs_doc, SubscriptionsFile, problems)
    if feeds_file is None or subs_file is None:
        raise ConfigError(problems)
    problems += _cross_check(feeds_doc, feeds_file, subs_doc, subs_file)
    regions_path = directory / REGIONS_FILE
    try:
        taxonomy = RegionTaxonomy.load(regions_path if regions_path.exists() else None)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        raise ConfigError(problems)
    digest = hashlib.sha256()
    digest.update(feeds_file.model_dump_json().encode())
    digest.update(subs_file.model_dump_json().encode())
    if regions_path.exists():
        digest.update(regions_path.read_bytes())
    return Config(
        directory=directory,
        feeds={spec.name: spec.to_feed() for spec in feeds_file.feeds},
        subscribers={
            spec.name: Subscriber(
                name=spec.name,
                notify=tuple(spec.notify),
                fallback=spec.fallback,
                templates=tuple((kind, t.title, t.body) for kind, t in spec.templates.items()),
                pacing=spec.to_pacing(),
            )
            for spec in subs_file.subscribers
        },
        subscriptions=tuple(_subscription(spec) for spec in subs_file.subscriptions),
        secrets=frozenset(feeds_doc.secrets | subs_doc.secrets),
        fingerprint=digest.hexdigest()[:16],
        taxonomy=taxonomy,
        ops=tuple(subs_file.ops),
    )


def _subscription(spec: SubscriptionSpec) -> Subscription:
    return Subscription(
        name=spec.name,
        subscribers=tuple(spec.subscribers),
        keywords=tuple(spec.keywords),
        all=tuple(spec.all),
        exclude=tuple(spec.exclude),
        regions=tuple(spec.regions),
        feeds=tuple(spec.feeds),
        query=spec.query,
        regex=spec.regex,
        stem=spec.stem,
        priority=spec.priority,
    )


def _validate(doc: Document, model: type[_M], problems: list[Problem]) -> _M | None:
    if doc.data is None and doc.problems:
        return None
    try:
        return model.model_validate(doc.data if doc.data is not None else {})
    except ValidationError as exc:
        for error in exc.errors():
            location = tuple(error["loc"])
            problems.append(doc.problem(location, _describe(location, error)))
        return None


def _describe(location: tuple[Any, ...], error: Any) -> str:
    where = ".".join(str(part) for part in location) or "document"
    if error["type"] == "extra_forbidden":
        return f"unknown key {location[-1]!r}"
    if error["type"] == "missing":
        return f"{where}: required"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"


def _cross_check(
    feeds_doc: Document, feeds_file: FeedsFile, subs_doc: Document, subs_file: SubscriptionsFile
) -> list[Problem]:
    """Checks that span entries: unique names, known references, usable URLs and terms."""
    problems: list[Problem] = []
    problems += _duplicates(feeds_doc, "feeds", [feed.name for feed in feeds_file.feeds])
    problems += _duplicates(subs_doc, "subscribers", [s.name for s in subs_file.subscribers])
    problems += _duplicates(subs_doc, "subscriptions", [s.name for s in subs_file.subscriptions])
    feed_names = {feed.name for feed in feeds_file.feeds}
    subscriber_names = {s.name for s in subs_file.subscribers}
    for index, subscriber in enumerate(subs_file.subscribers):
        for position, url in enumerate(subscriber.notify):
            problem = channels.url_problem(url)
            if problem:
                path = ("subscribers", index, "notify", position)
                problems.append(subs_doc.problem(path, f"subscriber {subscriber.name!r}: {problem}"))
        for kind, spec in subscriber.templates.items():
            try:
                compile_template(kind, spec.title, spec.body)
            except ValueError as exc:
                at: tuple[str | int, ...] = ("subscribers", index, "templates", kind)
                problems.append(subs_doc.problem(at, f"subscriber {subscriber.name!r}: {exc}"))
        if subscriber.fallback and (problem := channels.url_problem(subscriber.fallback)):
            where = ("subscribers", index, "fallback")
            problems.append(subs_doc.problem(where, f"subscriber {subscriber.name!r}: fallback: {problem}"))
    for index, name in enumerate(subs_file.ops):
        if name not in subscriber_names:
            problems.append(subs_doc.problem(("ops", index), f"ops: unknown subscriber {name!r}"))
    for index, sub in enumerate(subs_file.subscriptions):
        here = ("subscriptions", index)
        if not (sub.keywords or sub.all or sub.regions or sub.query or sub.regex):
            problems.append(
                subs_doc.problem(
                    here, f"subscription {sub.name!r} needs keywords, all, query, regex or regions"
                )
            )
        problems += _query_problems(subs_doc, here, sub, feed_names)
        for position, name in enumerate(sub.subscribers):
            if name not in subscriber_names:
                path = (*here, "subscribers", position)
                problems.append(subs_doc.problem(path, f"unknown subscriber {name!r}"))
        for position, name in enumerate(sub.feeds):
            if name not in feed_names:
                problems.append(subs_doc.problem((*here, "feeds", position), f"unknown feed {name!r}"))
        for field_name in ("keywords", "all", "exclude"):
            for position, term in enumerate(getattr(sub, field_name)):
                if not normalise(term):
                    path = (*here, field_name, position)
                    problems.append(subs_doc.problem(path, f"term {term!r} has no letters or digits"))
    return problems


def _query_problems(
    doc: Document, here: tuple[str | int, ...], sub: SubscriptionSpec, feed_names: set[str]
) -> list[Problem]:
    """Syntax errors (file:line:column) and unknown names in ``query:``, and an invalid ``regex:``."""
    problems = []
    if sub.query:
        try:
            tree = query.parse_query(sub.query)
        except query.QuerySyntaxError as exc:
            problems.append(doc.problem_at((*here, "query"), exc.column - 1, f"query: {exc.message}"))
        else:
            for meta in _metas(tree):
                if meta.field == "feed" and meta.value not in feed_names:
                    problems.append(doc.problem((*here, "query"), f"query: unknown feed {meta.value!r}"))
                if meta.field == "region" and region_named(meta.value) is None:
                    problems.append(doc.problem((*here, "query"), f"query: unknown region {meta.value!r}"))
    if sub.regex:
        problem = regex_problem(sub.regex)
        if problem:
            problems.append(doc.problem((*here, "regex"), f"regex: {problem}"))
    return problems


def _metas(node: query.Node) -> list[query.Meta]:
    if isinstance(node, query.Meta):
        return [node]
    if isinstance(node, query.And | query.Or):
        return [meta for child in node.children for meta in _metas(child)]
    if isinstance(node, query.Not):
        return _metas(node.child)
    return []


def regex_problem(pattern: str) -> str | None:
    """Why RE2 (a linear-time engine: no catastrophic backtracking) rejects ``pattern``, or None."""
    try:
        re2.compile(pattern)
    except re2.error as exc:
        return str(exc) or "invalid pattern"
    return None


def _duplicates(doc: Document, section: str, names: list[str]) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for index, name in enumerate(names):
        if name in seen:
            problems.append(doc.problem((section, index, "name"), f"duplicate {section[:-1]} name {name!r}"))
        seen.add(name)
    return problems
