"""The subscription query language (``query:`` in subscriptions.yaml): tokenizer, parser and AST. No I/O.

A query reads like a search-engine query::

    (gaza OR rafah) AND ("medical complex" OR hospital*) AND NOT football
    title:(gaza OR rafah) -football region:"US & Canada"
    "al aqsa" NEAR/5 raid lang:ar

Terms
    ``gaza``               a word; words are normalised with :func:`alerts.text.words`, so case,
                           accents and Arabic diacritics do not matter (``Líbano`` = ``libano``)
    ``"medical complex"``  a phrase: the words in this order, next to each other
    ``al-Quds``, ``10:30`` a bare word that normalises to several words is a phrase ("al quds")
    ``hospital*``          a prefix: the last word of the term is a prefix (``hospitals``);
                           ``"al aqsa*"`` is a phrase whose last word is a prefix. ``*`` must
                           directly follow a word and end the term: ``*``, ``*gaza``, ``ho*me``,
                           ``"al *"`` are errors.

Operators (upper case only: ``and``, ``or``, ``not``, ``near`` are ordinary words)
    ``NOT x`` or ``-x``    x must not match; ``-`` must touch its operand (``-football``, ``-(a OR b)``)
    ``x AND y`` or ``x y`` both match (terms side by side are an implicit AND)
    ``x OR y``             either matches
    ``x NEAR/n y``         x and y (words or phrases, not groups or negations) at most n words
                           apart, n in 1..50, in either order: single words at positions i and j
                           match when ``|i - j| <= n``; for phrases the distance runs from the last
                           word of the earlier occurrence to the first word of the later one
                           (``a NEAR/1 b`` = adjacent; overlapping occurrences count as 0)
    ``( ... )``            grouping

    Precedence, tightest first: NOT/-, NEAR, AND (explicit or implicit), OR. So ``a b OR c`` is
    ``(a AND b) OR c``, ``a OR b c`` is ``a OR (b AND c)`` and ``NOT a b`` is ``(NOT a) AND b``.

Fields (``name:`` directly followed by its value; names are case-insensitive)
    ``title:gaza``, ``summary:"rafah crossing"``, ``category:sport*``, ``title:(gaza OR rafah)``:
        text scopes; a scope applies to every term inside its group and cannot be nested.
        Unscoped terms match title, summary or category.
    ``feed:wire``, ``region:MENA``, ``region:"US & Canada"``, ``lang:ar``: metadata, one value each
        (bare or quoted, kept as written); the matcher canonicalises it.
    Only ``letters:`` at the start of a word is a field, so ``10:30`` is a plain term and ``foo:bar``
    is an error (write ``"foo:bar"`` to search for the text).

A query must have a positive part (see :func:`has_positive`): ``NOT a``, ``-a`` and ``a OR -b``
would match almost every item and are rejected.

Grammar (EBNF; ``-``, ``*`` and a field's value touch what follows or precedes them)::

    query      = or_expr ;
    or_expr    = and_expr { "OR" and_expr } ;
    and_expr   = near_expr { [ "AND" ] near_expr } ;
    near_expr  = unary [ near unary ] ;     (* operands: words or phrases, not of two different fields *)
    unary      = ( "NOT" | "-" ) unary | primary ;
    primary    = term | group | text_field ":" ( term | group ) | meta_field ":" value ;
    group      = "(" or_expr ")" ;
    term       = word [ "*" ] | '"' { char - '"' } [ "*" ] '"' ;
    value      = word | '"' { char - '"' } '"' ;
    near       = "NEAR/" digit { digit } ;              (* 1 to 50 *)
    text_field = "title" | "summary" | "category" ;
    meta_field = "feed" | "region" | "lang" ;
    word       = a run of characters other than white space, '(', ')' and '"' ;

Groups and negations nest at most 32 deep. Errors raise :class:`QuerySyntaxError` with a 1-based
column (in code points) into the query.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from dataclasses import dataclass

from alerts.text import words

__all__ = [
    "MAX_NEAR",
    "META_FIELDS",
    "TEXT_FIELDS",
    "And",
    "Meta",
    "Near",
    "Node",
    "Not",
    "Or",
    "QuerySyntaxError",
    "Term",
    "has_positive",
    "parse_query",
]

TEXT_FIELDS = frozenset({"title", "summary", "category"})
META_FIELDS = frozenset({"feed", "region", "lang"})
MAX_NEAR = 50
_MAX_DEPTH = 32  # nested groups and negations; keeps recursion far from Python's limit
_ASCII_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


@dataclass(frozen=True, slots=True)
class Term:
    words: tuple[str, ...]  # normalised with alerts.text.words; a phrase has several
    prefix: bool = False  # the last word is a prefix (hospital*)
    field: str | None = None  # "title" | "summary" | "category" | None (any text field)
    raw: str = dataclasses.field(default="", compare=False)  # the term's source text (no field, no -)


@dataclass(frozen=True, slots=True)
class Meta:
    field: str  # "feed" | "region" | "lang"
    value: str  # as written (stripped); the matcher canonicalises


@dataclass(frozen=True, slots=True)
class Near:
    left: Term
    right: Term
    distance: int


@dataclass(frozen=True, slots=True)
class And:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    child: Node


Node = Term | Meta | Near | And | Or | Not


class QuerySyntaxError(ValueError):
    """Raised for an invalid query; ``column`` is 1-based within the query string."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__(f"{message} (column {column})")
        self.message = message
        self.column = column


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # word phrase field ( ) AND OR NOT - NEAR end
    text: str  # as written; for a phrase, what is inside the quotes; for a field, its lower-case name
    column: int
    distance: int = 0  # NEAR/n


