"""feeds.yaml + subscriptions.yaml (+ an optional regions.yaml) -> a validated :class:`Config`, or a
ConfigError naming file:line for every problem."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args, get_origin

from pydantic import BaseModel, ValidationError

from alerts.config.checks import cross_check
from alerts.config.schema import FeedsFile, SubscriptionsFile, SubscriptionSpec
from alerts.errors import ConfigError, Problem
from alerts.matching.geo import RegionTaxonomy
from alerts.models import Feed, Subscriber, Subscription
from alerts.text import did_you_mean
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
    problems = [*feeds_doc.problems, *subs_doc.problems, *_empty(feeds_doc), *_empty(subs_doc)]
    feeds_file = _validate(feeds_doc, FeedsFile, problems)
    subs_file = _validate(subs_doc, SubscriptionsFile, problems)
    problems += cross_check(feeds_doc, subs_doc, channels)
    regions_path = directory / REGIONS_FILE
    try:
        taxonomy = RegionTaxonomy.load(regions_path if regions_path.exists() else None)
    except ConfigError as exc:
        problems += exc.problems
    if problems or feeds_file is None or subs_file is None:
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


def _empty(doc: Document) -> list[Problem]:
    """An empty file is an error: an editor that truncates before it writes must not empty the service."""
    if doc.data is None and not doc.problems:
        return [Problem(doc.file, 1, "the file is empty (write at least its top-level key)")]
    return []


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
    """``model`` from the document, or None after adding its problems. Each entry of a list of models
    (feeds, subscribers, subscriptions) is validated on its own, so every bad entry is reported."""
    if doc.data is None:
        return None
    if not isinstance(doc.data, dict):
        problems.append(doc.problem((), f"expected a mapping with {', '.join(model.model_fields)}"))
        return None
    data, ok = dict(doc.data), True
    for name, entry_model in _entry_models(model).items():
        listed = data.get(name)
        if not isinstance(listed, list):
            continue
        valid = []
        for index, entry in enumerate(listed):
            try:
                valid.append(entry_model.model_validate(entry))
            except ValidationError as exc:
                ok = False
                _report(doc, (name, index), entry_model, exc, problems)
        data[name] = valid
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        _report(doc, (), model, exc, problems)
        return None
    return result if ok else None


def _entry_models(model: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """The fields of ``model`` that are lists of models, with the model of their entries."""
    found = {}
    for name, info in model.model_fields.items():
        args = get_args(info.annotation)
        if (
            get_origin(info.annotation) is list
            and args
            and isinstance(args[0], type)
            and issubclass(args[0], BaseModel)
        ):
            found[name] = args[0]
    return found


def _report(
    doc: Document, at: tuple[Any, ...], model: type[BaseModel], exc: ValidationError, problems: list[Problem]
) -> None:
    for error in exc.errors():
        location = (*at, *error["loc"])
        problems.append(
            doc.problem(location, _describe(doc, location, _keys_at(model, tuple(error["loc"])), error))
        )


def _keys_at(model: type[BaseModel], location: tuple[Any, ...]) -> list[str]:
    """The keys allowed where the last part of ``location`` stands (for "did you mean")."""
    current: Any = model
    for part in location[:-1]:
        info = current.model_fields.get(part) if isinstance(part, str) else None
        if info is None:
            continue
        nested = [arg for arg in (info.annotation, *get_args(info.annotation)) if isinstance(arg, type)]
        nested += [a for arg in get_args(info.annotation) for a in get_args(arg) if isinstance(a, type)]
        current = next((n for n in nested if issubclass(n, BaseModel)), current)
    fields = current.model_fields
    return [*fields, *(info.alias for info in fields.values() if info.alias)]


def _describe(doc: Document, location: tuple[Any, ...], keys: list[str], error: Any) -> str:
    where = ".".join(str(part) for part in location) or "document"
    if error["type"] == "extra_forbidden":
        return f"unknown key {location[-1]!r}{did_you_mean(str(location[-1]), keys)}"
    if error["type"] == "missing":
        return f"{where}: required"
    written = doc.booleans.get(location)
    if written is not None and error["type"] in ("string_type", "literal_error", "union_tag_invalid"):
        return f"{where}: {written} is read as a boolean: quote it ('{written}') to mean the text"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{where}: {message}"
