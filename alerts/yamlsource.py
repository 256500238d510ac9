"""YAML -> plain data with the line of every node, ``${NAME}`` interpolation and duplicate-key checks."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from alerts.errors import Problem

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

Path_ = tuple[str | int, ...]


@dataclass
class Document:
    """A loaded YAML file: its data, the line of each node path, and the secrets interpolated into it."""

    file: str
    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    scalars: dict[Path_, tuple[int, int, str | None]] = field(default_factory=dict)  # line, column, style
    secrets: set[str] = field(default_factory=set)
    problems: list[Problem] = field(default_factory=list)

    def line_of(self, path: Path_) -> int:
        """The line of the deepest known node on ``path`` (1 when nothing is known)."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(tuple(path[:end]))
            if line is not None:
                return line
        return 1

    def problem(self, path: Path_, message: str) -> Problem:
        """A problem located at ``path``."""
        return Problem(self.file, self.line_of(path), message)

    def problem_at(self, path: Path_, offset: int, message: str) -> Problem:
        """A problem at character ``offset`` (0-based) inside the string scalar at ``path``."""
        scalar = self.scalars.get(path)
        if scalar is None:
            return self.problem(path, message)
        line, column, style = scalar
        if style in ("|", ">"):
            return Problem(self.file, line + 1, message)
        return Problem(self.file, line, message, column + (1 if style in ("'", '"') else 0) + offset)


def load(path: Path, env: Mapping[str, str] | None = None) -> Document:
    """Read ``path``; syntax errors, duplicate keys and unset variables become problems, not exceptions."""
    env = os.environ if env is None else env
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Document(name, None, problems=[Problem(name, 1, "file not found")])
    except (OSError, UnicodeDecodeError) as exc:
        return Document(name, None, problems=[Problem(name, 1, f"cannot read: {exc}")])
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return Document(name, None, problems=[Problem(name, line, f"invalid YAML: {message}")])
    except yaml.YAMLError as exc:
        return Document(name, None, problems=[Problem(name, 1, f"invalid YAML: {exc}")])
    doc = Document(name, None)
    if node is not None:
        doc.data = _build(node, (), doc, env)
    return doc


def _build(node: yaml.Node, path: Path_, doc: Document, env: Mapping[str, str]) -> Any:
    doc.lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            if not isinstance(key, str | int):
                key = str(key)
            if key in result:
                doc.problems.append(Problem(doc.file, key_node.start_mark.line + 1, f"duplicate key {key!r}"))
            result[key] = _build(value_node, (*path, key), doc, env)
            doc.lines[(*path, key)] = key_node.start_mark.line + 1
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_build(child, (*path, index), doc, env) for index, child in enumerate(node.value)]
    value = _scalar(node)
    doc.scalars[path] = (node.start_mark.line + 1, node.start_mark.column + 1, getattr(node, "style", None))
    if isinstance(value, str) and "$" in value:
        value = _interpolate(value, path, doc, env)
    return value


def _scalar(node: yaml.Node) -> Any:
    """The Python value of a scalar node (int, bool, str, ...), resolved as SafeLoader would."""
    return yaml.constructor.SafeConstructor().construct_object(node, deep=True)


def _interpolate(value: str, path: Path_, doc: Document, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            doc.problems.append(doc.problem(path, f"environment variable {name} is not set"))
            return match.group(0)
        secret = env[name]
        if secret:
            doc.secrets.add(secret)
        return secret

    return _VAR.sub(substitute, value)