def parse_query(text: str) -> Node:
    """The tree of ``text``; raises QuerySyntaxError for an invalid or purely negative query."""
    tokens = _tokenize(text)
    if len(tokens) == 1:
        raise QuerySyntaxError("empty query", 1)
    node = _Parser(tokens).parse()
    if not has_positive(node):
        raise QuerySyntaxError("a query needs at least one positive term", 1)
    return node


def has_positive(node: Node) -> bool:
    """Whether every item ``node`` matches must satisfy one of its non-negated terms, NEARs or fields.

    False for ``NOT a``, ``-a -b`` and ``a OR -b``; true for ``a -b``, ``region:MENA`` and ``NOT NOT a``.
    """
    return _positive(node, negated=False)


def _positive(node: Node, negated: bool) -> bool:
    if isinstance(node, Not):
        return _positive(node.child, not negated)
    if isinstance(node, Term | Meta | Near):
        return not negated
    conjunction = isinstance(node, And) != negated  # De Morgan: NOT (a AND b) = NOT a OR NOT b
    results = [_positive(child, negated) for child in node.children]
    return any(results) if conjunction else all(results)


def _tokenize(text: str) -> list[_Token]:
    """The tokens of ``text`` followed by an ``end`` token; one linear pass, no regular expressions."""
    tokens: list[_Token] = []
    i, n = 0, len(text)
    after_field = False  # a field's value is taken literally: no operators, fields or leading -
    while i < n:
        ch, column = text[i], i + 1
        if ch.isspace():
            i += 1
            continue
        if ch in "()":
            tokens.append(_Token(ch, ch, column))
            i += 1
        elif ch == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise QuerySyntaxError("unterminated quote", column)
            tokens.append(_Token("phrase", text[i + 1 : end], column))
            i = end + 1
        elif ch == "-" and not after_field:
            if i + 1 == n or text[i + 1].isspace() or text[i + 1] == ")":
                raise QuerySyntaxError("'-' must be directly followed by a term or a group", column)
            tokens.append(_Token("-", ch, column))
            i += 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in '()"':
                j += 1
            k = i
            while k < j and text[k] in _ASCII_LETTERS:
                k += 1
            if not after_field and i < k < j and text[k] == ":":
                name = text[i:k].lower()
                if name not in TEXT_FIELDS | META_FIELDS:
                    known = ", ".join(sorted(TEXT_FIELDS | META_FIELDS))
                    raise QuerySyntaxError(f"unknown field '{text[i:k]}' (fields: {known})", column)
                if k + 1 == n or text[k + 1].isspace() or text[k + 1] == ")":
                    raise QuerySyntaxError(f"'{name}:' needs a value right after the colon", column)
                tokens.append(_Token("field", name, column))
                i, after_field = k + 1, True
                continue
            tokens.append(_Token("word", text[i:j], column) if after_field else _keyword(text[i:j], column))
            i = j
        after_field = False
    tokens.append(_Token("end", "", n + 1))
    return tokens


def _keyword(run: str, column: int) -> _Token:
    if run in ("AND", "OR", "NOT"):
        return _Token(run, run, column)
    if run != "NEAR" and not run.startswith("NEAR/"):
        return _Token("word", run, column)
    digits = run[5:]
    if not (digits.isascii() and digits.isdigit()) or not 1 <= int(digits) <= MAX_NEAR:
        raise QuerySyntaxError(f"NEAR needs a distance from 1 to {MAX_NEAR}, as in NEAR/5", column)
    return _Token("NEAR", run, column, int(digits))


def _term(body: str, column: int, star_column: int | None, scope: str | None, raw: str) -> Term:
    """A Term from ``body`` (the text without quotes or ``*``); ``star_column`` locates a trailing ``*``."""
    found = tuple(words(body))
    if star_column is not None and not (body and (body[-1].isalnum() or unicodedata.combining(body[-1]))):
        raise QuerySyntaxError("'*' must directly follow a word", star_column)
    if not found:
        raise QuerySyntaxError(f"{raw} has no letters or digits to search for", column)
    return Term(found, star_column is not None, scope, raw)


def _star(text: str, column: int) -> int | None:
    """The column of ``text``'s trailing ``*`` (None without one); a ``*`` elsewhere is an error."""
    star = text.find("*")
    if star < 0:
        return None
    if star != len(text) - 1:
        raise QuerySyntaxError("'*' is only allowed at the end of a term", column + star)
    return column + star


