"""Every YAML example of the README loads as written: the feeds, the subscriptions (whole files and the
fragments that show one key), and regions.yaml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from alerts.config.load import load_config

README = Path(__file__).resolve().parents[2] / "README.md"
ENV = {
    "TELEGRAM_BOT_TOKEN": "123456789:AAbbccddeeffgghhiijjkkllmmnnooppqqrr",
    "SMTP_PASSWORD": "not-a-real-password",
}


def yaml_blocks() -> list[str]:
    """The README's ```yaml blocks, in order."""
    return re.findall(r"^```yaml\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)


def _of(top: str) -> list[str]:
    return [block for block in yaml_blocks() if re.match(rf"^{top}:", block, re.M)]


def test_the_readme_has_the_examples_this_test_loads() -> None:
    """The blocks are found: one feeds.yaml, subscriptions examples, a fragment and a regions.yaml."""
    blocks = yaml_blocks()
    assert len(_of("feeds")) == 1 and len(_of("subscribers")) >= 2
    assert any(block.startswith("  - ") for block in blocks), "the query fragment"
    assert any(block.startswith("MENA:") for block in blocks), "the regions.yaml example"


@pytest.mark.parametrize("block", [b for b in yaml_blocks() if not b.startswith("feeds:")])
def test_each_example_loads_as_written(block: str, tmp_path: Path) -> None:
    """A subscriptions example (a fragment goes under the first example's subscribers) or regions.yaml
    loads beside the README's feeds.yaml, with no problem."""
    [feeds] = _of("feeds")
    (tmp_path / "feeds.yaml").write_text(feeds, encoding="utf-8")
    first_subscriptions = _of("subscribers")[0]
    if block.startswith("MENA:"):
        (tmp_path / "regions.yaml").write_text(block, encoding="utf-8")
        subscriptions = first_subscriptions
    elif block.startswith("  - "):
        head = first_subscriptions.split("subscriptions:")[0]
        subscriptions = f"{head}subscriptions:\n{block}"
    else:
        subscriptions = block
    (tmp_path / "subscriptions.yaml").write_text(subscriptions, encoding="utf-8")
    config = load_config(tmp_path, ENV)
    assert len(config.feeds) == 6 and config.subscribers
    if block.startswith("MENA:"):
        assert config.taxonomy.countries("Europe") >= {"NO", "SE"}
        assert config.taxonomy.parent("Palestine") == "MENA"
