"""Subscriber templates: sandboxed Jinja2, compiled once, rendered per alert (pure, no I/O).

A template overrides the title and/or body of one channel kind
(see :func:`alerts.delivery.render.channel_kind`).
Sources are compiled by :func:`compile_template`, which raises ``ValueError`` naming the line of a syntax
error. Rendering runs in :class:`jinja2.sandbox.ImmutableSandboxedEnvironment`: private attributes,
mutating methods and unsafe calls raise :class:`TemplateFailure` (never a silent empty string), and so does
any other runtime error, so the caller can fall back to the default rendering and log the reason.

Variables: ``alert`` (the Alert's fields as a mapping: ``alert.title``, ``alert.extra``...), ``priority``
(``"flash"``, ``"high"``, ``"normal"`` or ``"low"``) and ``sent_at`` (ISO 8601, UTC). Body templates of
HTML kinds (telegram, email) are autoescaped; titles never are (they are plain text, escaped where used).

A template is bounded while it renders, so one cannot stall a deliver worker or exhaust its memory:

- time: every loop iteration, call (macros included), filter and attribute access is a step; a render
  stops after MAX_STEPS steps or MAX_SECONDS, whichever comes first;
- output: rendered as a stream, stopped as soon as it passes MAX_OUTPUT characters;
- values: ``range`` gives at most MAX_RANGE numbers; no string the template builds (``*``, ``+``,
  ``~``, ``%``, ``.format``, ``{% set %}`` blocks, macro output, str methods such as ``center`` or
  ``replace``, filters such as ``join``, ``indent``, ``wordwrap``, ``format``) may pass MAX_VALUE
  characters, checked before it is built where its size can be told beforehand; no list passes
  MAX_ITEMS; integers stay under MAX_INT_BITS bits; ``lipsum`` makes at most a few paragraphs.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from string import Formatter
from typing import Any, NoReturn, cast

import jinja2
from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace, generate_lorem_ipsum
from markupsafe import Markup

KINDS: tuple[str, ...] = ("telegram", "email", "push", "webhook", "console", "other")
HTML_KINDS: frozenset[str] = frozenset({"telegram", "email"})
MAX_OUTPUT = 64 * 1024  # characters one rendered title or body may have
MAX_VALUE = 4 * MAX_OUTPUT  # characters of any one string a template builds on the way
MAX_ITEMS = 64 * 1024  # items of any one list, tuple or mapping a template builds
MAX_RANGE = 10_000  # numbers one range() gives
MAX_STEPS = 100_000  # loop iterations, calls, filters and attribute accesses of one render
MAX_SECONDS = 0.5  # wall-clock time of one render
MAX_INT_BITS = 4096  # bits of an integer a template computes (2 ** 4096 has 1,234 digits)
_MAX_EXPONENT = 128
_MAX_LIPSUM = 10  # paragraphs
_MAX_ATTRIBUTE = 1000  # characters of urlize's target or rel, tojson's indent
_STEPS_FILTER = "bounded_steps"  # wraps the iterable of every {% for %}
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?")
_PRINTF = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([diouxXeEfFgGcrsab%])")


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


# -- the budget of one render -----------------------------------------------------------------------


@dataclass(slots=True)
class _Budget:
    """What one render has left: steps, and the monotonic time it must end by."""

    steps: int
    deadline: float


_budget: ContextVar[_Budget | None] = ContextVar("template_budget", default=None)


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


def _refuse(what: str, limit: int) -> NoReturn:
    raise SecurityError(f"{what} too large (over {limit:,})")


def _weight(value: Any, limit: int = MAX_VALUE) -> int:
    """About how many characters ``str(value)`` has (at least that many), counted no further than ``limit``.

    Containers are walked without remembering what was seen, so a list that holds one big string many
    times weighs what its text would; each element adds at least one, so the walk ends past ``limit``.
    """
    stack = [value]
    total = 0
    while stack and total <= limit:
        current = stack.pop()
        if isinstance(current, str | bytes):
            total += len(current)
        elif isinstance(current, int) and not isinstance(current, bool):
            total += current.bit_length() // 3 + 1
        elif isinstance(current, Namespace):
            total += 12
            stack.append(current._Namespace__attrs)
        elif isinstance(current, Mapping):
            total += 2 + 4 * len(current)
            if total <= limit:
                stack.extend(current.keys())
                stack.extend(current.values())
        elif isinstance(current, list | tuple | set | frozenset):
            total += 2 + 2 * len(current)
            if total <= limit:
                stack.extend(current)
        elif isinstance(current, range):
            total += 2 * len(current)
        else:
            total += 1
    return total


def _need_text(value: Any, what: str) -> None:
    """SecurityError when ``value`` as text would pass MAX_VALUE characters."""
    if _weight(value) > MAX_VALUE:
        _refuse(what, MAX_VALUE)


def _need_size(size: int, what: str) -> None:
    if size > MAX_VALUE:
        _refuse(what, MAX_VALUE)


def _need_bits(bits: int, what: str) -> None:
    if bits > MAX_INT_BITS:
        _refuse(f"{what} (bits)", MAX_INT_BITS)


def _need_items(count: int, what: str) -> None:
    if count > MAX_ITEMS:
        _refuse(what, MAX_ITEMS)


def _check_result(value: Any, what: str) -> None:
    """SecurityError when what an operation returned is past MAX_VALUE characters or MAX_ITEMS items."""
    if isinstance(value, str | bytes):
        if len(value) > MAX_VALUE:
            _refuse(f"{what} result", MAX_VALUE)
    elif isinstance(value, list | tuple | dict | set | frozenset) and len(value) > MAX_ITEMS:
        _refuse(f"{what} result", MAX_ITEMS)


def _int(value: Any, default: int = 0) -> int:
    return value if isinstance(value, int) else default


# -- str methods, % and str.format --------------------------------------------------------------------


def _method_args(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """``args`` for a call of ``method``, refused when a str method would build a string past MAX_VALUE."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(method, "__name__", "")
    if name in _WIDTH_METHODS:
        _need_size(_int(args[0] if args else kwargs.get("width")), f"str.{name} width")
    elif name == "expandtabs":
        tabsize = _int(args[0] if args else kwargs.get("tabsize", 8), 8)
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        _need_size(len(owner) + tabs * tabsize, "str.expandtabs result")
    elif name == "replace" and len(args) >= 2:
        count = _int(args[2] if len(args) > 2 else kwargs.get("count", -1), -1)
        _need_size(_replaced_size(owner, args[0], args[1], count), "str.replace result")
    elif name == "join" and args:
        items = list(args[0])
        _need_size(_weight(items) + len(owner) * len(items), "str.join result")
        return (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str | bytes)), default=1)
        _need_size(len(owner) * max(longest, 1), "str.translate result")
    return args


