"""Do two reports tell the same event, and does the later one add a fact? Pure.

Merging two events loses an alert, which is worse than sending one twice, so the rules refuse
before they accept: reports in different towns, of different kinds of event, or with different
numbers (unless the later one says the toll rose) are different events. Then, within a language,
enough shared content (Jaccard of words, places, actors, concepts and numbers); across languages,
the facts alone: the same town, the same kind of event, and most facts shared.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.matching.stories.fingerprint import StoryPrint


@dataclass(frozen=True, slots=True)
class StoryPolicy:
    """The thresholds (``ALERTS_STORY_*``), defaults chosen on tests/data/stories (bench/stories.py)."""

    similarity: float = 0.3  # same language: Jaccard of features at least this
    cross_similarity: float = 0.5  # across languages: Jaccard of facts at least this
    window: float = 6 * 3600.0  # a story stays open this long after its last report
    update_every: float = 600.0  # at most one update per story this often


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a report joins a story, with the evidence."""

    same: bool
    score: float
    reason: str
    shared: tuple[str, ...] = ()  # features both have (words, places, numbers)


def compare(story: StoryPrint, report: StoryPrint, policy: StoryPolicy) -> Verdict:
    """Whether ``report`` tells the event of ``story`` (a print of one of the story's reports)."""
    if abs(report.at - story.at) > policy.window:
        return Verdict(False, 0.0, "too far apart in time")
    refusal = _conflict(story, report)
    if refusal:
        return Verdict(False, 0.0, refusal)
    if story.lang == report.lang:
        mine, theirs = story.features, report.features
        needed, what = policy.similarity, "words and facts"
    else:
        mine, theirs = story.facts, report.facts
        needed, what = policy.cross_similarity, "facts (across languages)"
        if not (story.fine & report.fine or story.actors & report.actors):
            return Verdict(False, 0.0, "across languages, no town or actor in common")
        if not story.events & report.events:
            return Verdict(False, 0.0, "across languages, no kind of event in common")
    shared = mine & theirs
    score = len(shared) / len(mine | theirs) if mine | theirs else 0.0
    if not (story.places & report.places or story.actors & report.actors) and (story.places or report.places):
        return Verdict(False, score, "no place or actor in common", tuple(sorted(shared)))
    if score < needed:
        return Verdict(
            False, score, f"{what} too different ({score:.2f} < {needed:.2f})", tuple(sorted(shared))
        )
    return Verdict(True, score, f"{what} shared ({score:.2f})", tuple(sorted(shared)))


def _conflict(story: StoryPrint, report: StoryPrint) -> str | None:
    """Why the two cannot be one event, if they cannot."""
    if story.fine and report.fine and not story.fine & report.fine:
        return "different towns: " + ", ".join(sorted(story.fine)) + " / " + ", ".join(sorted(report.fine))
    if story.events and report.events and not story.events & report.events:
        return (
            "different kinds of event: "
            + ", ".join(sorted(story.events))
            + " / "
            + ", ".join(sorted(report.events))
        )
    if (
        story.numbers
        and report.numbers
        and not story.numbers & report.numbers
        and not _toll_rose(story, report)
    ):
        return "different numbers: " + _listed(story.numbers) + " / " + _listed(report.numbers)
    return None


def _toll_rose(story: StoryPrint, report: StoryPrint) -> bool:
    """The later report gives a higher toll, or says it rose."""
    if not (story.tolls and report.tolls):
        return False
    later = report if report.at >= story.at else story
    earlier = story if later is report else report
    return max(later.tolls) > max(earlier.tolls) or "rises" in later.cues


def changes(known: StoryPrint, report: StoryPrint) -> tuple[str, ...]:
    """The material facts ``report`` adds to what the story's reports said (``known``, their union):
    a changed toll, a confirmation, a death, a claim of responsibility, a new town. (An actor new to
    the story alone is not: rewordings name the ministry or the army that said it.)"""
    found: list[str] = []
    if report.tolls and known.tolls and max(report.tolls) > max(known.tolls):
        found.append(f"toll {max(report.tolls):g} (was {max(known.tolls):g})")
    elif report.tolls and not known.tolls and known.numbers.isdisjoint(report.tolls):
        found.append(f"toll {max(report.tolls):g}")
    for cue, said in (("confirmed", "confirmed"), ("dies", "a death")):
        if cue in report.cues and cue not in known.cues:
            found.append(said)
    if "claims" in report.cues and "claims" not in known.cues:  # an actor new to the story claims it
        found.append("claimed by " + (", ".join(sorted(report.actors - known.actors)) or "a group"))
    found += [f"new place: {place}" for place in sorted(report.fine - known.fine)]
    return tuple(found)


def union(prints: list[StoryPrint]) -> StoryPrint:
    """What the story's reports said, together (what an update must add to)."""
    first = prints[0]
    sets: dict[str, frozenset[object]] = {}
    for name in ("terms", "places", "fine", "countries", "actors", "concepts", "numbers", "tolls", "cues"):
        sets[name] = frozenset().union(*(getattr(each, name) for each in prints))
    return StoryPrint(lang=first.lang, at=first.at, title=first.title, **sets)  # type: ignore[arg-type]


def _listed(numbers: frozenset[float]) -> str:
    return ", ".join(f"{number:g}" for number in sorted(numbers))
