"""Whether an alert goes out now or waits for a digest: quiet hours, hourly caps, bursts, digests. Pure.

Rules, in order, for one subscriber (times in the subscriber's ``timezone``):

1. ``digest: hourly`` or ``daily@08:00``: no instant alerts; everything waits for the next digest.
2. ``quiet_hours: "23:00-07:00"``: alerts wait until the quiet hours end.
3. ``max_per_hour: N``: beyond N instant alerts in the last hour, alerts wait for the hour to pass.
4. ``burst`` (default 5 in 60 s): beyond N instant alerts within M seconds, the rest wait for the
   end of that window.

A ``flash`` alert breaks through all of them. What waits is sent as one digest message listing the
headlines with their links when its time comes, instead of a flood.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from alerts.models import Pacing

__all__ = ["Decision", "Pacing", "clock", "decide", "digest_schedule", "quiet_hours"]

_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True, slots=True)
class Decision:
    """Send now, or hold until ``release_at`` (unix seconds) for ``reason``."""

    send: bool
    release_at: float | None = None
    reason: str | None = None


def clock(text: str) -> time:
    """``HH:MM`` -> a time; ValueError with a clear message otherwise."""
    match = _CLOCK.match(text.strip())
    if not match:
        raise ValueError(f"malformed time {text!r} (use HH:MM)")
    return time(int(match.group(1)), int(match.group(2)))


def quiet_hours(text: str) -> tuple[time, time]:
    """``"23:00-07:00"`` -> (start, end)."""
    start, sep, end = text.partition("-")
    if not sep:
        raise ValueError(f"malformed quiet hours {text!r} (use HH:MM-HH:MM)")
    return clock(start), clock(end)


def digest_schedule(text: str) -> str:
    """Validate ``hourly`` or ``daily@HH:MM``."""
    if text == "hourly" or (text.startswith("daily@") and clock(text.removeprefix("daily@"))):
        return text
    raise ValueError(f"malformed digest {text!r} (use hourly or daily@HH:MM)")


def decide(pacing: Pacing, priority: str, now: float, recent: Sequence[float]) -> Decision:
    """Whether an alert goes now; ``recent`` are the times of this subscriber's instant alerts."""
    if priority == "flash":
        return Decision(True)
    zone = ZoneInfo(pacing.timezone)
    local = datetime.fromtimestamp(now, UTC).astimezone(zone)
    if pacing.digest:
        return Decision(False, _next_digest(pacing.digest, local), "digest")
    if pacing.quiet_hours and _in_quiet(pacing.quiet_hours, local.time()):
        return Decision(False, _quiet_end(pacing.quiet_hours, local), "quiet")
    last_hour = sorted(t for t in recent if t > now - 3600)
    if pacing.max_per_hour is not None and len(last_hour) >= pacing.max_per_hour:
        return Decision(False, last_hour[-pacing.max_per_hour] + 3600, "max_per_hour")
    if pacing.burst_count:
        window = [t for t in last_hour if t > now - pacing.burst_within]
        if len(window) >= pacing.burst_count:
            return Decision(False, window[-pacing.burst_count] + pacing.burst_within, "burst")
    return Decision(True)


def _in_quiet(hours: tuple[time, time], moment: time) -> bool:
    start, end = hours
    if start <= end:
        return start <= moment < end
    return moment >= start or moment < end  # across midnight


def _quiet_end(hours: tuple[time, time], local: datetime) -> float:
    end = local.replace(hour=hours[1].hour, minute=hours[1].minute, second=0, microsecond=0)
    if end <= local:
        end += timedelta(days=1)
    return end.timestamp()


def _next_digest(schedule: str, local: datetime) -> float:
    if schedule == "hourly":
        return (local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)).timestamp()
    at = clock(schedule.removeprefix("daily@"))
    moment = local.replace(hour=at.hour, minute=at.minute, second=0, microsecond=0)
    if moment <= local:
        moment += timedelta(days=1)
    return moment.timestamp()
