"""Do two reports tell the same event, and does the later one add a fact? Pure.

Merging two events loses an alert, which is worse than sending one twice, so the rules refuse
before they accept: reports in different towns, of different kinds of event, or with different
numbers (unless the later one says the toll rose) are different events. Then, within a language,
enough shared content (Jaccard of words, places, actors, concepts and numbers); across languages,
the facts alone: the same town, the same kind of event, and most facts shared.
"""

from __future__ import annotations

from dataclasses import dataclass

from alerts.matching.stories.fingerprint import SETS, VERDICT_CONCEPTS, StoryPrint

GENERIC_SHARED = 3  # reports sharing no place, actor or number must share at least this many features
NAMES_MATTER = 0.5  # reports this alike that each name someone or somewhere the other does not differ


@dataclass(frozen=True, slots=True)
class StoryPolicy:
    """The thresholds (``ALERTS_STORY_*``), defaults chosen on tests/data/stories (bench/stories.py)."""

    similarity: float = 0.23  # same language: Jaccard of features at least this
    cross_similarity: float = 0.5  # across languages: Jaccard of facts at least this
    window: float = 12 * 3600.0  # a story stays open this long after its last report
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
        named: frozenset[str] = frozenset()
    else:
        # English and Spanish write a name the geotagger lacks alike: Guanajuato, Cusco, Kidal
        # ... and Arabic keeps a name's consonants: كفركلا and Kfarkela, صفاقس and Sfax
        latin = story.lang != "ar" and report.lang != "ar"
        # Marjayún and Marjayoun: one name in two spellings keeps its consonants
        named = (story.names & report.names if latin else frozenset()) | story.sounds & report.sounds
        mine = story.facts | {f"m:{name}" for name in named}
        theirs = report.facts | {f"m:{name}" for name in named}
        needed, what = policy.cross_similarity, "facts (across languages)"
        anchored = story.fine & report.fine or story.actors & report.actors or named
        # a country and a number, or a country and what happened when neither names a town
        townless = not (story.fine or report.fine)
        in_country = story.places & report.places and (
            story.numbers & report.numbers or (story.events & report.events and townless)
        )
        if not (anchored or in_country):
            return Verdict(False, 0.0, "across languages, no town, actor, or place and number in common")
    shared = mine & theirs
    weights = _weights(story, report)
    union_weight = sum(weights.get(feature, 1.0) for feature in mine | theirs)
    score = sum(weights.get(feature, 1.0) for feature in shared) / union_weight if union_weight else 0.0
    specific = (
        story.places & report.places
        or story.actors & report.actors
        or story.numbers & report.numbers
        or (story.lang != "ar" and story.lang == report.lang and story.names & report.names)  # Guerrero
        or named  # a name both languages write: Corrientes, كفركلا
    )
    if not specific and len(shared) < GENERIC_SHARED:  # "floods" alone: which floods?
        return Verdict(
            False, score, "nothing specific in common (a place, an actor or a number)", tuple(sorted(shared))
        )
    if (
        story.lang == report.lang
        and (score >= NAMES_MATTER or _named_apart(story, report))
        and _names_differ(story, report)
    ):
        # alike but for a name: two ships, two villages, two neighbourhoods of one town
        return Verdict(False, score, "different names: " + _names(story.names) + " / " + _names(report.names))
    if (
        story.places
        and report.places
        and not (story.places & report.places or story.actors & report.actors)
        and not story.countries & report.countries  # Nairobi is in Kenya
    ):
        return Verdict(False, score, "no place or actor in common", tuple(sorted(shared)))
    if score < needed:
        return Verdict(
            False, score, f"{what} too different ({score:.2f} < {needed:.2f})", tuple(sorted(shared))
        )
    return Verdict(True, score, f"{what} shared ({score:.2f})", tuple(sorted(shared)))


# kinds of event that one event is often first reported as: "explosion heard" before "strike"
_COMPATIBLE = (
    # a strike that kills a commander, or sets a depot ablaze
    {"attack", "explosion", "intercept", "shooting", "assassination", "fire"},
    # a raid: clashes, gunfire, arrests; a town taken; troops storm the palace: a coup
    {"incursion", "clash", "shooting", "arrest", "operation", "capture", "coup"},
    # a tanker crashes, explodes and burns; the grid collapses: a blackout
    ACCIDENT := {"crash", "explosion", "collapse", "fire", "sinking", "blackout"},
    {"protest", "incursion", "clash", "walkout", "blockade"},  # protesters storm parliament; strikers march
    {"storm", "flood", "rain", "landslide", "collapse"},  # a hillside collapses
    {"heatwave", "fire", "blackout"},  # the heat, the wildfires, the grid failing
    {"talks", "agreement", "ceasefire"},  # talks, then a deal
    {"resign", "dismissal", "censure"},
    {"election", "victory"},  # the vote, then who won
)


