"""WebSub (W3C Recommendation, subscriber side): push delivery for feeds that advertise a hub.

* :mod:`~alerts.websub.discovery` finds a feed's hub and topic URL (Link header or document); pure.
* :mod:`~alerts.websub.signature` signs and checks ``X-Hub-Signature`` HMACs; pure.
* :mod:`~alerts.websub.protocol` holds :class:`Subscription` and the rules: verification of
  intent, callback URLs, when to renew; pure.
* :mod:`~alerts.websub.hub` asks a hub to (un)subscribe (aiohttp client, async and sync).
* :mod:`~alerts.websub.server` is the callback server (aiohttp.web): verification GETs and
  content POSTs, handed to the pipeline through ``on_content``.
* :mod:`~alerts.websub.registry` is the server's registry protocol and an in-memory one; pure.
* :mod:`~alerts.websub.throttle` is the server's per-client token-bucket rate limit; pure.

The submodules are imported on demand, so importing this package costs nothing.
"""