def _replaced_size(text: Any, old: Any, new: Any, count: int) -> int:
    """The length of ``text.replace(old, new, count)``, told without building it."""
    kind = type(text)
    if not isinstance(text, str | bytes) or not isinstance(old, kind) or not isinstance(new, kind):
        return 0
    found: int = len(text) + 1 if not old else cast(Any, text).count(old)
    if count >= 0:
        found = min(found, count)
    return len(text) + found * (len(new) - len(old))


def _printf_size(template: str, values: Any) -> int:
    """At least the length of ``template % values``, told without building it."""
    mapping = values if isinstance(values, Mapping) else None
    args = list(values) if isinstance(values, tuple) else [values]
    widest = max((arg for arg in args if isinstance(arg, int) and not isinstance(arg, bool)), default=0)
    heaviest = max((_weight(arg) for arg in args), default=0)
    total = len(template)
    for match in _PRINTF.finditer(template):
        key, width, precision, kind = match.groups()
        if kind == "%":
            continue
        padding = [widest if part == "*" else int(part) for part in (width, precision) if part]
        weight = _weight(mapping.get(key)) if mapping is not None and key is not None else heaviest
        total += max([weight, *padding])
        if total > MAX_VALUE:
            break
    return total


def _check_printf(template: Any, values: Any) -> None:
    if isinstance(template, str):
        _need_size(_printf_size(template, values), "% formatting result")


