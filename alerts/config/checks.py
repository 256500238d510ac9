"""Checks that span entries of the configuration: unique names, known references, usable URLs, templates,
queries and terms. Each problem names its file and line."""

from __future__ import annotations

from alerts.config.schema import FeedsFile, SubscriptionsFile, SubscriptionSpec
from alerts.delivery import targets
from alerts.delivery.templates import compile_template
from alerts.errors import Problem
from alerts.matching import query
from alerts.matching.index import regex_problem
from alerts.models import region_named
from alerts.text import normalise
from alerts.yamlsource import Document


def cross_check(
    feeds_doc: Document,
    feeds_file: FeedsFile,
    subs_doc: Document,
    subs_file: SubscriptionsFile,
    channels: bool = True,
) -> list[Problem]:
    """Checks that span entries: unique names, known references, usable URLs (unless not ``channels``)
    and terms."""
    problems: list[Problem] = []
    problems += _duplicates(feeds_doc, "feeds", [feed.name for feed in feeds_file.feeds])
    problems += _duplicates(subs_doc, "subscribers", [s.name for s in subs_file.subscribers])
    problems += _duplicates(subs_doc, "subscriptions", [s.name for s in subs_file.subscriptions])
    feed_names = {feed.name for feed in feeds_file.feeds}
    subscriber_names = {s.name for s in subs_file.subscribers}
    for index, subscriber in enumerate(subs_file.subscribers):
        for position, url in enumerate(subscriber.notify if channels else ()):
            problem = targets.url_problem(url)
            if problem:
                path = ("subscribers", index, "notify", position)
                problems.append(subs_doc.problem(path, f"subscriber {subscriber.name!r}: {problem}"))
        for kind, spec in subscriber.templates.items():
            try:
                compile_template(kind, spec.title, spec.body)
            except ValueError as exc:
                at: tuple[str | int, ...] = ("subscribers", index, "templates", kind)
                problems.append(subs_doc.problem(at, f"subscriber {subscriber.name!r}: {exc}"))
        if channels and subscriber.fallback and (problem := targets.url_problem(subscriber.fallback)):
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


def _duplicates(doc: Document, section: str, names: list[str]) -> list[Problem]:
    seen: set[str] = set()
    problems = []
    for index, name in enumerate(names):
        if name in seen:
            problems.append(doc.problem((section, index, "name"), f"duplicate {section[:-1]} name {name!r}"))
        seen.add(name)
    return problems
