"""Subscriptions -> an Aho-Corasick index; item -> the subscriptions it matches. No I/O.

Every normalised term of every subscription goes into one automaton as `` term `` (space-padded,
so only whole words and whole phrases match). One scan of an item's text finds every term
present; only subscriptions holding one of those terms (plus region-only subscriptions) are
then evaluated exactly, so the cost per item grows with the candidates, not the subscriptions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import ahocorasick

from alerts.models import FeedItem, Match, Subscription
from alerts.text import normalise

_FIELD_BREAK = " | "  # never produced by normalise(): a phrase cannot span title and summary


@dataclass(frozen=True, slots=True)
class _Compiled:
    subscription: Subscription
    keywords: frozenset[str]
    all: frozenset[str]
    exclude: frozenset[str]
    regions: frozenset[str]
    feeds: frozenset[str]


class Matcher:
    """An immutable index over a set of subscriptions."""

    def __init__(self, subscriptions: Iterable[Subscription]) -> None:
        self._compiled: list[_Compiled] = []
        by_term: dict[str, list[int]] = defaultdict(list)
        self._always: list[int] = []
        for index, sub in enumerate(subscriptions):
            compiled = _Compiled(
                subscription=sub,
                keywords=_terms(sub.keywords),
                all=_terms(sub.all),
                exclude=_terms(sub.exclude),
                regions=frozenset(sub.regions),
                feeds=frozenset(sub.feeds),
            )
            self._compiled.append(compiled)
            positive = compiled.keywords | compiled.all
            for term in positive:
                by_term[term].append(index)
            if not positive:
                self._always.append(index)
        self._automaton = ahocorasick.Automaton()
        for term in {*by_term, *(t for c in self._compiled for t in c.exclude)}:
            self._automaton.add_word(f" {term} ", term)
        if len(self._automaton):
            self._automaton.make_automaton()
        self._by_term = dict(by_term)

    def __len__(self) -> int:
        return len(self._compiled)

    def terms_in(self, item: FeedItem) -> set[str]:
        """Every indexed term present in the item's title, summary or categories."""
        if not len(self._automaton):
            return set()
        fields = (item.title, item.summary, *item.categories)
        text = " " + _FIELD_BREAK.join(normalise(part) for part in fields if part) + " "
        return {term for _, term in self._automaton.iter(text)}

    def match(self, item: FeedItem, feed: str, regions: Iterable[str] = ()) -> list[Match]:
        """The subscriptions ``item`` (from ``feed``, in ``regions``) satisfies, in config order."""
        found = self.terms_in(item)
        item_regions = frozenset(regions)
        candidates = set(self._always)
        for term in found:
            candidates.update(self._by_term.get(term, ()))
        matches = []
        for index in sorted(candidates):
            compiled = self._compiled[index]
            terms = _evaluate(compiled, found, feed, item_regions)
            if terms is not None:
                sub = compiled.subscription
                matches.append(Match(sub.name, sub.subscribers, terms))
        return matches


def _terms(raw: Iterable[str]) -> frozenset[str]:
    return frozenset(term for term in (normalise(value) for value in raw) if term)


def _evaluate(
    compiled: _Compiled, found: set[str], feed: str, regions: frozenset[str]
) -> tuple[str, ...] | None:
    """The terms that made ``compiled`` match, or None when it does not."""
    if compiled.feeds and feed not in compiled.feeds:
        return None
    if compiled.regions and not (compiled.regions & regions):
        return None
    if compiled.exclude & found:
        return None
    if not compiled.all <= found:
        return None
    hits = compiled.keywords & found
    if compiled.keywords and not hits:
        return None
    why = sorted(hits | compiled.all)
    why += [f"region:{region}" for region in sorted(compiled.regions & regions)]
    return tuple(why)
