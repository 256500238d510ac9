"""Durations as the configuration and the environment write them: ``500ms``, ``30s``, ``5m``, ``1h``."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: object) -> float:
    """Seconds from ``500ms``, ``30s``, ``5m``, ``1h``, ``2d`` or a bare number of seconds."""
    if isinstance(value, bool):
        raise ValueError(f"malformed duration {value!r}")
    if isinstance(value, int | float):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"malformed duration {value!r} (use e.g. 500ms, 30s, 5m, 1h)")
    return float(match.group(1)) * _UNIT[match.group(2)]
