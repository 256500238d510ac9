"""Hostile subscriber templates are stopped while they render, within a second, and the delivery falls
back to the default rendering (issue 12); ordinary templates render as they always did."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from alerts.delivery.render import render
from alerts.delivery.templates import MAX_OUTPUT, MAX_STEPS, TemplateFailure, compile_template
from alerts.models import Alert

SENT_AT = 1714557700.0
MAIL = "mailto://u:p@ex.com"
PUSH = "ntfy://ntfy.example/t"


def make_alert() -> Alert:
    return Alert(
        subscriber="ops",
        story="story-1",
        item="item-1",
        feed="Wire",
        title="Earthquake hits the coast",
        summary="A strong earthquake struck the coast early on Wednesday, officials said.",
        link="https://news.example/quake",
        fetched_at=SENT_AT - 60,
        extra={"categories": ["Quake", "Chile"]},
    )


HOSTILE = [
    # the three
    "{% for i in range(300000000) %}{% endfor %}",
    "{{ 'x' * 100000000 }}",
    "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}",
    # loops with nothing to print: only the step budget stops them
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "{% set r = range(10000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}",
    "{% for x in [1] recursive %}{% if loop.depth < 40 %}{{ loop([1, 2]) }}{% endif %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30)|length }}",
    # strings built bigger and bigger, never printed whole
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "{% set ns = namespace(n=3) %}{% for i in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}",
    "{% set s = 'x' * 60000 %}{% set x %}{% for i in range(9000) %}{{ s }}{% endfor %}{% endset %}",
    "{% set x %}{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}{% endset %}",
    # one operation asked for a huge result
    "{{ '{:>100000000}'.format('x') }}",
    "{{ '{:{}}'.format('x', 100000000) }}",
    "{{ '%100000000s' % 'x' }}",
    "{{ '%*s' % (100000000, 'x') }}",
    "{{ '%s'|format('x') }}{{ '%100000000s'|format('x') }}",
    "{{ 'x'|center(100000000) }}",
    "{{ 'x'.center(100000000) }}",
    "{{ 'x'|indent(100000000, true) }}",
    "{{ lipsum(100000) }}",
    "{% set s = 'a' * 60000 %}{{ s|replace('a', 'b' * 60000) }}",
    "{% set s = 'a' * 60000 %}{{ s.replace('a', 'b' * 60000) }}",
    "{% set s = 'x' * 60000 %}{{ ([s] * 60000)|join }}",
    "{% set s = 'x' * 60000 %}{{ ''.join([s] * 60000) }}",
    "{% set s = 'x' * 60000 %}{{ [s] * 60000 }}",
    "{% set s = 'x' * 60000 %}{% set l = [s, s, s, s, s, s, s, s] %}{{ [l, l, l, l, l, l, l, l] }}",
    "{% set s = 'a ' * 30000 %}{{ s|wordwrap(1, wrapstring='x' * 60000) }}",
    "{{ range(10)|batch(100000000, 'x')|list }}",
    "{{ (10 ** 128) ** 128 }}",
]


@pytest.mark.parametrize("source", HOSTILE)
def test_a_hostile_template_is_stopped_within_a_second_and_falls_back(source: str) -> None:
    """The delivery gets the default message, with the reason, in well under a second."""
    template = compile_template("email", None, source)
    started = time.monotonic()
    message = render(make_alert(), MAIL, sent_at=SENT_AT, template=template)
    assert time.monotonic() - started < 1
    assert message.template_error, "the template must fail"
    assert "body template" in message.template_error
    assert replace(message, template_error=None) == render(make_alert(), MAIL, sent_at=SENT_AT)


@pytest.mark.parametrize("source", HOSTILE[:4])
def test_a_hostile_title_template_is_stopped_too(source: str) -> None:
    """Titles are bounded the same way."""
    started = time.monotonic()
    with pytest.raises(TemplateFailure, match="title template"):
        compile_template("push", source, None).render_title({"alert": {}})
    assert time.monotonic() - started < 1


def test_the_reasons_are_clear() -> None:
    """Each bound names itself."""
    context = {"alert": {"title": "t"}}
    reasons = {
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}": (
            f"template ran over {MAX_STEPS:,} steps"
        ),
        "{% for i in range(10000) %}{% for j in range(10000) %}x{% endfor %}{% endfor %}": (
            f"output too long (over {MAX_OUTPUT:,} characters)"
        ),
        "{{ range(100000) }}": "range too big",
        "{{ 'x'|center(100000000) }}": "center width too large",
        "{{ '{:>100000000}'.format('x') }}": "format width too large",
    }
    for source, reason in reasons.items():
        with pytest.raises(TemplateFailure) as failure:
            compile_template("push", None, source).render_body(context)
        assert reason in str(failure.value), str(failure.value)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ alert.title }} ({{ priority|upper }})", "Earthquake hits the coast (NORMAL)"),
        (
            "{% for c in alert.extra.categories %}{{ c }}{% if not loop.last %}, {% endif %}{% endfor %}",
            "Quake, Chile",
        ),
        ("{% for i in range(3) %}{{ loop.index }}/{{ loop.length }} {% endfor %}", "1/3 2/3 3/3"),
        ("{% for i in [] %}x{% else %}none{% endfor %}", "none"),
        ("{% for i in range(10) if i is even %}{{ i }}{% endfor %}", "02468"),
        ("{{ alert.extra.categories|map('upper')|join('/') }}", "QUAKE/CHILE"),
        ("{% macro b(x) %}[{{ x }}]{% endmacro %}{{ b(alert.feed) }}", "[Wire]"),
        ("{% set t %}{{ alert.feed|lower }}{% endset %}{{ t ~ '!' }}", "wire!"),
        ("{{ '%s at %s'|format(alert.feed, sent_at) }}", "Wire at 2024-05-01T10:01:40+00:00"),
        ("{{ '{} / {:>6}'.format(alert.feed, 42) }}", "Wire /     42"),
        ("{{ '%-6s|' % alert.feed }}", "Wire  |"),
        ("{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ [1] + [2] }}", "1024 ababab [1, 2]"),
        (
            "{% for x in [[1, [2]], [3]] recursive %}{% if x is iterable %}{{ loop(x) }}{% else %}{{ x }}"
            "{% endif %}{% endfor %}",
            "123",
        ),
        (
            "{{ alert.summary|wordwrap(40) }}",
            "A strong earthquake struck the coast\nearly on Wednesday, officials said.",
        ),
    ],
)
def test_ordinary_templates_render_as_before(source: str, expected: str) -> None:
    """Loops, filters, macros, formatting and recursion within the bounds give what Jinja gives."""
    message = render(make_alert(), PUSH, sent_at=SENT_AT, template=compile_template("push", None, source))
    assert message.template_error is None
    assert message.body == expected


def test_a_template_may_loop_up_to_its_budget() -> None:
    """A loop of MAX_RANGE steps, well inside the step budget, renders."""
    template = compile_template("push", None, "{% for i in range(10000) %}{% endfor %}done")
    assert template.render_body({}) == "done"
