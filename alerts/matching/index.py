"""Subscriptions -> one inverted index; item -> the subscriptions it matches. No I/O.

Every subscription (keywords/all/exclude/regions/feeds, or a ``query:``) compiles to a boolean
tree. Its *anchors* are keys at least one of which an item must have for it to possibly match (a
term, or metadata such as ``region:MENA``), as Lucene Monitor pre-filters stored queries. Matching
an item looks each of its words up once, finds the terms present (phrases verified in place,
``hospital*`` prefixes, Arabic prefix-free forms, stems), and evaluates exactly only the
subscriptions anchored on what was found. The cost grows with the candidates, not with the
number of subscriptions; trees that cannot be anchored (a lone regex) are evaluated for every item.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import re2

from alerts.matching import query as q
from alerts.matching.analysis import Document, analyse, stem_keys
from alerts.models import FeedItem, Match, Subscription, region_named
from alerts.text import words

Occurrence = tuple[str, int, int]  # field, first word, last word


@dataclass(frozen=True, slots=True)
class _TermSpec:
    keys: tuple[frozenset[str], ...]  # acceptable keys per word (the last one is a prefix if ``prefix``)
    prefix: bool


@dataclass(frozen=True, slots=True)
class _T:
    term: int
    field: str | None
    raw: str


@dataclass(frozen=True, slots=True)
class _M:
    key: tuple[str, str]


@dataclass(frozen=True, slots=True)
class _Near:
    left: _T
    right: _T
    distance: int


@dataclass(frozen=True, slots=True)
class _Regex:
    pattern: object
    raw: str


@dataclass(frozen=True, slots=True)
class _And:
    children: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Or:
    children: tuple[_Node, ...]


@dataclass(frozen=True, slots=True)
class _Not:
    child: _Node


_Node = _T | _M | _Near | _Regex | _And | _Or | _Not


@dataclass(frozen=True, slots=True)
class _Compiled:
    subscription: Subscription
    tree: _Node
    simple: tuple[_T, ...]  # the unscoped terms of a plain OR: being a candidate is matching


class Matcher:
    """An immutable index over a set of subscriptions."""

    def __init__(self, subscriptions: Iterable[Subscription]) -> None:
        self._terms: list[_TermSpec] = []
        self._term_ids: dict[_TermSpec, int] = {}
        self._by_key: dict[str, list[int]] = defaultdict(list)
        self._by_prefix: dict[str, list[int]] = defaultdict(list)
        self._subs_by_term: dict[int, list[int]] = defaultdict(list)
        self._subs_by_meta: dict[tuple[str, str], list[int]] = defaultdict(list)
        self._always: list[int] = []
        self._compiled: list[_Compiled] = []
        self.stemming = False
        for index, subscription in enumerate(subscriptions):
            tree = self._compile_subscription(subscription)
            self._compiled.append(_Compiled(subscription, tree, _simple_terms(tree)))
            anchors = _anchors(tree)
            if anchors is None:
                self._always.append(index)
                continue
            for kind, value in anchors:
                if kind == "t":
                    self._subs_by_term[value].append(index)  # type: ignore[index]
                else:
                    self._subs_by_meta[value].append(index)  # type: ignore[index]
        self._prefix_lengths = sorted({len(p) for p in self._by_prefix})

    def __len__(self) -> int:
        return len(self._compiled)

    # -- compiling -------------------------------------------------------------------------------

    def _compile_subscription(self, sub: Subscription) -> _Node:
        stem = sub.stem
        self.stemming = self.stemming or stem
        parts: list[_Node] = []
        if sub.keywords:
            parts.append(_or([self._term(words(k), False, None, stem) for k in sub.keywords]))
        parts += [self._term(words(term), False, None, stem) for term in sub.all]
        if sub.query:
            parts.append(self._compile_query(q.parse_query(sub.query), stem, None))
        if sub.regex:
            parts.append(_Regex(re2.compile(sub.regex, options=_re2_options()), sub.regex))
        if sub.exclude:
            parts.append(_Not(_or([self._term(words(t), False, None, stem) for t in sub.exclude])))
        if sub.regions:
            parts.append(_or([_M(("region", region)) for region in sub.regions]))
        if sub.feeds:
            parts.append(_or([_M(("feed", feed)) for feed in sub.feeds]))
        return parts[0] if len(parts) == 1 else _And(tuple(parts))

    def _compile_query(self, node: q.Node, stem: bool, field: str | None) -> _Node:
        if isinstance(node, q.Term):
            return self._term(node.words, node.prefix, node.field or field, stem)
        if isinstance(node, q.Meta):
            return _M(_meta_key(node.field, node.value))
        if isinstance(node, q.Near):
            left = self._compile_query(node.left, stem, field)
            right = self._compile_query(node.right, stem, field)
            assert isinstance(left, _T) and isinstance(right, _T)
            return _Near(left, right, node.distance)
        if isinstance(node, q.And):
            return _And(tuple(self._compile_query(child, stem, field) for child in node.children))
        if isinstance(node, q.Or):
            return _Or(tuple(self._compile_query(child, stem, field) for child in node.children))
        return _Not(self._compile_query(node.child, stem, field))

    def _term(self, term_words: Sequence[str], prefix: bool, field: str | None, stem: bool) -> _T:
        keys = []
        for position, word in enumerate(term_words):
            last_prefix = prefix and position == len(term_words) - 1
            keys.append(frozenset({word} | (stem_keys(word) if stem and not last_prefix else set())))
        spec = _TermSpec(tuple(keys), prefix)
        term = self._term_ids.get(spec)
        if term is None:
            term = self._term_ids[spec] = len(self._terms)
            self._terms.append(spec)
            if prefix and len(keys) == 1:
                self._by_prefix[next(iter(keys[0]))].append(term)
            else:
                for key in keys[0]:
                    self._by_key[key].append(term)
        return _T(term, field, " ".join(term_words) + ("*" if prefix else ""))

    # -- matching --------------------------------------------------------------------------------

    def match(
        self, item: FeedItem, feed: str, regions: Iterable[str] = (), lang: str | None = None
    ) -> list[Match]:
        """The subscriptions ``item`` (from ``feed``, in ``regions``) satisfies, in config order."""
        doc = analyse(item, feed, regions, lang, self.stemming)
        found = self._find_terms(doc)
        candidates = set(self._always)
        for term in found:
            candidates.update(self._subs_by_term.get(term, ()))
        for key in doc.meta:
            candidates.update(self._subs_by_meta.get(key, ()))
        matches = []
        for index in sorted(candidates):
            compiled = self._compiled[index]
            why: list[str] = []
            if compiled.simple:
                why = [term.raw for term in compiled.simple if term.term in found]
            elif not _evaluate(compiled.tree, found, doc, why):
                continue
            sub = compiled.subscription
            evidence = tuple(why) if len(why) == 1 else tuple(sorted(set(why), key=_evidence_order))
            matches.append(Match(sub.name, sub.subscribers, evidence, sub.priority))
        return matches

    def _find_terms(self, doc: Document) -> dict[int, list[Occurrence]]:
        found: dict[int, list[Occurrence]] = {}
        for field, positions in doc.keys.items():
            field_words = doc.words[field]
            for start, word_keys in enumerate(positions):
                for key in word_keys:
                    for term in self._by_key.get(key, ()):
                        end = self._verify(self._terms[term], positions, field_words, start)
                        if end is not None:
                            _record(found, term, (field, start, end))
                if self._prefix_lengths:
                    word = field_words[start]
                    for length in self._prefix_lengths:
                        if length > len(word):
                            break
                        for term in self._by_prefix.get(word[:length], ()):
                            _record(found, term, (field, start, start))
        return found

    @staticmethod
    def _verify(
        spec: _TermSpec, positions: list[frozenset[str]], field_words: list[str], start: int
    ) -> int | None:
        """The last position of ``spec`` starting at ``start``, or None if the words do not follow."""
        end = start + len(spec.keys) - 1
        if end >= len(positions):
            return None
        for offset in range(1, len(spec.keys)):
            wanted = spec.keys[offset]
            if spec.prefix and offset == len(spec.keys) - 1:
                if not field_words[start + offset].startswith(next(iter(wanted))):
                    return None
            elif not wanted & positions[start + offset]:
                return None
        return end


def _record(found: dict[int, list[Occurrence]], term: int, occurrence: Occurrence) -> None:
    occurrences = found.setdefault(term, [])
    if occurrence not in occurrences:
        occurrences.append(occurrence)


def _evaluate(node: _Node, found: dict[int, list[Occurrence]], doc: Document, why: list[str]) -> bool:
    """Exact evaluation of one tree; appends the positive evidence to ``why``."""
    if isinstance(node, _T):
        hit = any(node.field is None or field == node.field for field, _, _ in found.get(node.term, ()))
        if hit:
            why.append(node.raw)
        return hit
    if isinstance(node, _M):
        hit = node.key in doc.meta
        if hit and node.key[0] == "region":
            why.append(f"region:{node.key[1]}")
        return hit
    if isinstance(node, _Near):
        hit = _near(node, found)
        if hit:
            why.append(f"{node.left.raw} NEAR/{node.distance} {node.right.raw}")
        return hit
    if isinstance(node, _Regex):
        hit = node.pattern.search(doc.raw) is not None  # type: ignore[attr-defined]
        if hit:
            why.append(f"regex:{node.raw}")
        return hit
    if isinstance(node, _And):
        mark = len(why)
        if all(_evaluate(child, found, doc, why) for child in node.children):
            return True
        del why[mark:]
        return False
    if isinstance(node, _Or):
        results = [_evaluate(child, found, doc, why) for child in node.children]
        return any(results)
    return not _evaluate(node.child, found, doc, [])


def _near(node: _Near, found: dict[int, list[Occurrence]]) -> bool:
    for field, start, end in found.get(node.left.term, ()):
        if node.left.field not in (None, field):
            continue
        for other_field, other_start, other_end in found.get(node.right.term, ()):
            if other_field != field or node.right.field not in (None, field):
                continue
            gap = other_start - end if other_start > end else start - other_end if start > other_end else 0
            if gap <= node.distance:
                return True
    return False


def _anchors(node: _Node) -> set[tuple[str, object]] | None:
    """Keys of which an item must have at least one to match ``node``; None when there are none."""
    if isinstance(node, _T):
        return {("t", node.term)}
    if isinstance(node, _M):
        return {("m", node.key)}
    if isinstance(node, _Near):
        return {("t", node.left.term)}
    if isinstance(node, _And):
        # any child's anchors will do: prefer terms (selective) to metadata such as a region
        # (which half the items may carry), then the fewest keys
        options = [anchors for anchors in map(_anchors, node.children) if anchors is not None]
        return min(options, key=lambda a: (any(kind == "m" for kind, _ in a), len(a))) if options else None
    if isinstance(node, _Or):
        union: set[tuple[str, object]] = set()
        for child in node.children:
            anchors = _anchors(child)
            if anchors is None:
                return None
            union |= anchors
        return union
    return None


def _simple_terms(tree: _Node) -> tuple[_T, ...]:
    """The terms of a tree that is one unscoped term or an OR of them; () for any other tree."""
    children = tree.children if isinstance(tree, _Or) else (tree,)
    if all(isinstance(child, _T) and child.field is None for child in children):
        return tuple(child for child in children if isinstance(child, _T))
    return ()


def _evidence_order(evidence: str) -> tuple[bool, str]:
    """Terms first (alphabetically), then metadata such as ``region:MENA``."""
    return (evidence.startswith(("region:", "regex:")), evidence)


def _or(nodes: list[_T] | list[_M]) -> _Node:
    return nodes[0] if len(nodes) == 1 else _Or(tuple(nodes))


def _meta_key(field: str, value: str) -> tuple[str, str]:
    if field == "region":
        return ("region", region_named(value) or value)
    if field == "lang":
        return ("lang", value.casefold())
    return (field, value)


def regex_problem(pattern: str) -> str | None:
    """Why RE2 (a linear-time engine: no catastrophic backtracking) rejects ``pattern``, or None."""
    try:
        re2.compile(pattern)
    except re2.error as exc:
        return str(exc) or "invalid pattern"
    return None


def _re2_options() -> object:
    options = re2.Options()
    options.case_sensitive = False
    return options
