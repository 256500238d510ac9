"""Fetch and parse: feed, page and API bytes in, FeedItems out; no state."""
