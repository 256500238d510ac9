"""The limits of a template render and the pure checks against them (no Jinja2 state, no I/O).

The checks raise :class:`jinja2.exceptions.SecurityError` when a value a template is about to build, or
has just built, would pass a limit; :mod:`alerts.delivery.sandbox` calls them while a template renders.
Where a size can be told beforehand (str methods, ``%``, ``str.format``, filters), it is checked before
the value is built.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from string import Formatter
from typing import Any, NoReturn, cast

from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEscapeFormatter, SandboxedFormatter
from jinja2.utils import Namespace

MAX_OUTPUT = 64 * 1024  # characters one rendered title or body may have
MAX_VALUE = 4 * MAX_OUTPUT  # characters of any one string a template builds on the way
MAX_ITEMS = 64 * 1024  # items of any one list, tuple or mapping a template builds
MAX_RANGE = 10_000  # numbers one range() gives
MAX_STEPS = 100_000  # loop iterations, calls, filters and attribute accesses of one render
MAX_SECONDS = 0.5  # wall-clock time of one render
MAX_INT_BITS = 4096  # bits of an integer a template computes (2 ** 4096 has 1,234 digits)
MAX_EXPONENT = 128  # of ``**``
MAX_LIPSUM = 10  # paragraphs
_MAX_ATTRIBUTE = 1000  # characters of urlize's target or rel, tojson's indent
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d*)[,_]?(?:\.(\d+))?")
_PRINTF = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?([diouxXeEfFgGcrsab%])")


def refuse(what: str, limit: int) -> NoReturn:
    """Raise SecurityError: ``what`` is over ``limit``."""
    raise SecurityError(f"{what} too large (over {limit:,})")


def weight(value: Any, limit: int = MAX_VALUE) -> int:
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


def need_text(value: Any, what: str) -> None:
    """SecurityError when ``value`` as text would pass MAX_VALUE characters."""
    if weight(value) > MAX_VALUE:
        refuse(what, MAX_VALUE)


def need_size(size: int, what: str) -> None:
    """SecurityError when a string of ``size`` characters would pass MAX_VALUE."""
    if size > MAX_VALUE:
        refuse(what, MAX_VALUE)


def need_bits(bits: int, what: str) -> None:
    """SecurityError when an integer of ``bits`` bits would pass MAX_INT_BITS."""
    if bits > MAX_INT_BITS:
        refuse(f"{what} (bits)", MAX_INT_BITS)


def need_items(count: int, what: str) -> None:
    """SecurityError when a list of ``count`` items would pass MAX_ITEMS."""
    if count > MAX_ITEMS:
        refuse(what, MAX_ITEMS)


def check_result(value: Any, what: str) -> None:
    """SecurityError when what an operation returned is past MAX_VALUE characters or MAX_ITEMS items."""
    if isinstance(value, str | bytes):
        if len(value) > MAX_VALUE:
            refuse(f"{what} result", MAX_VALUE)
    elif isinstance(value, list | tuple | dict | set | frozenset) and len(value) > MAX_ITEMS:
        refuse(f"{what} result", MAX_ITEMS)


def as_int(value: Any, default: int = 0) -> int:
    """``value`` when it is an int (a template's argument), else ``default``."""
    return value if isinstance(value, int) else default


# -- str methods, % and str.format --------------------------------------------------------------------


def method_args(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """``args`` for a call of ``method``, refused when a str method would build a string past MAX_VALUE."""
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, str | bytes):
        return args
    name = getattr(method, "__name__", "")
    if name in _WIDTH_METHODS:
        need_size(as_int(args[0] if args else kwargs.get("width")), f"str.{name} width")
    elif name == "expandtabs":
        tabsize = as_int(args[0] if args else kwargs.get("tabsize", 8), 8)
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        need_size(len(owner) + tabs * tabsize, "str.expandtabs result")
    elif name == "replace" and len(args) >= 2:
        count = as_int(args[2] if len(args) > 2 else kwargs.get("count", -1), -1)
        need_size(_replaced_size(owner, args[0], args[1], count), "str.replace result")
    elif name == "join" and args:
        items = list(args[0])
        need_size(weight(items) + len(owner) * len(items), "str.join result")
        return (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        longest = max((len(v) for v in args[0].values() if isinstance(v, str | bytes)), default=1)
        need_size(len(owner) * max(longest, 1), "str.translate result")
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
    heaviest = max((weight(arg) for arg in args), default=0)
    total = len(template)
    for match in _PRINTF.finditer(template):
        key, width, precision, kind = match.groups()
        if kind == "%":
            continue
        padding = [widest if part == "*" else int(part) for part in (width, precision) if part]
        weighs = weight(mapping.get(key)) if mapping is not None and key is not None else heaviest
        total += max([weighs, *padding])
        if total > MAX_VALUE:
            break
    return total


def check_printf(template: Any, values: Any) -> None:
    """SecurityError when ``template % values`` would pass MAX_VALUE characters."""
    if isinstance(template, str):
        need_size(_printf_size(template, values), "% formatting result")


class _SizedFields(Formatter):
    """str.format fields refused when a width or precision, or the text so far, passes MAX_VALUE."""

    _size = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        match = _SPEC.match(format_spec)
        for digits in match.groups() if match else ():
            if digits and (len(digits) > 7 or int(digits) > MAX_VALUE):
                refuse("format width", MAX_VALUE)
        need_text(value, "format field")
        text = super().format_field(value, format_spec)
        self._size += len(text)
        need_size(self._size, "str.format result")
        return text


class BoundedFormatter(_SizedFields, SandboxedFormatter):
    """The sandbox's str.format formatter, its fields and result bounded."""


class BoundedEscapeFormatter(_SizedFields, SandboxedEscapeFormatter):
    """The sandbox's Markup.format formatter, its fields and result bounded."""


# -- filters ------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    """``value`` as text, refused first when that text would pass MAX_VALUE characters."""
    if isinstance(value, str):
        return value
    need_text(value, "argument")
    return str(value)


# The checks of filters whose output can outgrow their input: the filter's own arguments (after any
# context, eval context or environment), defaults as the filter's.


def _check_center(_value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    need_size(as_int(width), "center width")


def _check_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    text = _text(s)
    pad = len(width) if isinstance(width, str) else as_int(width)
    need_size(len(text) + (text.count("\n") + 1) * pad, "indent result")


def _check_wordwrap(
    s: Any, width: Any = 79, _long: Any = True, wrapstring: Any = None, *_: Any, **__: Any
) -> None:
    text = _text(s)
    lines = len(text) // max(as_int(width, 79), 1) + text.count(" ") + text.count("\n") + 1
    need_size(len(text) + lines * (len(wrapstring) if isinstance(wrapstring, str) else 1), "wordwrap result")


def _check_replace(s: Any, old: Any = "", new: Any = "", count: Any = None, *_: Any, **__: Any) -> None:
    need_size(_replaced_size(_text(s), _text(old), _text(new), as_int(count, -1)), "replace result")


def _check_format(value: Any, *args: Any, **kwargs: Any) -> None:
    check_printf(_text(value), kwargs or args)


def _check_batch(_value: Any, count: Any = 1, *_: Any, **__: Any) -> None:
    if as_int(count) > MAX_ITEMS:
        refuse("batch or slice count", MAX_ITEMS)


def _check_urlize(
    _value: Any, _trim: Any = None, _no: Any = False, target: Any = None, rel: Any = None, *_: Any, **__: Any
) -> None:
    if sum(len(part) for part in (target, rel) if isinstance(part, str)) > _MAX_ATTRIBUTE:
        refuse("urlize target or rel", _MAX_ATTRIBUTE)


def _check_tojson(_value: Any, indent: Any = None, *_: Any, **__: Any) -> None:
    if (len(indent) if isinstance(indent, str) else as_int(indent)) > 16:
        refuse("tojson indent", 16)


def _check_sum(iterable: Any, _attribute: Any = None, start: Any = 0, *_: Any, **__: Any) -> None:
    """sum with a list start concatenates lists: refused past MAX_ITEMS items in all."""
    if isinstance(start, int | float) or not isinstance(iterable, list | tuple):
        return
    if sum(len(item) for item in iterable if isinstance(item, list | tuple | str)) > MAX_ITEMS:
        refuse("sum result", MAX_ITEMS)


# Filters that turn their input into text (its weight is checked first), and the extra checks of those
# whose output can outgrow their input, given the filter's own arguments (after any pass_* argument).
TEXT_FILTERS = frozenset(
    {
        "capitalize", "center", "e", "escape", "filesizeformat", "forceescape", "format", "indent", "list",
        "lower", "pprint", "replace", "safe", "string", "striptags", "title", "tojson", "trim", "truncate",
        "upper", "urlencode", "urlize", "wordcount", "wordwrap", "xmlattr",
    }
)  # fmt: skip
FILTER_CHECKS: dict[str, Callable[..., None]] = {
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
