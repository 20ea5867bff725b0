"""Keep fetches of untrusted URLs (search results, their redirects) off private networks.

A search result or a redirect can name any address: the cloud metadata service
(169.254.169.254), the worker's own Redis on 127.0.0.1, a router on 192.168.x. `GuardedTransport`
is an httpx2 transport whose connections are opened only by `GuardedBackend`, which resolves the
host itself, refuses the connection if any of its addresses is not public, and then connects to the
address it vetted. Because the check and the connection use the same resolution, a DNS answer that
changes between the two (DNS rebinding) cannot slip through, and every redirect hop, being a new
connection to a new origin, is checked the same way. TLS still verifies the certificate against
the host name, not the address.

What it does not cover: a proxy (the client must not use one: `trust_env=False`, since the
proxy would make the connection, and to where the guard cannot see); and a public server that
forwards our request inward itself, which no client-side check can see.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import httpcore2
import httpx2

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[..., Sequence[tuple[Any, ...]]]

ALLOWED_SCHEMES = frozenset({"http", "https"})
# Not all of these are caught by `is_global` on every Python version, so they are named outright.
_BLOCKED_NETWORKS = tuple(
    ipaddress.ip_network(network)
    for network in (
        "0.0.0.0/8",  # "this network"
        "100.64.0.0/10",  # carrier-grade NAT
        "169.254.0.0/16",  # link-local, including the cloud metadata service
        "192.0.0.0/24",  # IETF protocol assignments
        "198.18.0.0/15",  # benchmarking
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
    )
)
# IPv6 forms that carry an IPv4 address a packet may end up at.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class AddressRefused(Exception):
    """The URL's scheme, or an address its host resolves to, is not one we fetch from."""


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address inside an IPv4-mapped, NAT64, 6to4 or Teredo IPv6 address, if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


def is_public_address(address: IPAddress) -> bool:
    """False for loopback, private, link-local, carrier-grade NAT, multicast, reserved and
    unspecified addresses, and for IPv6 addresses that wrap one of those."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:  # a connection to it is a connection to the IPv4 address
            return is_public_address(address.ipv4_mapped)
        inner = embedded_ipv4(address)
        if inner is not None and not is_public_address(inner):
            return False
    if (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    ):
        return False
    return not any(address in network for network in _BLOCKED_NETWORKS if network.version == address.version)


def check_scheme(url: str | httpx2.URL) -> None:
    """AddressRefused unless `url` is an absolute http or https URL."""
    try:
        parsed = httpx2.URL(str(url))
    except httpx2.InvalidURL:
        raise AddressRefused("not a valid URL") from None
    scheme = parsed.scheme
    if scheme not in ALLOWED_SCHEMES:
        raise AddressRefused(f"only http and https pages are fetched, not {scheme or 'a relative URL'}")
    if not parsed.host:
        raise AddressRefused("not a valid URL (no host)")


class AddressPolicy:
    """Which resolved addresses a connection may go to."""

    def __init__(self, *, allow_private: bool = False, trusted_networks: Iterable[str] = ()) -> None:
        self.allow_private = allow_private
        #: Networks allowed although not public: a test's 127.0.0.1, an intranet wiki on purpose.
        self.trusted = tuple(ipaddress.ip_network(network, strict=False) for network in trusted_networks)

    def allows(self, address: IPAddress) -> bool:
        if self.allow_private or is_public_address(address):
            return True
        return any(address in network for network in self.trusted if network.version == address.version)


class GuardedBackend(httpcore2.SyncBackend):
    """httpcore2's socket backend, connecting only to addresses the policy allows.

    `resolver` is `socket.getaddrinfo` unless a test hands in its own DNS. Resolution has no
    timeout of its own (getaddrinfo has none); the connect that follows does.
    """

    def __init__(self, policy: AddressPolicy, resolver: Resolver = socket.getaddrinfo) -> None:
        self.policy = policy
        self.resolver = resolver

    def vetted_addresses(self, host: str, port: int) -> list[str]:
        """Every address of `host`, or AddressRefused if any of them is not allowed (a host with one
        private address among public ones is treated as private, so the answer cannot be gamed)."""
        try:
            infos = self.resolver(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise httpcore2.ConnectError(f"cannot resolve {host}: {exc}") from exc
        addresses: list[str] = []
        for info in infos:
            text = str(info[4][0]).split("%", 1)[0]
            address = ipaddress.ip_address(text)
            if not self.policy.allows(address):
                # The refusal reaches the report's warnings, which whoever typed the website reads:
                # how the worker resolved the name (its DNS, its networks) stays in its log.
                logger.warning("refused to connect to %s: it resolves to %s, which is not public", host, address)
                raise AddressRefused(f"{host} is not a public address")
            if text not in addresses:
                addresses.append(text)
        if not addresses:
            raise httpcore2.ConnectError(f"cannot resolve {host}: no addresses")
        return addresses

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        error: Exception | None = None
        for address in self.vetted_addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error


class GuardedTransport(httpx2.HTTPTransport):
    """httpx2's transport with its connection pool opened by `GuardedBackend`.

    httpx2.HTTPTransport takes no network backend, so its pool (the `_pool` every method of the
    class uses) is replaced by one that has ours; tests/test_fetch.py fails if that stops working.
    """

    def __init__(
        self,
        policy: AddressPolicy,
        *,
        resolver: Resolver = socket.getaddrinfo,
        max_connections: int = 10,
    ) -> None:
        super().__init__(trust_env=False)
        self._pool.close()
        self._pool = httpcore2.ConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            network_backend=GuardedBackend(policy, resolver),
        )
