"""The schema of feeds.yaml and subscriptions.yaml (pydantic models), with the checks of single fields."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from alerts.config.durations import parse_duration
from alerts.delivery import pacing
from alerts.ingest.html import Selectors
from alerts.ingest.jsonapi import JsonMapping
from alerts.ingest.presets import PRESETS
from alerts.models import REGIONS, Feed, region_named
from alerts.text import did_you_mean

MIN_INTERVAL = 1.0
MAX_INTERVAL = 7 * 86400.0


def _duration(value: object) -> float:
    return parse_duration(value)


def _region(value: object) -> str:
    region = region_named(str(value))
    if region is None:
        raise ValueError(
            f"unknown region {value!r}{did_you_mean(str(value), REGIONS)} (known: {', '.join(REGIONS)})"
        )
    return region


def _switch_off(value: object) -> object:
    """``off``/``false`` (a switch turned off) as ``"off"``; ``on``/``true`` as the default settings."""
    if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "false", "no")):
        return "off"
    if value is True or (isinstance(value, str) and value.strip().lower() in ("on", "true", "yes")):
        return {}
    return value


def _silence(value: object) -> float | None:
    """``off``/``never``/``false``/0 -> 0 (never judged silent); else a duration of at least a minute."""
    if value is None:
        return None
    if value is False or (
        isinstance(value, str) and value.strip().lower() in ("off", "never", "false", "no")
    ):
        return 0.0
    seconds = parse_duration(value)
    if 0 < seconds < 60:
        raise ValueError(f"silence {seconds:g}s is below the 1-minute minimum (or off)")
    return seconds


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
    silence: Annotated[float | None, BeforeValidator(_silence)] = None
    allow_private: bool = False
    allow_insecure_hub: bool = False

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
            name = str(data["preset"])
            raise ValueError(
                f"unknown preset {name!r}{did_you_mean(name, PRESETS)} (known: {', '.join(sorted(PRESETS))})"
            )
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
            Selectors.parse(self.selectors)
        if fmt == "json":
            if not self.json_map:
                raise ValueError("format json needs json: {items: ..., title: ...}")
            JsonMapping.parse(self.json_map)
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
            silence=self.silence,
            allow_private=self.allow_private,
            allow_insecure_hub=self.allow_insecure_hub,
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
    burst: Annotated[BurstSpec | Literal["off"], BeforeValidator(_switch_off)] = Field(
        default_factory=lambda: BurstSpec()
    )

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
