"""The address classifier: which addresses a URL from content may not reach (classification only,
no network)."""

from __future__ import annotations

import pytest

from alerts.ingest.addresses import AddressPolicy, parse_ip, restriction
from alerts.models import Feed


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.0.9", "loopback"),
        ("10.0.0.1", "private"),
        ("10.255.255.255", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata
        ("100.64.0.1", "CGNAT"),
        ("100.127.255.254", "CGNAT"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("192.0.2.1", "private"),  # documentation (TEST-NET-1)
        ("198.18.0.1", "private"),  # benchmarking
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("febf:ffff::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "private"),  # documentation
        ("::ffff:127.0.0.1", "loopback (IPv4-mapped 127.0.0.1)"),
        ("::ffff:10.0.0.1", "private (IPv4-mapped 10.0.0.1)"),
        ("::ffff:169.254.169.254", "link-local (IPv4-mapped 169.254.169.254)"),
        ("::127.0.0.1", "loopback (IPv4-compatible 127.0.0.1)"),
        ("::93.184.216.34", "reserved (IPv4-compatible 93.184.216.34)"),
        ("2002:7f00:0001::", "loopback (6to4 127.0.0.1)"),
        ("2002:0a00:0001::1", "private (6to4 10.0.0.1)"),
        ("64:ff9b::7f00:1", "loopback (NAT64 127.0.0.1)"),
        ("2001:0:4136:e378:8000:63bf:f5ff:fffe", "private (Teredo 10.0.0.1)"),
    ],
)
def test_restricted_addresses(address: str, reason: str) -> None:
    assert restriction(address) == reason


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "2606:2800:220:1::",
        "2a00:1450:4001:80b::200e",
        "::ffff:93.184.216.34",  # IPv4-mapped public: exactly that public address
        "64:ff9b::5db8:d822",  # NAT64 of 93.184.216.34 (IPv6-only hosts reach IPv4 sites so)
        "2002:5db8:d822::1",  # 6to4 of 93.184.216.34
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert restriction(address) is None


def test_parse_ip() -> None:
    assert str(parse_ip("[::1]")) == "::1"
    assert str(parse_ip("10.0.0.1")) == "10.0.0.1"
    assert parse_ip("example.com") is None
    assert parse_ip("127.1") is None  # not an address the stdlib (or aiohttp) accepts


def test_policies_of_a_feed() -> None:
    feed = Feed(name="wire", url="https://example.com/rss", allow_private=True)
    assert AddressPolicy.feed_url(feed) == AddressPolicy(
        trusted_url=True, allow_private=True, feed="wire", source="feed"
    )
    assert AddressPolicy.feed_content(feed, "hub") == AddressPolicy(
        trusted_url=False, allow_private=True, feed="wire", source="hub"
    )
    assert AddressPolicy() == AddressPolicy(trusted_url=False, allow_private=False, feed=None, source="link")
