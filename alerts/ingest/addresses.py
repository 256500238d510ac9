"""Which addresses a URL from feed content may reach, and the policy of one request; pure, no I/O.

An admin chooses the feeds; third parties write what is in them. A URL that comes from content (an
item link fetched for enrichment, a WebSub hub, the target of any redirect) may not make the service
request an internal address: :func:`restriction` says why an address is refused (loopback, private,
link-local, CGNAT, multicast, reserved, unspecified, IPv4 and IPv6, and the IPv6 forms that embed an
IPv4 address: IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo), None for a global unicast address.
:mod:`alerts.ingest.http` checks every address a host resolves to, and connects only to those.

URLs the admin wrote (a feed's ``url``, webhooks, ``ALERTS_WEBSUB_URL``) are requested as written;
their redirects are checked. A feed's ``allow_private: true`` lifts the rule for that feed's
requests, ``ALERTS_ALLOW_PRIVATE_ADDRESSES=true`` for the whole deployment.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TypeAlias

from alerts.models import Feed

__all__ = ["Address", "AddressPolicy", "parse_ip", "restriction"]

Address: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")  # shared address space (RFC 6598)
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # well-known NAT64 prefix (RFC 6052)
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")  # deprecated IPv4-compatible IPv6 (RFC 4291)


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Which addresses one request (and each of its redirects) may reach.

    ``trusted_url``: the URL itself was written by the admin, so it is requested as written and only
    its redirects are checked; otherwise it came from content and is checked too. ``allow_private``:
    restricted addresses may be reached (the feed's ``allow_private``). ``feed`` and ``source``
    (``feed``, ``link``, ``hub``) name the request in the ``fetch.refused`` log line.
    """

    trusted_url: bool = False
    allow_private: bool = False
    feed: str | None = None
    source: str = "link"

    @classmethod
    def feed_url(cls, feed: Feed) -> AddressPolicy:
        """The poll of ``feed``'s own URL: trusted as written, its redirects checked."""
        return cls(trusted_url=True, allow_private=feed.allow_private, feed=feed.name, source="feed")

    @classmethod
    def feed_content(cls, feed: Feed, source: str = "link") -> AddressPolicy:
        """A URL found in ``feed``'s content (an item link, a hub): checked, as are its redirects."""
        return cls(trusted_url=False, allow_private=feed.allow_private, feed=feed.name, source=source)


def parse_ip(host: str) -> Address | None:
    """``host`` as an IP address (brackets and an IPv6 zone allowed), or None for a name."""
    text = host.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def restriction(address: Address | str) -> str | None:
    """Why ``address`` may not be reached from content (``"loopback"``, ``"private"``, ...), or None
    when it is a global unicast address. An IPv6 address embedding an IPv4 one is judged by both."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            form, v4 = embedded
            inner = _own_restriction(v4)
            if inner is not None:
                return f"{inner} ({form} {v4})"
            if form in ("IPv4-mapped", "NAT64"):
                return None  # exactly the IPv4 address it carries, which is global
            if form == "IPv4-compatible":
                return f"reserved ({form} {v4})"
    return _own_restriction(ip)


def _own_restriction(ip: Address) -> str | None:
    """The class of ``ip`` that is refused, from the stdlib's properties, or None."""
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:  # the stdlib counts 224.0.0.0/4 and ff00::/8 as global
        return "multicast"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "CGNAT"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:  # fec0::/10: the stdlib says global
        return "site-local"
    if ip.is_reserved:
        return "reserved"
    if ip.is_private:
        return "private"
    if not ip.is_global:
        return "not globally reachable"
    return None


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 address carries, with the name of the form, or None."""
    if ip.ipv4_mapped is not None:
        return "IPv4-mapped", ip.ipv4_mapped
    if ip in _NAT64:
        return "NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4", ip.sixtofour
    if ip.teredo is not None:
        return "Teredo", ip.teredo[1]
    if ip in _IPV4_COMPATIBLE and int(ip) > 1:  # not :: or ::1, which are judged as themselves
        return "IPv4-compatible", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None