class _SizedFields(Formatter):
    """str.format fields refused when a width or precision, or the text so far, passes MAX_VALUE."""

    _size = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        match = _SPEC.match(format_spec)
        for digits in match.groups() if match else ():
            if digits and (len(digits) > 7 or int(digits) > MAX_VALUE):
                _refuse("format width", MAX_VALUE)
        _need_text(value, "format field")
        text = super().format_field(value, format_spec)
        self._size += len(text)
        _need_size(self._size, "str.format result")
        return text


class _BoundedFormatter(_SizedFields, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_SizedFields, SandboxedEscapeFormatter):
    pass


# -- globals and filters ------------------------------------------------------------------------------


def _range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise OverflowError(f"range too big: the sandbox gives at most {MAX_RANGE:,} numbers")
    return numbers


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> str:
    if _int(n) > _MAX_LIPSUM or _int(max) > 1000:
        _refuse("lipsum", _MAX_LIPSUM)
    return str(generate_lorem_ipsum(n, html, min, max))


@jinja2.pass_context
def _steps(_: Context, iterable: Iterable[Any]) -> Iterator[Any]:
    """The iterable of a {% for %}: one step per iteration (pass_context: never folded at compile time)."""
    for value in iterable:
        _tick()
        yield value


def _text(value: Any) -> str:
    """``value`` as text, refused first when that text would pass MAX_VALUE characters."""
    if isinstance(value, str):
        return value
    _need_text(value, "argument")
    return str(value)


# The checks of filters whose output can outgrow their input: the filter's own arguments (after any
# context, eval context or environment), defaults as the filter's.


