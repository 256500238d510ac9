"""Everything a pipeline step needs, built once per process: settings, the live config, the store
and the sender."""

from __future__ import annotations

from collections.abc import Mapping

from alerts.config.settings import Settings
from alerts.delivery.outbox import Policy
from alerts.delivery.send import Sender
from alerts.ingest import http
from alerts.models import Subscriber
from alerts.service.live import LiveConfig
from alerts.state.connection import DEFAULT_URL
from alerts.state.store import Store


class Runtime:
    """Settings, live config, store and sender of one process."""

    def __init__(self, settings: Settings, sends: bool = True) -> None:
        """``sends``: this process delivers, so its configuration's notify URLs are checked too."""
        self.settings = settings
        self.store = Store.from_url(settings.redis_url or DEFAULT_URL)
        # the load record is what `alerts status` and /readyz read
        self.live = LiveConfig(settings.config_dir, record=self.store.config, channels=sends)
        self.policy = Policy(
            max_age=settings.delivery_max_age,
            retention=settings.history_retention,
            delivery_lease=settings.delivery_lease,
            sweep_lease=settings.sweep_lease,
        )
        self.sender = Sender(self.store, self.subscribers, self.policy, settings.rates)
        # URLs from content (item links, hubs, redirects) may reach private addresses only if the
        # deployment says so (ALERTS_ALLOW_PRIVATE_ADDRESSES); set for this process either way
        http.allow_private_addresses(settings.allow_private_addresses)
        if settings.telegram_api:
            from alerts.delivery import channels

            channels.use_telegram_api(settings.telegram_api)

    def subscribers(self) -> Mapping[str, Subscriber]:
        """The subscribers of the current configuration."""
        return self.live.current().config.subscribers

    @classmethod
    def from_env(cls, sends: bool = True) -> Runtime:
        """A runtime for this process's environment; raises ConfigError when the config is invalid."""
        return cls(Settings.from_env(), sends)
