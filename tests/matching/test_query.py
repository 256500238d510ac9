"""Tests of alerts.matching.query: the parser and its errors (trees compared through describe(), a canonical
rendering kept here as the oracle)."""

from __future__ import annotations

import unicodedata

import pytest

from alerts.matching.query import (
    And,
    Meta,
    Near,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Term,
    has_positive,
    parse_query,
)

A, B = Term(("a",)), Term(("b",))


def terms(node: Node) -> list[Term]:
    """Every Term in the tree, including those inside NEAR, in query order."""
    if isinstance(node, Term):
        return [node]
    if isinstance(node, Meta):
        return []
    if isinstance(node, Near):
        return [node.left, node.right]
    if isinstance(node, Not):
        return terms(node.child)
    return [term for child in node.children for term in terms(child)]


def describe(node: Node) -> str:
    """A canonical, fully parenthesised rendering that parses back to the same tree."""
    if isinstance(node, Term):
        text = " ".join(node.words) + ("*" if node.prefix else "")
        text = f'"{text}"' if len(node.words) > 1 else text
        return f"{node.field}:{text}" if node.field else text
    if isinstance(node, Meta):
        bare = node.value and not any(ch.isspace() or ch in '()"' for ch in node.value)
        return f"{node.field}:{node.value}" if bare else f'{node.field}:"{node.value}"'
    if isinstance(node, Near):
        return f"({describe(node.left)} NEAR/{node.distance} {describe(node.right)})"
    if isinstance(node, Not):
        return f"(NOT {describe(node.child)})"
    operator = " AND " if isinstance(node, And) else " OR "
    return "(" + operator.join(describe(child) for child in node.children) + ")"


def shape(query: str) -> str:
    """The canonical rendering of ``query``'s tree."""
    return describe(parse_query(query))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("gaza", "gaza"),
        ("a b", "(a AND b)"),
        ("a AND b", "(a AND b)"),
        ("a OR b", "(a OR b)"),
        ("a b OR c", "((a AND b) OR c)"),
        ("a OR b c", "(a OR (b AND c))"),
        ("a AND b OR c AND d", "((a AND b) OR (c AND d))"),
        ("a OR b AND c OR d", "(a OR (b AND c) OR d)"),
        ("NOT a b", "((NOT a) AND b)"),
        ("a NOT b", "(a AND (NOT b))"),
        ("a AND NOT b OR c", "((a AND (NOT b)) OR c)"),
        ("NOT NOT a", "(NOT (NOT a))"),
        ("a NEAR/3 b c", "((a NEAR/3 b) AND c)"),
        ("c a NEAR/3 b", "(c AND (a NEAR/3 b))"),
        ("a NEAR/3 b OR c", "((a NEAR/3 b) OR c)"),
        ("(a OR b) c", "((a OR b) AND c)"),
        ("a (b OR (c d))", "(a AND (b OR (c AND d)))"),
        ("((a))", "a"),
        ("(a OR b)(c OR d)", "((a OR b) AND (c OR d))"),
        ("a AND (b AND c) AND d", "(a AND b AND c AND d)"),
        ("(a OR b) OR (c OR d)", "(a OR b OR c OR d)"),
        ("a OR (b AND c)", "(a OR (b AND c))"),
    ],
)
def test_precedence_and_grouping(query: str, expected: str) -> None:
    """NOT binds tightest, then NEAR, then AND (explicit or implicit), then OR; groups flatten."""
    assert shape(query) == expected


