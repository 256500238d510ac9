"""Checks that span entries of the configuration: unique names, known references, usable URLs, templates,
queries and terms. Each problem names its file and line, with the nearest known name when one is close.

They read the documents as written, not only the entries that passed the schema, so one run reports
every problem of a file: a bad ``priority`` does not hide an unknown subscriber in the same entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from alerts.config.schema import SubscriptionSpec
from alerts.delivery import targets
from alerts.delivery.templates import compile_template
from alerts.errors import Problem
from alerts.matching import query
from alerts.matching.index import regex_problem
from alerts.models import REGIONS, region_named
from alerts.text import did_you_mean, normalise
from alerts.yamlsource import Document

Path_ = tuple[str | int, ...]
_SUBSCRIPTION_KEYS = frozenset(SubscriptionSpec.model_fields)


def cross_check(feeds_doc: Document, subs_doc: Document, channels: bool = True) -> list[Problem]:
    """Every problem that spans entries (URLs are checked unless not ``channels``)."""
    feeds = _entries(feeds_doc, "feeds")
    subscribers = _entries(subs_doc, "subscribers")
    subscriptions = _entries(subs_doc, "subscriptions")
    problems = [
        *_duplicates(feeds_doc, "feeds", feeds),
        *_duplicates(subs_doc, "subscribers", subscribers),
        *_duplicates(subs_doc, "subscriptions", subscriptions),
    ]
    feed_names = {name for _, entry in feeds if isinstance(name := entry.get("name"), str)}
    subscriber_names = {name for _, entry in subscribers if isinstance(name := entry.get("name"), str)}
    for index, subscriber in subscribers:
        problems += _subscriber_problems(subs_doc, ("subscribers", index), subscriber, channels)
    ops = subs_doc.data.get("ops") if isinstance(subs_doc.data, dict) else None
    for index, name in _strings(ops):
        if name not in subscriber_names:
            hint = did_you_mean(name, subscriber_names)
            problems.append(subs_doc.problem(("ops", index), f"ops: unknown subscriber {name!r}{hint}"))
    for index, sub in subscriptions:
        problems += _subscription_problems(
            subs_doc, ("subscriptions", index), sub, feed_names, subscriber_names
        )
    return problems


def _subscriber_problems(
    doc: Document, here: Path_, subscriber: dict[str, Any], channels: bool
) -> list[Problem]:
    name = subscriber.get("name")
    problems = []
    for position, url in _strings(subscriber.get("notify")) if channels else ():
        if problem := targets.url_problem(url):
            problems.append(doc.problem((*here, "notify", position), f"subscriber {name!r}: {problem}"))
    fallback = subscriber.get("fallback")
    if channels and isinstance(fallback, str) and (problem := targets.url_problem(fallback)):
        problems.append(doc.problem((*here, "fallback"), f"subscriber {name!r}: fallback: {problem}"))
    templates = subscriber.get("templates")
    for kind, spec in templates.items() if isinstance(templates, dict) else ():
        if not isinstance(spec, dict):
            continue
        title, body = spec.get("title"), spec.get("body")
        try:
            compile_template(
                str(kind), title if isinstance(title, str) else None, body if isinstance(body, str) else None
            )
        except ValueError as exc:
            problems.append(doc.problem((*here, "templates", kind), f"subscriber {name!r}: {exc}"))
    return problems


def _subscription_problems(
    doc: Document, here: Path_, sub: dict[str, Any], feed_names: set[str], subscriber_names: set[str]
) -> list[Problem]:
    problems = []
    typo = not set(sub) <= _SUBSCRIPTION_KEYS  # an unknown key is reported by the schema, with the fix
    if not typo and not any(sub.get(key) for key in ("keywords", "all", "regions", "query", "regex")):
        problems.append(
            doc.problem(
                here, f"subscription {sub.get('name')!r} needs keywords, all, query, regex or regions"
            )
        )
    for position, name in _strings(sub.get("subscribers")):
        if name not in subscriber_names:
            hint = did_you_mean(name, subscriber_names)
            problems.append(
                doc.problem((*here, "subscribers", position), f"unknown subscriber {name!r}{hint}")
            )
    for position, name in _strings(sub.get("feeds")):
        if name not in feed_names:
            hint = did_you_mean(name, feed_names)
            problems.append(doc.problem((*here, "feeds", position), f"unknown feed {name!r}{hint}"))
    for field_name in ("keywords", "all", "exclude"):
        raw = sub.get(field_name)
        terms = (
            [(field_name, raw)] if isinstance(raw, str) else [((field_name, i), t) for i, t in _strings(raw)]
        )
        for at, term in terms:
            if term.strip() and not normalise(term):
                path = (*here, *(at if isinstance(at, tuple) else (at,)))
                problems.append(doc.problem(path, f"term {term!r} has no letters or digits"))
    text = sub.get("query")
    if isinstance(text, str) and text.strip():
        problems += _query_problems(doc, (*here, "query"), text.strip(), feed_names)
    pattern = sub.get("regex")
    if isinstance(pattern, str) and pattern.strip() and (problem := regex_problem(pattern.strip())):
        problems.append(doc.problem((*here, "regex"), f"regex: {problem}"))
    return problems


def _query_problems(doc: Document, at: Path_, text: str, feed_names: set[str]) -> list[Problem]:
    """Syntax errors (file:line:column) and unknown names in ``query:``."""
    try:
        tree = query.parse_query(text)
    except query.QuerySyntaxError as exc:
        return [doc.problem_at(at, exc.column - 1, f"query: {exc.message}")]
    problems = []
    for meta in _metas(tree):
        if meta.field == "feed" and meta.value not in feed_names:
            hint = did_you_mean(meta.value, feed_names)
            problems.append(doc.problem(at, f"query: unknown feed {meta.value!r}{hint}"))
        if meta.field == "region" and region_named(meta.value) is None:
            hint = did_you_mean(meta.value, REGIONS)
            problems.append(doc.problem(at, f"query: unknown region {meta.value!r}{hint}"))
    return problems


def _metas(node: query.Node) -> list[query.Meta]:
    if isinstance(node, query.Meta):
        return [node]
    if isinstance(node, query.And | query.Or):
        return [meta for child in node.children for meta in _metas(child)]
    if isinstance(node, query.Not):
        return _metas(node.child)
    return []


def _entries(doc: Document, section: str) -> list[tuple[int, dict[str, Any]]]:
    """(index, entry) of each mapping listed under ``section``, as written."""
    listed = doc.data.get(section) if isinstance(doc.data, dict) else None
    return (
        [(i, entry) for i, entry in enumerate(listed or []) if isinstance(entry, dict)]
        if isinstance(listed, list)
        else []
    )


def _strings(value: Any) -> Iterator[tuple[int, str]]:
    """(position, item) of each string in a list."""
    for position, item in enumerate(value if isinstance(value, list) else ()):
        if isinstance(item, str):
            yield position, item


def _duplicates(doc: Document, section: str, entries: list[tuple[int, dict[str, Any]]]) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for index, entry in entries:
        name = entry.get("name")
        if not isinstance(name, str):
            continue
        if name in seen:
            problems.append(doc.problem((section, index, "name"), f"duplicate {section[:-1]} name {name!r}"))
        seen.add(name)
    return problems
