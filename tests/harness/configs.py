"""Writes feeds.yaml and subscriptions.yaml for a test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_config(
    directory: Path,
    feeds: list[dict[str, Any]],
    subscribers: list[dict[str, Any]],
    subscriptions: list[dict[str, Any]],
) -> None:
    """Write both files into ``directory``."""
    (directory / "feeds.yaml").write_text(yaml.safe_dump({"feeds": feeds}, sort_keys=False))
    (directory / "subscriptions.yaml").write_text(
        yaml.safe_dump({"subscribers": subscribers, "subscriptions": subscriptions}, sort_keys=False)
    )
