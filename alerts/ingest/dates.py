"""Dates as news sources write them -> aware UTC datetimes: ISO 8601, RFC 2822, epoch numbers."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

_EPOCH = re.compile(r"[+-]?\d{9,}(?:\.\d+)?")


def parse_time(value: object) -> datetime | None:
    """An aware UTC datetime from ISO 8601, RFC 2822 or epoch seconds/milliseconds; None if unreadable.

    Times without a zone are taken as UTC; epochs of zero or less mean "unknown" and give None.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return _epoch(float(value))
    if not isinstance(value, str) or not (text := " ".join(value.split())):
        return None
    if _EPOCH.fullmatch(text):
        return _epoch(float(text))
    try:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            moment = parsedate_to_datetime(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, TypeError, IndexError, OverflowError):
        return None


def _epoch(seconds: float) -> datetime | None:
    """Epoch seconds, milliseconds or microseconds (told apart by size) as UTC."""
    if not math.isfinite(seconds) or seconds <= 0:
        return None
    if seconds >= 1e14:
        seconds /= 1e6
    elif seconds >= 1e11:  # 1e11 s is the year 5138; 1e11 ms is 1973
        seconds /= 1e3
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        return None