def _join(kind: type[And] | type[Or], children: list[Node]) -> Node:
    """``kind`` of ``children``, flattened (a AND (b AND c) = a AND b AND c); one child is itself."""
    flat = tuple(g for child in children for g in (child.children if isinstance(child, kind) else (child,)))
    return flat[0] if len(flat) == 1 else kind(flat)


_OPERAND_START = frozenset({"word", "phrase", "field", "(", "NOT", "-"})
_OPERATORS = frozenset({"AND", "OR", "NOT", "-", "NEAR"})


class _Parser:
    """Recursive descent over the token list, one method per precedence level."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        self.pos += 1
        return self.tokens[self.pos - 1]

    def parse(self) -> Node:
        node = self.or_expr(None)
        if self.peek().kind != "end":  # or_expr stops only at ")" or the end
            raise QuerySyntaxError("unmatched ')'", self.peek().column)
        return node

    def or_expr(self, scope: str | None) -> Node:
        children = [self.and_expr(scope)]
        while self.peek().kind == "OR":
            self.take()
            children.append(self.and_expr(scope))
        return _join(Or, children)

    def and_expr(self, scope: str | None) -> Node:
        children = [self.near_expr(scope)]
        while self.peek().kind == "AND" or self.peek().kind in _OPERAND_START:
            if self.peek().kind == "AND":
                self.take()
            children.append(self.near_expr(scope))
        return _join(And, children)

    def near_expr(self, scope: str | None) -> Node:
        start = self.pos
        left = self.unary(scope)
        if self.peek().kind != "NEAR":
            return left
        near = self.take()
        right_start = self.pos
        right = self.unary(scope)
        left_term, right_term = self.near_operand(left, start), self.near_operand(right, right_start)
        if left_term.field and right_term.field and left_term.field != right_term.field:
            raise QuerySyntaxError("NEAR cannot join terms of different fields", near.column)
        if self.peek().kind == "NEAR":
            raise QuerySyntaxError("NEAR cannot be chained; join the pairs with AND", self.peek().column)
        return Near(left_term, right_term, near.distance)

    def near_operand(self, node: Node, start: int) -> Term:
        first, second = self.tokens[start], self.tokens[start + 1]
        plain = first.kind in ("word", "phrase") or (first.kind == "field" and second.kind != "(")
        if not (plain and isinstance(node, Term)):
            raise QuerySyntaxError("NEAR needs a single word or phrase on each side", first.column)
        return node

    def unary(self, scope: str | None) -> Node:
        if self.peek().kind not in ("NOT", "-"):
            return self.primary(scope)
        self.enter(self.take())
        child = self.unary(scope)
        self.depth -= 1
        return Not(child)

    def primary(self, scope: str | None) -> Node:
        token = self.peek()
        if token.kind == "word":
            self.take()
            star = _star(token.text, token.column)
            body = token.text if star is None else token.text[:-1]
            return _term(body, token.column, star, scope, token.text)
        if token.kind == "phrase":
            self.take()
            star = _star(token.text, token.column + 1)
            body = token.text if star is None else token.text[:-1]
            return _term(body, token.column, star, scope, f'"{token.text}"')
        if token.kind == "(":
            return self.group(scope)
        if token.kind == "field":
            return self.scoped(scope)
        raise self.missing_operand()

    def group(self, scope: str | None) -> Node:
        opening = self.take()
        self.enter(opening)
        node = self.or_expr(scope)
        if self.peek().kind != ")":
            raise QuerySyntaxError("unmatched '('", opening.column)
        self.take()
        self.depth -= 1
        return node

    def scoped(self, scope: str | None) -> Node:
        name = self.take()
        if scope is not None:
            raise QuerySyntaxError("field scopes cannot be nested", name.column)
        value = self.peek()
        if name.text in TEXT_FIELDS:
            return self.group(name.text) if value.kind == "(" else self.primary(name.text)
        if value.kind == "(":
            raise QuerySyntaxError(f"'{name.text}:' takes one value, not a group", value.column)
        self.take()
        if not value.text.strip():
            raise QuerySyntaxError(f"'{name.text}:' needs a value", value.column)
        return Meta(name.text, value.text.strip())

    def enter(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise QuerySyntaxError(f"the query nests deeper than {_MAX_DEPTH} levels", token.column)

    def missing_operand(self) -> QuerySyntaxError:
        token = self.peek()
        previous = self.tokens[self.pos - 1] if self.pos else None
        if previous is not None and previous.kind in _OPERATORS:
            return QuerySyntaxError(f"missing term after {previous.text}", previous.column)
        if previous is not None and previous.kind == "(":
            if token.kind == ")":
                return QuerySyntaxError("empty group ()", previous.column)
            if token.kind == "end":
                return QuerySyntaxError("unmatched '('", previous.column)
        if token.kind == ")":
            return QuerySyntaxError("unmatched ')'", token.column)
        return QuerySyntaxError(f"missing term before {token.text}", token.column)
