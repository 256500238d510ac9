"""Stories: many reports of one event, from many feeds and in several languages, become one story.

- :mod:`~alerts.matching.stories.lexicon`: the words of events, actors, numbers and updates (en, ar, es);
- :mod:`~alerts.matching.stories.fingerprint`: an item -> :class:`StoryPrint` (what its headline pins down);
- :mod:`~alerts.matching.stories.compare`: same event or not, and what an update adds;
- :mod:`~alerts.matching.stories.sketch`: MinHash bands and fact keys that find candidate stories.
"""