def _happened(report: StoryPrint) -> frozenset[str]:
    """What happened; a weapon that hit something or someone tells an attack ("roadside bomb
    kills 5" is no collision; "drone parts" are no attack)."""
    if report.events or not report.weapons or not (report.targets or report.concepts & HARMED):
        return report.events
    return ARMED


def _events_differ(story: StoryPrint, report: StoryPrint) -> bool:
    mine, theirs = _happened(story), _happened(report)
    if not (mine and theirs) or mine & theirs:
        return False
    armed = story.weapons or report.weapons  # a roadside bomb is no road accident
    groups = [group for group in _COMPATIBLE if not (armed and group is ACCIDENT)]
    return not any(mine & group and theirs & group for group in groups)


FACT_WEIGHTS = {"fine": 2.0, "actors": 2.0, "events": 2.0, "numbers": 2.0}  # the rest weighs 1


def _weights(*prints: StoryPrint) -> dict[str, float]:
    """How much each feature counts towards similarity: a town, an actor, what happened and a
    number pin an event down more than a word does."""
    weights: dict[str, float] = {}
    for each in prints:
        weights.update((f"p:{place}", FACT_WEIGHTS["fine"]) for place in each.fine)
        weights.update((f"a:{actor}", FACT_WEIGHTS["actors"]) for actor in each.actors)
        weights.update((f"c:{event}", FACT_WEIGHTS["events"]) for event in each.events)
        weights.update((f"n:{number:g}", FACT_WEIGHTS["numbers"]) for number in each.numbers)
    return weights


def _conflict(story: StoryPrint, report: StoryPrint) -> str | None:
    """Why the two cannot be one event, if they cannot."""
    later, earlier = (report, story) if report.at >= story.at else (story, report)
    if "again" in later.cues and "again" not in earlier.cues and "rises" not in later.cues:
        return "the later report says it happened again"  # not "a new toll"
    also = "also" in later.cues  # the barrage hit another town, another target, as well
    if story.fine - report.fine and report.fine - story.fine and not also:  # Baalbek, Hermel: both Bekaa
        return "different towns: " + _names(story.fine) + " / " + _names(report.fine)
    if "unharmed" in later.cues and "unharmed" not in earlier.cues and earlier.concepts & HARMED:
        return "the later report says nobody was hurt"  # of a blast that killed two: another blast
    if _events_differ(story, report):
        return "different kinds of event: " + _names(story.events) + " / " + _names(report.events)
    for kind, mine, theirs in (
        ("targets", frozenset() if also else story.targets, report.targets),
        ("weapons", story.weapons, report.weapons),
        ("verdicts", story.concepts & VERDICT_CONCEPTS, report.concepts & VERDICT_CONCEPTS),
    ):
        if mine and theirs and not mine & theirs:
            return f"different {kind}: " + _names(mine) + " / " + _names(theirs)
    if _numbers_differ(story, report):
        return "different numbers: " + _listed(story.numbers) + " / " + _listed(report.numbers)
    return None


def _numbers_differ(story: StoryPrint, report: StoryPrint) -> bool:
    """Tolls against tolls and other numbers against other numbers, none in common, and the later
    report does not say a number rose (a magnitude 6 and a toll of 800 do not disagree)."""
    if _toll_rose(story, report) or "part" in story.cues | report.cues:  # three of the eight miners
        return False
    if story.tolls and report.tolls:
        return not story.tolls & report.tolls and not story.numbers & report.numbers
    other, theirs = story.numbers - story.tolls, report.numbers - report.tolls
    return bool(other and theirs and not other & theirs)


def _names_differ(story: StoryPrint, report: StoryPrint) -> bool:
    """Each names someone or somewhere (a town the geotagger knows, or a name it does not) that the
    other does not."""
    mine = story.names | {f"p:{place}" for place in story.fine}
    theirs = report.names | {f"p:{place}" for place in report.fine}
    return bool(mine - theirs and theirs - mine)


def _named_apart(story: StoryPrint, report: StoryPrint) -> bool:
    """In Latin script, each names two or more that the other does not name at all (Manchester
    United and Liverpool, Manchester City and Arsenal)."""
    return (
        story.lang != "ar"
        and len(story.names) >= 2
        and len(report.names) >= 2
        and not story.names & report.names
    )


def _names(values: frozenset[str]) -> str:
    return ", ".join(sorted(values))


