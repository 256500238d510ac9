"""The bounded Jinja2 sandbox subscriber templates render in (pure, no I/O).

:func:`environment` makes an :class:`jinja2.sandbox.ImmutableSandboxedEnvironment` that is also bounded
while a template renders within :func:`render_budget`, so one cannot stall a deliver worker or exhaust
its memory (the limits are in :mod:`alerts.delivery.limits`):

- time: every loop iteration, call (macros included), filter and attribute access is a step; a render
  stops after MAX_STEPS steps or MAX_SECONDS, whichever comes first;
- output: rendered as a stream (by :mod:`alerts.delivery.templates`), stopped as soon as it passes
  MAX_OUTPUT characters;
- values: ``range`` gives at most MAX_RANGE numbers; no string the template builds (``*``, ``+``,
  ``~``, ``%``, ``.format``, ``{% set %}`` blocks, macro output, str methods such as ``center`` or
  ``replace``, filters such as ``join``, ``indent``, ``wordwrap``, ``format``) may pass MAX_VALUE
  characters, checked before it is built where its size can be told beforehand; no list passes
  MAX_ITEMS; integers stay under MAX_INT_BITS bits; ``lipsum`` makes at most a few paragraphs.

Every bound raises :class:`jinja2.exceptions.SecurityError` (or OverflowError for ``range``).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from string import Formatter
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import generate_lorem_ipsum
from markupsafe import Markup

from alerts.delivery.limits import (
    FILTER_CHECKS,
    MAX_EXPONENT,
    MAX_ITEMS,
    MAX_LIPSUM,
    MAX_RANGE,
    MAX_SECONDS,
    MAX_STEPS,
    MAX_VALUE,
    TEXT_FILTERS,
    BoundedEscapeFormatter,
    BoundedFormatter,
    as_int,
    check_printf,
    check_result,
    method_args,
    need_bits,
    need_items,
    need_size,
    need_text,
    refuse,
    weight,
)

_STEPS_FILTER = "bounded_steps"  # wraps the iterable of every {% for %}

# -- the budget of one render -----------------------------------------------------------------------


@dataclass(slots=True)
class _Budget:
    """What one render has left: steps, and the monotonic time it must end by."""

    steps: int
    deadline: float


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


@contextmanager
def render_budget() -> Iterator[None]:
    """The budget of one render, for the code run inside: MAX_STEPS steps and MAX_SECONDS from now."""
    token = _budget.set(_Budget(MAX_STEPS, time.monotonic() + MAX_SECONDS))
    try:
        yield
    finally:
        _budget.reset(token)


def _tick() -> None:
    """One step of the current render (none outside a render: constant folding at compile time)."""
    budget = _budget.get()
    if budget is None:
        return
    budget.steps -= 1
    if budget.steps < 0:
        raise SecurityError(f"template ran over {MAX_STEPS:,} steps (loop iterations, calls, filters)")
    if time.monotonic() > budget.deadline:
        raise SecurityError(f"template ran over {MAX_SECONDS} s")


# -- globals and filters ------------------------------------------------------------------------------


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise OverflowError(f"range too big: the sandbox gives at most {MAX_RANGE:,} numbers")
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if as_int(n) > MAX_LIPSUM or as_int(max) > 1000:
        refuse("lipsum", MAX_LIPSUM)
    return str(generate_lorem_ipsum(n, html, min, max))


@jinja2.pass_context
def _steps(_: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    """The iterable of a {% for %}: one step per iteration (pass_context: never folded at compile time)."""
    for value in iterable:
        _tick()
        yield value


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` counted as a step, its input and arguments checked first and its result after."""
    passed = getattr(func, "jinja_pass_arg", None) is not None  # context, eval context or environment
    check = FILTER_CHECKS.get(name)
    stringifies = name in TEXT_FILTERS

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        own = args[1:] if passed else args
        if stringifies and own:
            need_text(own[0], f"{name} input")
        if check is not None:
            check(*own, **kwargs)
        if name == "join":
            args, kwargs = _join_args(args, kwargs), {}
        result = func(*args, **kwargs)
        check_result(result, name)
        return result

    return bounded


