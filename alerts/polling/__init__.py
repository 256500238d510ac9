"""Polling policy (intervals, backoff, health rules), the health recorded after each poll, and its table."""
