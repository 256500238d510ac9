"""How each channel kind shows a story (pure rendering): an update is titled ``Update:`` and lists what
changed; a first alert names the other feeds that reported its story; templates get the story's fields."""

from __future__ import annotations

import html
import json
from dataclasses import replace

import pytest

from alerts.delivery import ids, plain
from alerts.delivery.digest_render import digest_payload, render_digest
from alerts.delivery.digests import digest as fold
from alerts.delivery.fitting import utf16
from alerts.delivery.render import TELEGRAM_LIMIT, Priority, render
from alerts.delivery.story_render import MAX_SOURCES
from alerts.delivery.templates import compile_template
from alerts.models import Alert
from alerts.text import digest
from tests.delivery.test_render import NASTY, SENT_AT, TGRAM, make_alert

URLS = {
    "telegram": TGRAM,
    "email": "mailtos://user:pass@example.com?to=desk@example.com",
    "push": "ntfy://ntfy.example/breaking",
    "console": "console://",
    "webhook": "json://hook.example/alerts",
}
CHANGES = ("12 killed (was 8)", "confirmed", "new place: Tyre")
CHANGED = "What changed: 12 killed (was 8); confirmed; new place: Tyre"
ALSO = "Also reported by: reuters, bbc"


def _update(**changes: object) -> Alert:
    return make_alert(update=2, changes=CHANGES, sources=("Wire", "reuters"), **changes)


def _title_and_text(kind: str, alert: Alert) -> tuple[str, str]:
    """The message's title and its text as a reader sees it (HTML unescaped)."""
    message = render(alert, URLS[kind], sent_at=SENT_AT)
    if kind == "telegram":
        head, _, rest = message.body.partition("\n")
        return html.unescape(head.removeprefix("<b>").removesuffix("</b>")), html.unescape(rest)
    return message.title, html.unescape(message.body)


@pytest.mark.parametrize("kind", ["telegram", "email", "push", "console"])
def test_an_update_is_titled_update_and_says_what_changed(kind: str) -> None:
    """The publisher's title, exactly, after ``Update: ``; the changes listed in the body."""
    title, text = _title_and_text(kind, _update(title=NASTY))
    assert title == f"Update: {NASTY}"
    assert CHANGED in text
    assert "Also reported by" not in text  # an update does not repeat the sources


@pytest.mark.parametrize("kind", ["telegram", "email", "push", "console"])
def test_a_first_alert_names_the_other_feeds_that_reported_its_story(kind: str) -> None:
    """Its own feed is not named again; the title is the publisher's, untouched."""
    alert = make_alert(title=NASTY, sources=("reuters", "Wire", "bbc", "reuters"))
    title, text = _title_and_text(kind, alert)
    assert title == NASTY
    assert ALSO in text and "What changed" not in text


@pytest.mark.parametrize("kind", ["telegram", "email", "push", "console"])
def test_a_story_with_one_source_and_no_update_renders_as_before(kind: str) -> None:
    """Nothing about the story is said of a first alert only its own feed reported."""
    plain_alert = make_alert()
    assert render(make_alert(sources=("Wire",)), URLS[kind], sent_at=SENT_AT) == render(
        plain_alert, URLS[kind], sent_at=SENT_AT
    )


def test_sources_given_at_send_time_win_over_the_alerts() -> None:
    """The sender's fresher sources are the ones named; many are cut with a count of the rest."""
    alert = make_alert(sources=("Wire",))
    message = render(alert, URLS["console"], sources=["Wire", "reuters", "bbc"])
    assert ALSO in message.body
    many = [f"feed{n}" for n in range(MAX_SOURCES + 3)]
    body = render(alert, URLS["console"], sources=["Wire", *many]).body
    assert f"Also reported by: {', '.join(many[:MAX_SOURCES])} (+3 more)" in body


def test_a_telegram_update_stays_within_the_limit_and_keeps_what_changed() -> None:
    """A huge summary is cut first: the headline and the changes stay, the whole within 4096 units."""
    message = render(_update(summary="word & " * 3000), TGRAM, sent_at=SENT_AT)
    assert utf16(message.body) <= TELEGRAM_LIMIT
    assert message.body.startswith("<b>Update: Earthquake hits the coast</b>\n" + CHANGED)


def test_the_webhook_document_carries_the_story() -> None:
    """``story``, ``update``, ``update_of`` (the first alert's delivery to the same URL), ``sources`` and
    ``changes``; a first alert's ``update_of`` is null."""
    target = digest(URLS["webhook"])
    update = json.loads(render(_update(), URLS["webhook"], sent_at=SENT_AT).body)
    assert update["story"] == "story-1" and update["update"] is True
    assert update["update_of"] == ids.delivery_id("ops", "story-1", target)
    assert (update["sources"], update["changes"]) == (["Wire", "reuters"], list(CHANGES))
    first = json.loads(render(make_alert(), URLS["webhook"], sent_at=SENT_AT, target="t1").body)
    assert (first["update"], first["update_of"], first["changes"]) == (False, None, [])
    other = json.loads(render(_update(), URLS["webhook"], sent_at=SENT_AT, target="t1").body)
    assert other["update_of"] == ids.delivery_id("ops", "story-1", "t1")


def test_templates_get_the_story_and_shape_the_title_themselves() -> None:
    """``sources``, ``update``, ``update_of`` and ``changes`` are variables; a title template is used as
    it renders (here it says Update itself)."""
    template = compile_template(
        "console",
        "{% if update %}UPDATE {{ update }}: {% endif %}{{ alert.title }}",
        "{{ sources|join(',') }}|{{ update_of }}|{{ changes|join(';') }}",
    )
    message = render(
        _update(), "console://", template=template, sources=["Wire", "reuters", "bbc"], target="t"
    )
    assert message.template_error is None
    assert message.title == "UPDATE 2: Earthquake hits the coast"
    assert message.body == f"Wire,reuters,bbc|{ids.delivery_id('ops', 'story-1', 't')}|{';'.join(CHANGES)}"
    first = render(make_alert(), "console://", template=template, target="t")
    assert (first.title, first.body) == ("Earthquake hits the coast", "|None|")


def test_plain_text_of_an_update() -> None:
    """The plain rendering: the title prefixed, the changes first in the body."""
    alert = _update()
    assert plain.title(alert) == "Update: Earthquake hits the coast"
    assert plain.body(alert).startswith(CHANGED + "\n\n")


def test_a_digest_shows_held_updates_as_updates() -> None:
    """Every kind's digest lists a held update as ``Update: <headline>``; its webhook document says which
    first delivery it updates."""
    first = make_alert(title="Quake hits coast", fetched_at=1.0)
    update = replace(
        first, item="item-2", title="Quake toll rises", update=1, changes=CHANGES, fetched_at=2.0
    )
    held = fold("ops", [first, update])
    for kind in ("telegram", "email", "push", "console"):
        [part] = render_digest(held, URLS[kind], sent_at=SENT_AT)
        assert "Update: Quake toll rises" in html.unescape(part.message.body), kind
        assert "Update: Quake hits coast" not in html.unescape(part.message.body), kind
    documents: list[dict[str, object]] = digest_payload(held, Priority.NORMAL, SENT_AT, "t")["alerts"]  # type: ignore[assignment]
    assert [(d["update"], d["update_of"]) for d in documents] == [
        (False, None),
        (True, ids.delivery_id("ops", "story-1", "t")),
    ]