def _toll_rose(story: StoryPrint, report: StoryPrint) -> bool:
    """The later report gives a higher toll, or says a number rose."""
    later_cues = report.cues if report.at >= story.at else story.cues
    if "rises" in later_cues and story.numbers and report.numbers:
        return True
    if not (story.tolls and report.tolls):
        return False
    later = report if report.at >= story.at else story
    earlier = story if later is report else report
    if "rises" in later.cues:
        return True
    # a higher toll unsaid to be a revision is the same event only if it is of the same target:
    # "jets strike Idlib, killing 4" and "car bomb in an Idlib market kills 6" are two
    return max(later.tolls) > max(earlier.tolls) and bool(story.targets & report.targets)


def changes(known: StoryPrint, report: StoryPrint) -> tuple[str, ...]:
    """The material facts ``report`` adds to what the story's reports said (``known``, their union):
    a changed toll, a confirmation, a death, a claim of responsibility, a cause found, people freed,
    a place hit as well, a new development (an arrest after an attack). A town or an actor new to
    the story alone is not: rewordings name the ministry, the agency or the capital that said it."""
    found: list[str] = []
    if report.tolls and known.tolls and max(report.tolls) > max(known.tolls):
        found.append(f"toll {max(report.tolls):g} (was {max(known.tolls):g})")
    elif report.tolls and not known.tolls and report.tolls - known.numbers:
        found.append(f"toll {max(report.tolls - known.numbers):g}")
    if "confirmed" in report.cues and "confirmed" not in known.cues:
        found.append("confirmed")
    dead = "dies" in report.cues or "killed" in report.concepts
    # "nine dead" and "nine fallecidos" tell one death toll; three wounded do not tell a death
    told = (
        "killed" in known.concepts
        or "dies" in known.cues
        or (report.tolls & known.numbers and "injured" not in known.concepts)
    )
    if dead and not told and not found:
        found.append("a death")
    # a claim is news when it names a group the story had not: "Houthis say they targeted a ship",
    # then "Houthis claim the attack" is one claim
    claimants = (report.actors | (report.places & GROUPS) | report.names) - known.actors - known.places
    if "claims" in report.cues and "claims" not in known.cues and claimants - known.names:
        found.append("claimed by " + ", ".join(sorted(claimants - known.names)))
    if "cause" in report.cues and "cause" not in known.cues and known.concepts & ACCIDENTS:
        found.append("cause found")
    if "rescued" in report.cues and "rescued" not in known.cues:
        found.append("people freed or rescued")
    if "contained" in report.cues and "contained" not in known.cues and "fire" in known.concepts:
        found.append("fire under control")
    elsewhere = (report.fine - known.fine) | (report.names - known.names)
    if "also" in report.cues and elsewhere:
        found.append("also hit: " + _names(elsewhere))
    freed = "rescued" in report.cues
    found += [
        f"new: {event}"
        for event in sorted(report.events - known.events)
        if _news(event, known.events) and not (event == "arrest" and freed)  # "detainees freed"
    ]
    return tuple(found)


_OUTCOMES = {"agreement": frozenset({"talks"}), "victory": frozenset({"election"})}
ARMED = frozenset({"attack"})
RAIDS = frozenset({"incursion", "operation", "clash"})
HARMED = frozenset({"killed", "injured"})
GROUPS = frozenset({"Hezbollah", "Ansar Allah"})  # groups the geotagger knows as places (they claim attacks)
ACCIDENTS = frozenset({"fire", "explosion", "crash", "collapse", "sinking"})  # whose cause is news


def _news(event: str, known: frozenset[str]) -> bool:
    """A kind of event the story had not told, and not just another name for one it had (an arrest
    after an attack is news; an attack after an explosion is the same blast)."""
    if event == "arrest":  # an arrest after a shooting is news, arrests in a raid are the raid
        return not known & RAIDS
    if event == "capture":  # fighting for a town, an offensive, then the town taken
        return bool(known & {"clash", "incursion", "attack"})
    if event == "assassination":  # the strike's target was a commander
        return True
    if event in _OUTCOMES:  # talks, then a deal; a vote, then who won
        return bool(known & _OUTCOMES[event])
    return bool(known) and not any(event in group and known & group for group in _COMPATIBLE)


def union(prints: list[StoryPrint]) -> StoryPrint:
    """What the story's reports said, together (what an update must add to)."""
    first = prints[0]
    sets: dict[str, frozenset[object]] = {}
    for name in SETS:
        sets[name] = frozenset().union(*(getattr(each, name) for each in prints))
    return StoryPrint(lang=first.lang, at=first.at, title=first.title, **sets)  # type: ignore[arg-type]


def _listed(numbers: frozenset[float]) -> str:
    return ", ".join(f"{number:g}" for number in sorted(numbers))
