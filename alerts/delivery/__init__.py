"""Deliver: the outbox state machine, the sender, pacing and digests, rate limits, a message per channel."""
