"""feeds.yaml + subscriptions.yaml (+ an optional regions.yaml) -> a validated :class:`Config`, or a
ConfigError naming file:line for every problem."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from alerts.config.checks import cross_check
from alerts.config.schema import FeedsFile, SubscriptionsFile, SubscriptionSpec
from alerts.errors import ConfigError, Problem
from alerts.matching.geo import RegionTaxonomy
from alerts.models import Feed, Subscriber, Subscription
from alerts.yamlsource import Document, load

FEEDS_FILE = "feeds.yaml"
SUBSCRIPTIONS_FILE = "subscriptions.yaml"
REGIONS_FILE = "regions.yaml"  # optional: overrides the packaged region taxonomy
_M = TypeVar("_M", bound=BaseModel)


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


def load_config(directory: Path, env: Mapping[str, str] | None = None, channels: bool = True) -> Config:
    """Load and validate the files of ``directory``; raise ConfigError listing every problem found.

    ``${NAME}`` in the YAML is read from ``env`` (default: the process environment). Without
    ``channels`` the notify URLs are not checked (``alerts explain`` never sends)."""
    feeds_doc = load(directory / FEEDS_FILE, env)
    subs_doc = load(directory / SUBSCRIPTIONS_FILE, env)
    problems = [*feeds_doc.problems, *subs_doc.problems]
    feeds_file = _validate(feeds_doc, FeedsFile, problems)
    subs_file = _validate(subs_doc, SubscriptionsFile, problems)
    if feeds_file is None or subs_file is None:
        raise ConfigError(problems)
    problems += cross_check(feeds_doc, feeds_file, subs_doc, subs_file, channels)
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
