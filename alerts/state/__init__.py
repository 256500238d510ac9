"""The state layer: the only package that imports redis.

One module per entity (:mod:`~alerts.state.claims`, :mod:`~alerts.state.locks`,
:mod:`~alerts.state.feeds`, :mod:`~alerts.state.schedule`, :mod:`~alerts.state.deliveries`,
:mod:`~alerts.state.pacing`, :mod:`~alerts.state.rates`, :mod:`~alerts.state.websub`,
:mod:`~alerts.state.articles`), each speaking the domain (claim items, book a poll, record an
outcome) and building its keys through :mod:`~alerts.state.keys`. Every multi-key operation is one
Lua script from ``lua/``, loaded by name; every connection failure leaves as
:class:`~alerts.errors.StoreUnavailable` (:mod:`~alerts.state.connection`).
:class:`~alerts.state.store.Store` is the handle holding them all.
"""