def _check_center(_value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    _need_size(_int(width), "center width")


def _check_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = _text(s)
    pad = len(width) if isinstance(width, str) else _int(width)
    _need_size(len(text) + (text.count("\n") + 1) * pad, "indent result")


def _check_wordwrap(
    s: Any, width: Any = 79, _long: Any = True, wrapstring: Any = None, *_: Any, **__: Any
) -> None:
    text = _text(s)
    lines = len(text) // max(_int(width, 79), 1) + text.count(" ") + text.count("\n") + 1
    _need_size(len(text) + lines * (len(wrapstring) if isinstance(wrapstring, str) else 1), "wordwrap result")


def _check_replace(s: Any, old: Any = "", new: Any = "", count: Any = None, *_: Any, **__: Any) -> None:
    _need_size(_replaced_size(_text(s), _text(old), _text(new), _int(count, -1)), "replace result")


def _check_format(value: Any, *args: Any, **kwargs: Any) -> None:
    _check_printf(_text(value), kwargs or args)


def _check_batch(_value: Any, count: Any = 1, *_: Any, **__: Any) -> None:
    if _int(count) > MAX_ITEMS:
        _refuse("batch or slice count", MAX_ITEMS)


def _check_urlize(
    _value: Any, _trim: Any = None, _no: Any = False, target: Any = None, rel: Any = None, *_: Any, **__: Any
) -> None:
    if sum(len(part) for part in (target, rel) if isinstance(part, str)) > _MAX_ATTRIBUTE:
        _refuse("urlize target or rel", _MAX_ATTRIBUTE)


def _check_tojson(_value: Any, indent: Any = None, *_: Any, **__: Any) -> None:
    if (len(indent) if isinstance(indent, str) else _int(indent)) > 16:
        _refuse("tojson indent", 16)


def _check_sum(iterable: Any, _attribute: Any = None, start: Any = 0, *_: Any, **__: Any) -> None:
    """sum with a list start concatenates lists: refused past MAX_ITEMS items in all."""
    if isinstance(start, int | float) or not isinstance(iterable, list | tuple):
        return
    if sum(len(item) for item in iterable if isinstance(item, list | tuple | str)) > MAX_ITEMS:
        _refuse("sum result", MAX_ITEMS)


# Filters that turn their input into text (its weight is checked first), and the extra checks of those
# whose output can outgrow their input, given the filter's own arguments (after any pass_* argument).
_TEXT_FILTERS = frozenset(
    {
        "capitalize", "center", "e", "escape", "filesizeformat", "forceescape", "format", "indent", "list",
        "lower", "pprint", "replace", "safe", "string", "striptags", "title", "tojson", "trim", "truncate",
        "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    }
)  # fmt: skip
_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": _check_center,
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "replace": _check_replace,
    "format": _check_format,
    "batch": _check_batch,
    "slice": _check_batch,
    "urlize": _check_urlize,
    "tojson": _check_tojson,
    "sum": _check_sum,
}


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` counted as a step, its input and arguments checked first and its result after."""
    passed = getattr(func, "jinja_pass_arg", None) is not None  # context, eval context or environment
    check = _FILTER_CHECKS.get(name)
    stringifies = name in _TEXT_FILTERS

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _tick()
        own = args[1:] if passed else args
        if stringifies and own:
            _need_text(own[0], f"{name} input")
        if check is not None:
            check(*own, **kwargs)
        if name == "join":
            args, kwargs = _join_args(args, kwargs), {}
        result = func(*args, **kwargs)
        _check_result(result, name)
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
    _need_size(_weight(items) + _weight(separator) * len(items), "join result")
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
            _refuse("captured output", MAX_VALUE)


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
        _need_text(value, "printed value")
    return value


class _Sandbox(ImmutableSandboxedEnvironment):
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
        _need_size(sum(_weight(part) for part in parts), "concatenation (~)")
        return join(parts)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _tick()
        if operator == "**" and isinstance(right, int):
            if abs(right) > _MAX_EXPONENT:
                raise SecurityError("exponent too large")
            if isinstance(left, int):
                _need_bits(left.bit_length() * right, "power")
        elif operator == "*":
            for sized, count in ((left, right), (right, left)):
                if isinstance(sized, str | list | tuple) and isinstance(count, int):
                    limit = MAX_VALUE if isinstance(sized, str) else MAX_ITEMS
                    if len(sized) * count > limit:
                        raise SecurityError(f"repetition too large (over {limit:,})")
            if isinstance(left, int) and isinstance(right, int):
                _need_bits(left.bit_length() + right.bit_length(), "product")
        elif operator == "+":
            if isinstance(left, str) and isinstance(right, str):
                _need_size(len(left) + len(right), "string")
            elif isinstance(left, list | tuple) and isinstance(right, list | tuple):
                _need_items(len(left) + len(right), "list")
        elif operator == "%":
            _check_printf(left, right)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _tick()
        if isinstance(__obj, LoopContext) and args:  # loop(children) in a recursive loop
            args = (_steps(__context, args[0]), *args[1:])
        args = _method_args(__obj, args, kwargs)
        result = super().call(__context, __obj, *args, **kwargs)
        _check_result(result, getattr(__obj, "__name__", "call"))
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
                _BoundedEscapeFormatter(self, escape=owner.escape)
                if isinstance(owner, Markup)
                else _BoundedFormatter(self)
            )
            return type(owner)(formatter.vformat(owner, args, kwargs))

        return functools.update_wrapper(wrapper, value)


def _environment(autoescape: bool) -> _Sandbox:
    return _Sandbox(autoescape=autoescape, undefined=_Undefined, keep_trailing_newline=False)


_TEXT = _environment(autoescape=False)
_HTML = _environment(autoescape=True)


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


def _compile(env: _Sandbox, kind: str, part: str, source: str | None) -> jinja2.Template | None:
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
    token = _budget.set(_Budget(MAX_STEPS, time.monotonic() + MAX_SECONDS))
    chunks: list[str] = []
    size = 0
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
        _budget.reset(token)
    return "".join(chunks)