def _join_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """join's arguments with its items listed and weighed (and the attribute, if any, taken from each)."""
    eval_ctx, value, *rest = args
    separator = rest[0] if rest else kwargs.get("d", "")
    attribute = rest[1] if len(rest) > 1 else kwargs.get("attribute")
    items = list(value)
    if attribute is not None:
        getter = make_attrgetter(eval_ctx.environment, attribute)
        items = [getter(item) for item in items]
    need_size(weight(items) + weight(separator) * len(items), "join result")
    return (eval_ctx, items, separator)


# -- the environment ----------------------------------------------------------------------------------


class _Buffer(list[str]):
    """The buffer of a {% set %} block, a macro, a {% call %} or a {% filter %}: MAX_VALUE characters."""

    __slots__ = ("_size",)

    def __init__(self) -> None:
        super().__init__()
        self._size = 0

    def append(self, text: str) -> None:
        self._grow(len(text) if isinstance(text, str) else 0)
        super().append(text)

    def extend(self, texts: Iterable[str]) -> None:
        texts = tuple(texts)
        self._grow(sum(len(text) for text in texts if isinstance(text, str)))
        super().extend(texts)

    def _grow(self, size: int) -> None:
        self._size += size
        if self._size > MAX_VALUE:
            refuse("captured output", MAX_VALUE)


class _BoundedCode(CodeGenerator):
    """Jinja's code generator with a step per loop iteration, bounded buffers and bounded ``~``."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:
        for loop in node.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, _STEPS_FILTER, [], [], None, None, lineno=loop.iter.lineno)
        super().visit_Template(node, frame)

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")

    @optimizeconst
    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            join = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            join = "markup_join"
        else:
            join = "str_join"
        self.write(f"environment.bounded_concat({join}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


def _finalize(value: Any) -> Any:
    """What ``{{ }}`` prints: refused before it is made text when that text would pass MAX_VALUE."""
    if not isinstance(value, str):
        need_text(value, "printed value")
    return value


class Sandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox, bounded in time and size as the module docstring says."""

    code_generator_class = _BoundedCode
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_finalize, **options)
        self.globals["range"] = _range
        self.globals["lipsum"] = _lipsum
        self.filters = {name: _bounded_filter(name, func) for name, func in self.filters.items()}
        self.filters[_STEPS_FILTER] = _steps

    def bounded_buffer(self) -> _Buffer:
        return _Buffer()

    def bounded_concat(self, join: Callable[[Iterable[Any]], str], parts: tuple[Any, ...]) -> str:
        need_size(sum(weight(part) for part in parts), "concatenation (~)")
        return join(parts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "**" and isinstance(right, int):
            if abs(right) > MAX_EXPONENT:
                raise SecurityError("exponent too large")
            if isinstance(left, int):
                need_bits(left.bit_length() * right, "power")
        elif operator == "*":
            for sized, count in ((left, right), (right, left)):
                if isinstance(sized, str | list | tuple) and isinstance(count, int):
                    limit = MAX_VALUE if isinstance(sized, str) else MAX_ITEMS
                    if len(sized) * count > limit:
                        raise SecurityError(f"repetition too large (over {limit:,})")
            if isinstance(left, int) and isinstance(right, int):
                need_bits(left.bit_length() + right.bit_length(), "product")
        elif operator == "+":
            if isinstance(left, str) and isinstance(right, str):
                need_size(len(left) + len(right), "string")
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                need_items(len(left) + len(right), "list")
        elif operator == "%":
            check_printf(left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        if isinstance(__obj, LoopContext) and args:  # loop(children) in a recursive loop
            args = (_steps(__context, args[0]), *args[1:])
        args = method_args(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        check_result(result, getattr(__obj, "__name__", "call"))
        return result

    def getattr(self, obj: Any, attribute: str) -> Any:
        _tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format and str.format_map through a formatter that bounds widths and the result."""
        if super().wrap_str_format(value) is None:
            return None
        owner: str = value.__self__
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one argument")
                kwargs, args = args[0], ()
            formatter: Formatter = (
                BoundedEscapeFormatter(self, escape=owner.escape)
                if isinstance(owner, Markup)
                else BoundedFormatter(self)
            )
            return type(owner)(formatter.vformat(owner, args, kwargs))

        return functools.update_wrapper(wrapper, value)


def environment(*, autoescape: bool, undefined: type[jinja2.Undefined]) -> Sandbox:
    """A bounded sandbox for text (``autoescape=False``) or HTML (``autoescape=True``) templates."""
    return Sandbox(autoescape=autoescape, undefined=undefined, keep_trailing_newline=False)
