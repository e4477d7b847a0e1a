"""The client certificate identity that a TLS-terminating proxy passes in a header.

The proxy verifies the client's certificate and *overwrites* the header with the certificate's
subject; the gateway believes the header only from the proxies' own addresses. From anywhere
else the header is a forgery attempt and the request is refused.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, networks: Iterable[str]) -> None:
        self.networks: list[Network] = [ipaddress.ip_network(n.strip(), strict=False) for n in networks]

    def trusts(self, host: str | None) -> bool:
        if not host:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)
