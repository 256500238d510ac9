"""breaking-alerts: ingest -> matching -> delivery, over state and config; service composes them and
workers/ runs them under Celery (see README "Architecture")."""
