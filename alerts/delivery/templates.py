"""Subscriber templates: sandboxed Jinja2, compiled once, rendered per alert (pure, no I/O).

A template overrides the title and/or body of one channel kind
(see :func:`alerts.delivery.render.channel_kind`).
Sources are compiled by :func:`compile_template`, which raises ``ValueError`` naming the line of a syntax
error. Rendering runs in the bounded sandbox of :mod:`alerts.delivery.sandbox` (its docstring lists the
bounds, :mod:`alerts.delivery.limits` holds them): private attributes, mutating methods, unsafe calls and
a template past a bound raise :class:`TemplateFailure` (never a silent empty string), and so does any
other runtime error, so the caller can fall back to the default rendering and log the reason.

Variables: ``alert`` (the Alert's fields as a mapping: ``alert.title``, ``alert.extra``...), ``priority``
(``"flash"``, ``"high"``, ``"normal"`` or ``"low"``), ``sent_at`` (ISO 8601, UTC), and of its story:
``sources`` (the feeds that reported it by the time it is sent, the first first), ``update`` (0 for the
story's first alert, n for its n-th update), ``update_of`` (an update's first alert's delivery id, else
None) and ``changes`` (what an update changed). A title template is used as it renders: it is the
template's to say ``Update:`` (``{% if update %}Update: {% endif %}{{ alert.title }}``). Body templates of
HTML kinds (telegram, email) are autoescaped; titles never are (they are plain text, escaped where used).
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, cast

import jinja2
from jinja2.exceptions import SecurityError

from alerts.delivery.limits import (
    MAX_INT_BITS,
    MAX_ITEMS,
    MAX_OUTPUT,
    MAX_RANGE,
    MAX_SECONDS,
    MAX_STEPS,
    MAX_VALUE,
)
from alerts.delivery.sandbox import Sandbox, environment, render_budget

# The limits of a render are re-exported (alerts.delivery.limits holds them).
__all__ = [
    "HTML_KINDS",
    "KINDS",
    "MAX_INT_BITS",
    "MAX_ITEMS",
    "MAX_OUTPUT",
    "MAX_RANGE",
    "MAX_SECONDS",
    "MAX_STEPS",
    "MAX_VALUE",
    "Template",
    "TemplateFailure",
    "compile_template",
]

KINDS: tuple[str, ...] = ("telegram", "email", "push", "webhook", "console", "other")
HTML_KINDS: frozenset[str] = frozenset({"telegram", "email"})


class TemplateFailure(Exception):
    """A template could not be rendered for one alert (unsafe access, runtime error, oversized output)."""


class _Undefined(jinja2.Undefined):
    """Undefined that fails loudly when it stands for an access the sandbox refused."""

    __slots__ = ()

    def _refused(self) -> None:
        if self._undefined_exception is SecurityError:
            self._fail_with_undefined_error()

    def __str__(self) -> str:
        self._refused()
        return ""

    def __bool__(self) -> bool:
        self._refused()
        return False


_TEXT = environment(autoescape=False, undefined=_Undefined)
_HTML = environment(autoescape=True, undefined=_Undefined)


@dataclass(frozen=True, slots=True)
class Template:
    """Template sources for one channel kind; compiled on construction (ValueError on a syntax error)."""

    title: str | None
    body: str | None
    kind: str = "other"
    _title: jinja2.Template | None = field(init=False, repr=False, compare=False, default=None)
    _body: jinja2.Template | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown channel kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        object.__setattr__(self, "_title", _compile(_TEXT, self.kind, "title", self.title))
        body_env = _HTML if self.kind in HTML_KINDS else _TEXT
        object.__setattr__(self, "_body", _compile(body_env, self.kind, "body", self.body))

    def render_title(self, context: dict[str, Any]) -> str | None:
        """The rendered title (whitespace collapsed), or None when there is no title template."""
        text = _render(self._title, "title", context)
        return None if text is None else " ".join(text.split())

    def render_body(self, context: dict[str, Any]) -> str | None:
        """The rendered body (escaped for HTML kinds), or None when there is no body template."""
        text = _render(self._body, "body", context)
        return None if text is None else text.strip()


def compile_template(kind: str, title_src: str | None, body_src: str | None) -> Template:
    """Compile a subscriber's title/body template for ``kind``; raise ValueError on syntax errors."""
    return Template(title_src, body_src, kind)


def _compile(env: Sandbox, kind: str, part: str, source: str | None) -> jinja2.Template | None:
    if source is None or not source.strip():
        return None
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        raise ValueError(f"{kind} {part} template, line {exc.lineno}: {exc.message}") from exc


def _render(template: jinja2.Template | None, part: str, context: dict[str, Any]) -> str | None:
    """The template's output, streamed and stopped once past MAX_OUTPUT, within the render's budget."""
    if template is None:
        return None
    chunks: list[str] = []
    size = 0
    with render_budget():
        stream = cast(Generator[str, None, None], template.generate(context))
        try:
            for chunk in stream:
                size += len(chunk)
                if size > MAX_OUTPUT:
                    raise TemplateFailure(f"{part} template output too long (over {MAX_OUTPUT:,} characters)")
                chunks.append(chunk)
        except TemplateFailure:
            raise
        except Exception as exc:  # user code: SecurityError, UndefinedError, ZeroDivisionError, TypeError...
            raise TemplateFailure(f"{part} template failed: {type(exc).__name__}: {exc}") from exc
        finally:
            stream.close()
    return "".join(chunks)