def test_issue_example() -> None:
    """The example from the issue parses to the expected tree, structurally and as text."""
    node = parse_query('(gaza OR rafah) AND ("medical complex" OR hospital*) AND NOT football')
    assert node == And(
        (
            Or((Term(("gaza",)), Term(("rafah",)))),
            Or((Term(("medical", "complex")), Term(("hospital",), prefix=True))),
            Not(Term(("football",))),
        )
    )
    assert describe(node) == '((gaza OR rafah) AND ("medical complex" OR hospital*) AND (NOT football))'


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("gaza -football", "(gaza AND (NOT football))"),
        ("gaza -(a OR b)", "(gaza AND (NOT (a OR b)))"),
        ('gaza -"world cup"', '(gaza AND (NOT "world cup"))'),
        ("gaza -title:sport", "(gaza AND (NOT title:sport))"),
        ("gaza -region:Europe", "(gaza AND (NOT region:Europe))"),
        ("gaza --a", "(gaza AND (NOT (NOT a)))"),
        ("al-Quds", '"al quds"'),
    ],
)
def test_leading_minus_is_not(query: str, expected: str) -> None:
    """A '-' touching a term, phrase, field or group negates it; inside a word it splits words."""
    assert shape(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('"medical complex"', Term(("medical", "complex"))),
        ('"Medical   COMPLEX!"', Term(("medical", "complex"))),
        ("hospital*", Term(("hospital",), prefix=True)),
        ('"al aqsa*"', Term(("al", "aqsa"), prefix=True)),
        ("al-Aqsa*", Term(("al", "aqsa"), prefix=True)),
        ("10:30", Term(("10", "30"))),
        ("Líbano", Term(("libano",))),
        ("ÉLYSÉE", Term(("elysee",))),
        ("غزة", Term(("غزه",))),
        ("أريحا", Term(("اريحا",))),
        ("مُسْتَشْفَى", Term(("مستشفي",))),
        ("Líbano*", Term(("libano",), prefix=True)),
        (unicodedata.normalize("NFD", "café*"), Term(("cafe",), prefix=True)),
    ],
)
def test_terms_are_normalised(query: str, expected: Term) -> None:
    """Words, phrases and prefixes are normalised like item text; multi-word results are phrases."""
    assert parse_query(query) == expected


def test_raw_keeps_source_text_and_is_ignored_by_equality() -> None:
    """``raw`` is the term's own source text (quotes and * kept, field and - dropped), not compared."""
    node = parse_query('Líbano "Medical Complex" hospital* title:Gaza -Rafah')
    assert [term.raw for term in terms(node)] == ["Líbano", '"Medical Complex"', "hospital*", "Gaza", "Rafah"]
    assert Term(("a",), raw="A") == Term(("a",), raw="a")


@pytest.mark.parametrize("query", ["and", "or", "not", "near", "gaza and rafah", "a or b", "not a", "And"])
def test_lowercase_operators_are_words(query: str) -> None:
    """Only upper-case AND/OR/NOT/NEAR are operators; other spellings are plain words (implicit AND)."""
    node = parse_query(query)
    assert terms(node) == [Term((word,)) for word in query.lower().split()]
    assert not any(isinstance(n, Or | Not) for n in (node, *getattr(node, "children", ())))


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("gaza NEAR/3 hospital", Near(Term(("gaza",)), Term(("hospital",)), 3)),
        ('"al aqsa" NEAR/5 raid', Near(Term(("al", "aqsa")), Term(("raid",)), 5)),
        ('raid NEAR/1 "al aqsa*"', Near(Term(("raid",)), Term(("al", "aqsa"), prefix=True), 1)),
        ("hospital* NEAR/50 strike", Near(Term(("hospital",), prefix=True), Term(("strike",)), 50)),
        ("a NEAR/007 b", Near(Term(("a",)), Term(("b",)), 7)),
        (
            "title:gaza NEAR/2 title:strike",
            Near(Term(("gaza",), field="title"), Term(("strike",), field="title"), 2),
        ),
        ("title:(a NEAR/2 b)", Near(Term(("a",), field="title"), Term(("b",), field="title"), 2)),
        ("title:a NEAR/2 b", Near(Term(("a",), field="title"), Term(("b",)), 2)),
    ],
)
def test_near(query: str, expected: Near) -> None:
    """NEAR/n joins two words or phrases (scoped or not) with their distance."""
    assert parse_query(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("title:gaza", Term(("gaza",), field="title")),
        ('summary:"rafah crossing"', Term(("rafah", "crossing"), field="summary")),
        ("category:sport*", Term(("sport",), prefix=True, field="category")),
        ("TITLE:gaza", Term(("gaza",), field="title")),
        ("title:AND", Term(("and",), field="title")),
        ("feed:wire", Meta("feed", "wire")),
        ("region:MENA", Meta("region", "MENA")),
        ('region:"US & Canada"', Meta("region", "US & Canada")),
        ('region:" Latin America "', Meta("region", "Latin America")),
        ("region:US&Canada", Meta("region", "US&Canada")),
        ("lang:ar", Meta("lang", "ar")),
        ("Lang:AR", Meta("lang", "AR")),
    ],
)
def test_field_scopes(query: str, expected: Term | Meta) -> None:
    """Text fields scope a term; metadata fields keep their (stripped) value as written."""
    assert parse_query(query) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("title:(gaza OR rafah)", "(title:gaza OR title:rafah)"),
        ('summary:(a ("b c" OR -d))', '(summary:a AND (summary:"b c" OR (NOT summary:d)))'),
        ("title:(gaza) rafah", "(title:gaza AND rafah)"),
        ("title:(a OR b) c region:MENA", "((title:a OR title:b) AND c AND region:MENA)"),
        ('gaza region:"US & Canada" -feed:sport', '(gaza AND region:"US & Canada" AND (NOT feed:sport))'),
    ],
)
def test_scoped_groups(query: str, expected: str) -> None:
    """A scope on a group applies to every term inside it and to nothing outside it."""
    assert shape(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        '(gaza OR rafah) AND ("medical complex" OR hospital*) AND NOT football',
        'title:(gaza OR "al quds*") -region:"US & Canada" lang:ar',
        '"al aqsa" NEAR/5 raid OR (a b -(c OR d))',
        "10:30 and or not near",
    ],
)
def test_describe_parses_back(query: str) -> None:
    """describe() output is itself a query with the same tree."""
    node = parse_query(query)
    assert parse_query(describe(node)) == node


