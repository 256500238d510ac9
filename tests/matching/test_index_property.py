"""Property: the indexed Matcher and a naive evaluator (no index, no anchors) agree on every item."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from alerts.matching import query as q
from alerts.matching.index import Matcher
from alerts.models import FeedItem, Subscription
from alerts.text import arabic_forms, words

VOCABULARY = [
    "gaza",
    "rafah",
    "hospital",
    "hospitals",
    "strike",
    "talks",
    "lebanon",
    "غزة",
    "لبنان",
    "مستشفى",
]
PREFIXED = ["وغزة", "بغزة", "ولبنان", "المستشفى", "والمستشفى", "Gaza's", "HOSPITAL", "Líbano"]
FEEDS = ["wire", "agency"]


def _positions(text: str) -> list[set[str]]:
    return [set(arabic_forms(word)) for word in words(text)]


def _term_at(term: q.Term, field: list[set[str]], words_of_field: list[str]) -> list[tuple[int, int]]:
    """Every (start, end) where ``term`` occurs in one field."""
    spans = []
    size = len(term.words)
    for start in range(len(field) - size + 1):
        ok = True
        for offset, word in enumerate(term.words):
            if term.prefix and offset == size - 1:
                ok = ok and words_of_field[start + offset].startswith(word)
            else:
                ok = ok and word in field[start + offset]
        if ok:
            spans.append((start, start + size - 1))
    return spans


def naive(node: q.Node, item: FeedItem, feed: str) -> bool:
    """Evaluate a query tree directly on the item's words: the reference semantics."""
    fields = {"title": item.title, "summary": item.summary, "category": ""}
    if isinstance(node, q.Term):
        names = [node.field] if node.field else list(fields)
        return any(_term_at(node, _positions(fields[n]), words(fields[n])) for n in names)
    if isinstance(node, q.Meta):
        return node.field == "feed" and node.value == feed
    if isinstance(node, q.Near):
        for name, text in fields.items():
            left = _term_at(node.left, _positions(text), words(text))
            right = _term_at(node.right, _positions(text), words(text))
            for a_start, a_end in left:
                for b_start, b_end in right:
                    gap = b_start - a_end if b_start > a_end else a_start - b_end if a_start > b_end else 0
                    if gap <= node.distance and (node.left.field or name) == name:
                        return True
        return False
    if isinstance(node, q.And):
        return all(naive(child, item, feed) for child in node.children)
    if isinstance(node, q.Or):
        return any(naive(child, item, feed) for child in node.children)
    return not naive(node.child, item, feed)


def _quoted(word: str) -> str:
    return f'"{word}"' if " " in word else word


term_text = st.sampled_from([*VOCABULARY, "gaza strip", "rafah crossing", "hospital*", "strike*"])
leaf = st.one_of(
    term_text.map(_quoted),
    st.tuples(st.sampled_from(["title", "summary"]), term_text).map(lambda p: f"{p[0]}:{_quoted(p[1])}"),
    st.sampled_from(FEEDS).map(lambda feed: f"feed:{feed}"),
    st.tuples(st.sampled_from(VOCABULARY), st.integers(1, 4), st.sampled_from(VOCABULARY)).map(
        lambda p: f"({p[0]} NEAR/{p[1]} {p[2]})"
    ),
)
queries = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.tuples(inner, inner).map(lambda p: f"({p[0]} OR {p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]} AND {p[1]})"),
        st.tuples(inner, inner).map(lambda p: f"({p[0]} AND NOT {p[1]})"),
    ),
    max_leaves=5,
)
headline = st.lists(st.sampled_from([*VOCABULARY, *PREFIXED, "strip", "crossing", "in", "the"]), max_size=10)


@settings(max_examples=150, deadline=None)
@given(
    query_texts=st.lists(queries, min_size=1, max_size=12),
    title=headline.map(" ".join),
    summary=headline.map(" ".join),
    feed=st.sampled_from(FEEDS),
)
def test_index_agrees_with_naive_evaluation(
    query_texts: list[str], title: str, summary: str, feed: str
) -> None:
    """For random queries and headlines, the index returns exactly what naive evaluation accepts."""
    subs = [Subscription(f"s{n}", ("desk",), query=text) for n, text in enumerate(query_texts)]
    item = FeedItem(id="1", title=title, summary=summary)
    got = {match.subscription for match in Matcher(subs).match(item, feed)}
    expected = {sub.name for sub in subs if naive(q.parse_query(sub.query or ""), item, feed)}
    assert got == expected