def test_terms_in_order_including_near_and_negated() -> None:
    """terms() lists every Term left to right, inside NEAR and NOT, skipping metadata."""
    node = parse_query('a (b NEAR/2 "c d") region:MENA -e*')
    assert terms(node) == [Term(("a",)), Term(("b",)), Term(("c", "d")), Term(("e",), prefix=True)]


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (A, True),
        (Meta("region", "MENA"), True),
        (Not(A), False),
        (Not(Not(A)), True),
        (And((Not(A), B)), True),
        (And((Not(A), Not(B))), False),
        (Or((A, Not(B))), False),
        (Or((A, Meta("feed", "wire"))), True),
        (Not(Or((Not(A), Not(B)))), True),
        (Not(And((Not(A), B))), False),
        (Near(A, B, 2), True),
        (Not(Near(A, B, 2)), False),
    ],
)
def test_has_positive(node: And | Or | Not | Term | Meta, expected: bool) -> None:
    """has_positive is true when every match must satisfy some non-negated condition (De Morgan)."""
    assert has_positive(node) is expected


@pytest.mark.parametrize(
    ("query", "column", "message"),
    [
        ("", 1, "empty query"),
        ("   ", 1, "empty query"),
        ("gaza AND", 6, "missing term after AND"),
        ("gaza OR", 6, "missing term after OR"),
        ("OR gaza", 1, "missing term before OR"),
        ("AND AND", 1, "missing term before AND"),
        ("gaza AND AND rafah", 6, "missing term after AND"),
        ("gaza AND OR rafah", 6, "missing term after AND"),
        ("(OR a)", 2, "missing term before OR"),
        ("gaza NOT", 6, "missing term after NOT"),
        ("gaza AND )", 6, "missing term after AND"),
        ("()", 1, "empty group ()"),
        ("a ( )", 3, "empty group ()"),
        ("(gaza", 1, "unmatched '('"),
        ("((gaza)", 1, "unmatched '('"),
        ("a (b (c) d", 3, "unmatched '('"),
        ("gaza (", 6, "unmatched '('"),
        ("gaza)", 5, "unmatched ')'"),
        (") gaza", 1, "unmatched ')'"),
        ("(a) b)", 6, "unmatched ')'"),
        ('gaza "medical complex', 6, "unterminated quote"),
        ('"a" "b', 5, "unterminated quote"),
        ('"!!!"', 1, '"!!!" has no letters or digits to search for'),
        ("gaza !!!", 6, "!!! has no letters or digits to search for"),
        ('""', 1, '"" has no letters or digits to search for'),
        ("*", 1, "'*' must directly follow a word"),
        ("gaza *", 6, "'*' must directly follow a word"),
        ("al-*", 4, "'*' must directly follow a word"),
        ('"al *"', 5, "'*' must directly follow a word"),
        ("*gaza", 1, "'*' is only allowed at the end of a term"),
        ("hos*pital", 4, "'*' is only allowed at the end of a term"),
        ("gaza**", 5, "'*' is only allowed at the end of a term"),
        ('"al* aqsa"', 4, "'*' is only allowed at the end of a term"),
        ("a - b", 3, "'-' must be directly followed by a term or a group"),
        ("gaza -", 6, "'-' must be directly followed by a term or a group"),
        ("(a -)", 4, "'-' must be directly followed by a term or a group"),
        ("a NEAR/0 b", 3, "NEAR needs a distance from 1 to 50, as in NEAR/5"),
        ("a NEAR/51 b", 3, "NEAR needs a distance from 1 to 50, as in NEAR/5"),
        ("a NEAR/x b", 3, "NEAR needs a distance from 1 to 50, as in NEAR/5"),
        ("a NEAR/ b", 3, "NEAR needs a distance from 1 to 50, as in NEAR/5"),
        ("a NEAR b", 3, "NEAR needs a distance from 1 to 50, as in NEAR/5"),
        ("a NEAR/-2 b", 3, "NEAR needs a distance from 1 to 50, as in NEAR/5"),
        ("a NEAR/٣ b", 3, "NEAR needs a distance from 1 to 50, as in NEAR/5"),
        ("NEAR/3 a", 1, "missing term before NEAR/3"),
        ("a NEAR/3", 3, "missing term after NEAR/3"),
        ("(a OR b) NEAR/3 c", 1, "NEAR needs a single word or phrase on each side"),
        ("a NEAR/3 (b)", 10, "NEAR needs a single word or phrase on each side"),
        ("a NEAR/3 title:(b)", 10, "NEAR needs a single word or phrase on each side"),
        ("a NEAR/3 -b", 10, "NEAR needs a single word or phrase on each side"),
        ("x NOT a NEAR/3 b", 3, "NEAR needs a single word or phrase on each side"),
        ("a NEAR/3 region:MENA", 10, "NEAR needs a single word or phrase on each side"),
        ("a NEAR/3 b NEAR/3 c", 12, "NEAR cannot be chained; join the pairs with AND"),
        ("title:a NEAR/3 summary:b", 9, "NEAR cannot join terms of different fields"),
        ("gaza foo:bar", 6, "unknown field 'foo' (fields: category, feed, lang, region, summary, title)"),
        ("Foo:bar", 1, "unknown field 'Foo' (fields: category, feed, lang, region, summary, title)"),
        ("gaza title:", 6, "'title:' needs a value right after the colon"),
        ("title: gaza", 1, "'title:' needs a value right after the colon"),
        ("(region:)", 2, "'region:' needs a value right after the colon"),
        ('region:"  "', 8, "'region:' needs a value"),
        ("region:(MENA OR Europe)", 8, "'region:' takes one value, not a group"),
        ("title:(a summary:b)", 10, "field scopes cannot be nested"),
        ("title:(a region:MENA)", 10, "field scopes cannot be nested"),
        ("NOT gaza", 1, "a query needs at least one positive term"),
        ("-gaza", 1, "a query needs at least one positive term"),
        ("-gaza -rafah", 1, "a query needs at least one positive term"),
        ("NOT (a b)", 1, "a query needs at least one positive term"),
        ("gaza OR -football", 1, "a query needs at least one positive term"),
        ("-region:Europe", 1, "a query needs at least one positive term"),
        ("(" * 33 + "a" + ")" * 33, 33, "the query nests deeper than 32 levels"),
        ("-" * 33 + "a", 33, "the query nests deeper than 32 levels"),
    ],
)
def test_errors(query: str, column: int, message: str) -> None:
    """Each invalid query raises QuerySyntaxError with this message at this 1-based column."""
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query(query)
    assert (raised.value.message, raised.value.column) == (message, column)
    assert str(raised.value) == f"{message} (column {column})"
    assert isinstance(raised.value, ValueError)


def test_columns_count_code_points() -> None:
    """Columns count characters, not bytes, so Arabic before an error does not shift it."""
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query("غزة AND")
    assert raised.value.column == 5


def test_deep_but_allowed_nesting() -> None:
    """32 levels of groups are accepted and collapse to the term."""
    assert parse_query("(" * 32 + "a" + ")" * 32) == Term(("a",))
